"""The canonical corpus model every reader produces and every consumer reads
(docs/data-contracts.md, section "Canonical corpus model").

``Video(id, title, duration_s, comments, subtitles, transcript)`` plus a per-second frame
feature source. Readers of the released formats (LiveBot, VideoIC, MovieLC, Twitch
LiveChat/SFAT, iQIYI) map their fields onto these types; nothing downstream looks at a
format's own field names.

Splits. Most formats split by video: ``Video.split``. A format may instead split a video by
time (LiveChat puts clips of one stream in its train and its test files):
``Video.split_ranges`` then lists ``SplitRange(start_s, end_s, split)`` and ``split`` is None;
a second belongs to the split of the range holding it, a second in no range to none, and
ranges of different splits never overlap. Everything that works on a split reads it through
``Corpus.split(name)``, which gives each video's part in that split (:meth:`Video.part`: the
video itself when the whole video is in it, else a copy holding only the comments, subtitles
and transcript inside the split's ranges), so training never reads the comments of a test
range of the same stream, nor a test sample those of a training range.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
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


@dataclass(frozen=True, slots=True)
class SplitRange:
    """The seconds ``start_s <= t < end_s`` of a video split by time belong to ``split``."""

    start_s: float
    end_s: float
    split: str

    def holds(self, t: float) -> bool:
        return self.start_s <= t < self.end_s


def merge_ranges(ranges: list[SplitRange]) -> list[SplitRange]:
    """``ranges`` as ``Video.split_ranges`` holds them: sorted, ranges of one split that overlap
    or touch merged into one; a :class:`ValueError` when ranges of two splits overlap."""
    out: list[SplitRange] = []
    for r in sorted(ranges, key=lambda r: (r.start_s, r.end_s)):
        last = out[-1] if out else None
        if last is not None and r.start_s < last.end_s and r.split != last.split:
            raise ValueError(f"{r} overlaps {last}, of another split")
        if last is not None and r.start_s <= last.end_s and r.split == last.split:
            out[-1] = SplitRange(last.start_s, max(last.end_s, r.end_s), last.split)
        else:
            out.append(r)
    return out


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
    #: A video split by time (module docstring): sorted and disjoint (:func:`merge_ranges`).
    #: Empty for a video split as a whole (``split``) or not at all.
    split_ranges: list[SplitRange] = field(default_factory=list)

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits that have a part of this video, in the order of :data:`SPLITS`."""
        names = {r.split for r in self.split_ranges} if self.split_ranges else {self.split}
        order = {name: i for i, name in enumerate(SPLITS)}
        return tuple(sorted((n for n in names if n), key=lambda n: (order.get(n, len(order)), n)))

    def split_at(self, t: float) -> str | None:
        """The split of second ``t``: that of the range holding it for a video split by time
        (None between ranges), else the video's ``split``."""
        if not self.split_ranges:
            return self.split
        i = bisect_right([r.start_s for r in self.split_ranges], t) - 1
        return self.split_ranges[i].split if i >= 0 and self.split_ranges[i].holds(t) else None

    def in_own_split(self, t: float) -> bool:
        """Whether second ``t`` is of this video's own split: always, except in a part of a
        video split by time (:meth:`part`), where only the seconds of its ranges are."""
        return self.split is None or not self.split_ranges or self.split_at(t) == self.split

    def part(self, split: str) -> Video | None:
        """The part of this video in ``split``: the video itself when it is in ``split`` as a
        whole; for a video split by time, a copy with ``split`` set, only that split's ranges,
        and only the comments, subtitles and transcript stretches starting inside them (same
        id, title and duration: period buckets and frame lookups are unchanged); None when no
        part of it is in ``split``."""
        if not self.split_ranges:
            return self if self.split == split else None
        ranges = [r for r in self.split_ranges if r.split == split]
        if not ranges:
            return None
        starts = [r.start_s for r in ranges]

        def inside(t: float) -> bool:
            i = bisect_right(starts, t) - 1
            return i >= 0 and ranges[i].holds(t)

        return replace(
            self,
            comments=[c for c in self.comments if inside(c.time_s)],
            subtitles=[s for s in self.subtitles if inside(s.start_s)],
            transcript=[s for s in self.transcript if inside(s.start_s)],
            split=split,
            split_ranges=ranges,
        )

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
        """The part of every video that has one in split ``name`` (:meth:`Video.part`): the
        whole video for a video-level split, the split's ranges of a video split by time."""
        parts = (v.part(name) for v in self.videos.values())
        return [p for p in parts if p is not None]

    @property
    def n_comments(self) -> int:
        return sum(len(v.comments) for v in self.videos.values())

    @property
    def seconds(self) -> float:
        return sum(v.duration_s for v in self.videos.values())
