"""``/videos``: the corpus's videos, each video's keyword set and its comments over time."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import StateDep, VideoDep
from api.errors import NOT_FOUND, invalid
from api.schemas import (
    MAX_COMMENTS_PAGE,
    MAX_KEYWORDS,
    MAX_OFFSET,
    MAX_PAGE,
    MAX_SECONDS,
    Comment,
    Keyword,
    Page,
    VideoSummary,
    page,
)

router = APIRouter(prefix="/videos", tags=["videos"])

Seconds = Annotated[float, Query(ge=0, le=MAX_SECONDS)]


@router.get("", response_model=Page[VideoSummary])
async def videos(
    state: StateDep,
    split: Annotated[Literal["train", "dev", "test"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page:
    """Videos of the corpus (optionally those with samples in one split), in id order."""
    chosen = sorted(
        (v for v in state.context.corpus if split is None or split in v.splits), key=lambda v: v.id
    )
    rows = [
        VideoSummary(
            id=v.id,
            title=v.title,
            duration_s=v.duration_s,
            split=v.split,
            splits=list(v.splits),
            comments=len(v.comments),
        )
        for v in chosen[offset : offset + limit + 1]
    ]
    return page(rows, limit, offset)


@router.get("/{video_id}/keywords", response_model=list[Keyword], responses=NOT_FOUND)
async def keywords(
    state: StateDep,
    video: VideoDep,
    limit: Annotated[int, Query(ge=1, le=MAX_KEYWORDS)] = 20,
) -> list[Keyword]:
    """The video's TF-IDF keywords, best first (the words recall's comment query uses)."""
    return [
        Keyword(word=k.word, score=k.score, entity=k.entity)
        for k in state.context.keywords.get(video.id, [])[:limit]
    ]


@router.get("/{video_id}/comments", response_model=Page[Comment], responses=NOT_FOUND)
async def comments(
    video: VideoDep,
    start: Seconds = 0.0,
    end: Annotated[
        float | None, Query(ge=0, le=MAX_SECONDS, description="default: the end of the video")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_COMMENTS_PAGE)] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> Page:
    """Comments with `start <= time_s < end`, in time order."""
    stop = video.duration_s + 1 if end is None else end
    if stop <= start:
        raise invalid(
            ("query", "end"), f"end ({stop:g}) must be greater than start ({start:g})", end
        )
    rows = [
        Comment(time_s=c.time_s, text=c.text, likes=c.likes, knowledge=c.knowledge)
        for c in video.comments_between(start, stop)[offset : offset + limit + 1]
    ]
    return page(rows, limit, offset)
