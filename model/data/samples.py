"""Training and evaluation samples (KLVCG §IV-A, MovieLC's released loader; design:
docs/architecture.md, section "Data flow").

For a target second ``t`` of a video: the frames of ``[t-l, t+l]`` (l = 5, KLVCG's context
window; a missing second is zero-padded and masked, never an error), the comments of the 10
surrounding seconds (not ``t``: those are the targets), up to 5 ground-truth comments at
``t`` (LiveBot keeps the first five of a second), and the period bucket of ``t/duration`` in
5 stages (KLVCG's period embedding: <= 0.2, <= 0.4, <= 0.6, <= 0.8, else). For the backbones
that read more than KLVCG: the subtitle lines and transcript stretches on screen or spoken in
the window (LiveChat's TTE reads the audio transcript), and the like counts of the context
and ground-truth comments (the engaging-comments model of iQIYI). The recalled facts and
other videos' comments (the paper's "AC") are not part of a sample: the retrieval layer
recalls them per sample and the encoder takes them alongside (``model.encoded_split``).

The window is the seconds t-l..t+l, i.e. the time span ``[t-l, t+l+1)``: a comment at 15.7 s
is of second 15, and a segment (subtitle line, transcript stretch) belongs to the window when
it overlaps that span (``start_s < t+l+1`` and ``end_s > t-l``; a zero-length one when its
start lies in it). Likes: a comment without a count reads 0, and ``has_likes`` says whether
the video's comments carry counts at all, so a corpus without likes (every sample False) is
told apart from comments nobody liked; no count is ever made up.

A split's samples come from each video's part in that split (``Corpus.split``,
docs/data-contracts.md, section "Canonical corpus model"). For a video split by time the part
holds only the comments, subtitles and transcript of that split's ranges, and the frames of a
window's seconds outside them are masked like missing ones: a training sample next to a test
clip reads nothing of it.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from model.data.schema import Comment, Corpus, FrameFeatures, Segment, Video

CONTEXT_RADIUS = 5
MAX_TRUTHS = 5
N_PERIODS = 5


@dataclass
class Sample:
    video_id: str
    t: int
    frames: np.ndarray  # (2l+1, dim) float32, zeros where missing
    frame_mask: np.ndarray  # (2l+1,) bool, True where the second has a feature
    context: dict[int, list[str]]  # second -> its comments: the 2l seconds around t that lie
    # inside the video, not t itself
    targets: list[str]  # <= 5 ground truths at t
    period: int  # 0..4
    knowledge_target: bool = False  # a target states a fact (demo corpus flags)
    subtitles: list[str] = field(default_factory=list)  # the window's subtitle lines, in time
    # order (by start, then end; a tie keeps the video's order)
    transcript: list[str] = field(default_factory=list)  # its transcript stretches, likewise
    context_likes: dict[int, list[int]] = field(default_factory=dict)  # second -> the likes of
    # its comments, aligned with ``context`` (0: no count)
    target_likes: list[int] = field(default_factory=list)  # aligned with ``targets``
    has_likes: bool = False  # the video's comments carry like counts (see the module docstring)


def period_bucket(t: float, duration_s: float, n: int = N_PERIODS) -> int:
    """KLVCG's period stage of ``t``: the first k with t/duration <= (k+1)/n."""
    if duration_s <= 0:
        return 0
    frac = t / duration_s
    for k in range(n - 1):
        if frac <= (k + 1) / n:
            return k
    return n - 1


def _frames(features: FrameFeatures | None, video: Video, t: int, radius: int):
    dim = features.dim if features is not None else 0
    frames = np.zeros((2 * radius + 1, dim), dtype=np.float32)
    mask = np.zeros(2 * radius + 1, dtype=bool)
    part = video.split is not None and bool(video.split_ranges)  # of a video split by time
    if features is not None:
        for i, s in enumerate(range(t - radius, t + radius + 1)):
            own = s >= 0 and (not part or video.in_own_split(s))
            vec = features.get(video.id, s) if own else None
            if vec is not None and vec.shape == (dim,):
                frames[i], mask[i] = vec, True
    return frames, mask


