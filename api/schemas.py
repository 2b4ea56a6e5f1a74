"""Request and response models of the inspection API (the OpenAPI schema at ``/docs``).

Every list an endpoint returns is capped (the ``MAX_*`` limits); paged lists say where the
next page starts (``next_offset``, null on the last page). A number in a request body must be
a JSON number (:data:`JsonInt`): ``true`` or ``"30"`` is refused, not read as 1 or 30.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from model.beam_limits import MAX_BEAM as MODEL_MAX_BEAM

#: Caps on what one request may ask for.
MAX_NAME_CHARS = 200
MAX_PAGE = 500
MAX_OFFSET = 1_000_000
MAX_RELATIONS = 20
MAX_NEIGHBORS = 500
MAX_ALIASES = 200
MAX_KEYWORDS = 100
MAX_COMMENTS_PAGE = 1000
#: Half the widest beam the model accepts: a request's beam search runs under the request's
#: deadline and holds the lock every generation and recall shares, and its time grows with
#: the beam.
MAX_BEAM = MODEL_MAX_BEAM // 2
MAX_SECONDS = 10**7  # longer than any video: a bound for the schema, not a policy

T = TypeVar("T")


class Error(BaseModel):
    detail: str = Field(description="what was wrong, in one line")


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page; null on the last page")


def page(rows: list, limit: int, offset: int) -> Page:
    """A page of ``rows`` read with ``limit + 1`` from ``offset``: an extra row means more."""
    more = len(rows) > limit
    return Page(
        items=rows[:limit], limit=limit, offset=offset, next_offset=offset + limit if more else None
    )


class Fact(BaseModel):
    head: str
    relation: str
    tail: str


class Entity(BaseModel):
    name: str = Field(description="the name asked for")
    entity: str = Field(description="the entity (head) it resolves to")
    aliases: list[str] = Field(description=f"alias names of the entity (at most {MAX_ALIASES})")
    aliases_truncated: bool


class Neighbors(BaseModel):
    entity: str
    hops: Literal[1, 2]
    items: list[Fact] = Field(description="facts within `hops`, in either direction")
    limit: int
    truncated: bool = Field(description="true when there were more facts than `limit`")


class VideoSummary(BaseModel):
    id: str
    title: str
    duration_s: float
    split: str | None = Field(
        description="the video's split; null when it has none or is split by time"
    )
    splits: list[str] = Field(
        description="the splits with samples in the video (several for a video split by time)"
    )
    comments: int = Field(description="number of comments")


class Keyword(BaseModel):
    word: str
    score: float = Field(description="TF-IDF weight in the video")
    entity: str | None = Field(description="the KG entity the word names, if any")


class Comment(BaseModel):
    time_s: float
    text: str
    likes: int | None
    knowledge: bool = Field(description="the demo corpus flags comments that state a KG fact")


class Why(BaseModel):
    keyword: str = Field(description="the text that named the entity (or the video title)")
    entity: str
    hop: int = Field(description="1: a fact of the named entity; 2: of an entity it points to")
    score: float


class RecalledFact(Fact):
    why: Why


class OtherComment(BaseModel):
    text: str
    video: str
    t: int
    score: float = Field(description="cosine similarity to the window's query")


class Recall(BaseModel):
    video: str
    t: int
    window: tuple[int, int] = Field(description="the context window [t-l, t+l] (t itself left out)")
    knowledge: str = Field(description="the facts as the knowledge encoder reads them")
    facts: list[RecalledFact]
    comments: list[OtherComment] = Field(description="comments of other videos")


def _json_number(value: object) -> object:
    """Refuse what lax validation would turn into a number: JSON ``true``/``false`` (Python
    bools are ints) and strings. Numbers go on to the int check (which refuses fractions,
    NaN and infinities)."""
    if isinstance(value, bool | str):
        kind = "a boolean" if isinstance(value, bool) else "a string"
        raise PydanticCustomError("int_type", f"Input should be a JSON number, not {kind}")
    return value


#: An integer of a JSON body: a JSON number without a fraction.
JsonInt = Annotated[int, BeforeValidator(_json_number)]


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    t: JsonInt = Field(ge=0, le=MAX_SECONDS, description="second of the video to comment on")
    beam: JsonInt = Field(5, ge=1, le=MAX_BEAM, description="beam size (also comments returned)")


class CopiedWord(BaseModel):
    text: str
    copied: float = Field(description="share of the word's probability that copying gave")
    fact: int | None = Field(
        description="`index` of the recalled fact it was copied from (null: not copied, or "
        "copied from the window's comments)"
    )


class FactCopy(BaseModel):
    fact: int = Field(description="`index` of the recalled fact")
    mass: float = Field(description="its copy mass: its share summed over the words / words")


class GeneratedComment(BaseModel):
    text: str
    score: float = Field(description="mean log-probability per word")
    copied: float | None = Field(
        None, description="how much of the comment was copied (mean over its words); copy path"
    )
    words: list[CopiedWord] | None = Field(None, description="its words; copy path only")
    facts: list[FactCopy] | None = Field(None, description="per-fact copy mass; copy path only")


class UsedFact(Fact):
    index: int = Field(description="its place in recall order (what comments' `fact` refers to)")
    weight: float = Field(
        description="copy mass in the best comment (`facts_by` copy), or the knowledge "
        "encoder's attention on the fact (`facts_by` attention: a model without copy path)"
    )


class Generated(BaseModel):
    video: str
    t: int
    comments: list[GeneratedComment]
    facts: list[UsedFact] = Field(description="the recalled facts, the most used first")
    facts_by: Literal["copy", "attention"]


class PartHealth(BaseModel):
    """Whether one part of the API works, and if not, why."""

    ok: bool
    detail: str


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"]
    store: PartHealth
    index: PartHealth
    model: PartHealth
