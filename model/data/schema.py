"""The canonical corpus model every reader produces and every consumer reads
(docs/data-contracts.md, section "Canonical corpus model").

``Video(id, title, duration_s, comments, subtitles, transcript)`` plus a per-second frame
feature source. Readers of the released formats (LiveBot, VideoIC, MovieLC, Twitch
LiveChat/SFAT, iQIYI) map their fields onto these types; nothing downstream looks at a
format's own field names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from common.errors import UserError

SPLITS = ("train", "dev", "test")


class DataError(UserError):
    """Bad corpus input: the message names the file, the line or record, the field, the reason."""


@dataclass(frozen=True, slots=True)
class Comment:
    """One live comment at ``time_s`` seconds into its video."""

    time_s: float
    text: str
    likes: int | None = None
    #: Set by the demo generator: the comment states a fact of an entity named nearby.
    knowledge: bool = False

    @property
    def second(self) -> int:
        return int(self.time_s)


@dataclass(frozen=True, slots=True)
class Segment:
    """A timed piece of text: a subtitle line or a stretch of the audio transcript."""

    start_s: float
    end_s: float
    text: str


@dataclass
class Video:
    id: str
    title: str
    duration_s: float
    comments: list[Comment] = field(default_factory=list)  # sorted by time
    subtitles: list[Segment] = field(default_factory=list)
    transcript: list[Segment] = field(default_factory=list)
    category: str | None = None
    split: str | None = None  # "train" | "dev" | "test" when the dataset defines one

    def comments_between(self, start_s: float, end_s: float) -> list[Comment]:
        """Comments with ``start_s <= time_s < end_s`` (``comments`` is sorted)."""
        from bisect import bisect_left

        times = [c.time_s for c in self.comments]
        return self.comments[bisect_left(times, start_s) : bisect_left(times, end_s)]

    def check_time(self, t: float) -> None:
        """Refuse a second ``t`` outside the video (``0 <= t <= duration_s``): the one range
        recall, generation and the API accept."""
        if not 0 <= t <= self.duration_s:
            raise DataError(f"video {self.id!r}: t={t} is outside 0..{self.duration_s:g} s")


class FrameFeatures(Protocol):
    """Per-second visual features of the videos of a corpus."""

    dim: int

    def get(self, video_id: str, second: int) -> np.ndarray | None:
        """The feature vector of ``second`` (float32, shape ``(dim,)``), or None if missing."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A released ranking candidate: text and LiveBot's label (1 ground truth, 2 popular,
    3 plausible, 4 random; 0 when a format gives no label)."""

    text: str
    label: int


@dataclass
class Corpus:
    """Videos of one dataset, its frame features, and what its test files fix in advance."""

    format: str
    path: str
    videos: dict[str, Video]
    features: FrameFeatures | None = None
    #: Candidate sets shipped with the data, keyed by (video id, second).
    candidates: dict[tuple[str, int], list[Candidate]] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Video]:
        return iter(self.videos.values())

    def split(self, name: str) -> list[Video]:
        return [v for v in self.videos.values() if v.split == name]

    @property
    def n_comments(self) -> int:
        return sum(len(v.comments) for v in self.videos.values())

    @property
    def seconds(self) -> float:
        return sum(v.duration_s for v in self.videos.values())