class Segments:
    """A video's subtitle lines or transcript stretches, sorted by time once, to find those
    of a window without scanning them all."""

    def __init__(self, segments: list[Segment]) -> None:
        # by start, then end; a tie keeps the video's order (a stable sort)
        self.items = sorted(segments, key=lambda s: (s.start_s, s.end_s))
        self.starts = [s.start_s for s in self.items]
        self.longest = max([0.0, *(s.end_s - s.start_s for s in self.items)])

    def window(self, t: int, radius: int = CONTEXT_RADIUS) -> list[str]:
        """The texts of the segments overlapping the seconds ``t-radius..t+radius`` (the
        span ``[t-radius, t+radius+1)``), in time order."""
        lo, hi = t - radius, t + radius + 1
        first = bisect_left(self.starts, lo - self.longest - 1e-6)  # no earlier one reaches lo
        items = self.items[first : bisect_left(self.starts, hi)]
        return [s.text for s in items if s.end_s > lo or s.start_s >= lo]


@dataclass
class _Timeline:
    """What :func:`sample_at` reads of a video, built once for all its samples."""

    by_second: dict[int, list[Comment]]
    liked: bool
    subtitles: Segments
    transcript: Segments

    @classmethod
    def of(cls, video: Video) -> _Timeline:
        by_second: dict[int, list[Comment]] = {}
        for c in video.comments:
            by_second.setdefault(c.second, []).append(c)
        liked = any(c.likes is not None for c in video.comments)
        return cls(by_second, liked, Segments(video.subtitles), Segments(video.transcript))


def _likes(comments: list[Comment]) -> list[int]:
    return [int(c.likes) if c.likes is not None else 0 for c in comments]


def sample_at(
    video: Video,
    features: FrameFeatures | None,
    t: int,
    radius: int = CONTEXT_RADIUS,
    max_truths: int = MAX_TRUTHS,
    timeline: _Timeline | None = None,
) -> Sample:
    """The sample at second ``t`` of ``video`` (no targets when nobody commented at t)."""
    timeline = _Timeline.of(video) if timeline is None else timeline
    by_second = timeline.by_second
    truths = by_second.get(t, [])[:max_truths]
    seconds = range(max(t - radius, 0), min(t + radius + 1, math.ceil(video.duration_s)))
    context = {s: by_second.get(s, []) for s in seconds if s != t}
    frames, mask = _frames(features, video, t, radius)
    return Sample(
        video_id=video.id,
        t=t,
        frames=frames,
        frame_mask=mask,
        context={s: [c.text for c in comments] for s, comments in context.items()},
        targets=[c.text for c in truths],
        period=period_bucket(t, video.duration_s),
        knowledge_target=any(c.knowledge for c in truths),
        subtitles=timeline.subtitles.window(t, radius),
        transcript=timeline.transcript.window(t, radius),
        context_likes={s: _likes(comments) for s, comments in context.items()},
        target_likes=_likes(truths),
        has_likes=timeline.liked,
    )


def video_samples(
    video: Video,
    features: FrameFeatures | None,
    radius: int = CONTEXT_RADIUS,
    max_truths: int = MAX_TRUTHS,
) -> Iterator[Sample]:
    """One sample per second of ``video`` that has a comment, in time order."""
    timeline = _Timeline.of(video)
    for t in sorted(timeline.by_second):
        yield sample_at(video, features, t, radius, max_truths, timeline)


def build_samples(corpus: Corpus, split: str | None = None, **kw) -> Iterator[Sample]:
    """Samples of every video (of ``split`` when given), video by video. A split's samples are
    those of each video's part in it (``Corpus.split``): for a video split by time, the
    seconds of that split's ranges, their windows reading only its comments and frames."""
    videos = corpus.split(split) if split is not None else list(corpus)
    for video in videos:
        yield from video_samples(video, corpus.features, **kw)
