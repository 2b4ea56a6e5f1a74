"""``GET /recall``: what the model is told for a window: KG facts and other-video comments,
each with why it was chosen. The one :func:`retrieval.recall.recall` training uses."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import (
    VIDEO_ID,
    SettingsDep,
    StateDep,
    check_second,
    run_blocking,
    video_or_404,
)
from api.errors import NOT_FOUND
from api.schemas import MAX_SECONDS, Recall
from retrieval.recall import Knowledge, recall

router = APIRouter(tags=["recall"])


@router.get("/recall", response_model=Recall, responses=NOT_FOUND)
async def recall_window(
    state: StateDep,
    settings: SettingsDep,
    video: Annotated[str, Query(**VIDEO_ID)],
    t: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_SECONDS,
            description="second of the window's centre (the comments at t are the targets)",
            openapi_examples={"demo": {"value": 60}},
        ),
    ],
) -> Recall:
    """Facts and other-video comments for the window [t-5, t+5] of `video` (without t)."""
    found = video_or_404(state, video)
    check_second(found, t, ("query", "t"))
    ctx = state.context

    def run() -> Knowledge:
        return recall(
            ctx.store, ctx.linker, ctx.index, found, t, keywords=ctx.keyword_set(found.id)
        )

    knowledge = await run_blocking(settings, run, lock=state.knowledge_lock)
    radius = ctx.linker.config.radius
    return Recall.model_validate(
        {
            **knowledge.as_dict(),
            "window": (max(0, t - radius), t + radius),
            "knowledge": knowledge.text,
        }
    )
