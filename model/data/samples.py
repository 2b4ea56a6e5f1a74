"""Training and evaluation samples (KLVCG §IV-A, MovieLC's released loader; design:
docs/architecture.md, section "Data flow").

For a target second ``t`` of a video: the frames of ``[t-l, t+l]`` (l = 5, KLVCG's context
window; a missing second is zero-padded and masked, never an error), the comments of the 10
surrounding seconds (not ``t``: those are the targets), up to 5 ground-truth comments at
``t`` (LiveBot keeps the first five of a second), and the period bucket of ``t/duration`` in
5 stages (KLVCG's period embedding: <= 0.2, <= 0.4, <= 0.6, <= 0.8, else). The recalled facts
and other videos' comments (the paper's "AC") are not part of a sample: the retrieval layer
recalls them per sample and the encoder takes them alongside (``model.encoded_split``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from model.data.schema import Comment, Corpus, FrameFeatures, Video

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


def period_bucket(t: float, duration_s: float, n: int = N_PERIODS) -> int:
    """KLVCG's period stage of ``t``: the first k with t/duration <= (k+1)/n."""
    if duration_s <= 0:
        return 0
    frac = t / duration_s
    for k in range(n - 1):
        if frac <= (k + 1) / n:
            return k
    return n - 1


def _frames(features: FrameFeatures | None, video_id: str, t: int, radius: int):
    dim = features.dim if features is not None else 0
    frames = np.zeros((2 * radius + 1, dim), dtype=np.float32)
    mask = np.zeros(2 * radius + 1, dtype=bool)
    if features is not None:
        for i, s in enumerate(range(t - radius, t + radius + 1)):
            vec = features.get(video_id, s) if s >= 0 else None
            if vec is not None and vec.shape == (dim,):
                frames[i], mask[i] = vec, True
    return frames, mask


def _by_second(video: Video) -> dict[int, list[Comment]]:
    by_second: dict[int, list[Comment]] = {}
    for c in video.comments:
        by_second.setdefault(c.second, []).append(c)
    return by_second


def sample_at(
    video: Video,
    features: FrameFeatures | None,
    t: int,
    radius: int = CONTEXT_RADIUS,
    max_truths: int = MAX_TRUTHS,
    by_second: dict[int, list[Comment]] | None = None,
) -> Sample:
    """The sample at second ``t`` of ``video`` (no targets when nobody commented at t)."""
    by_second = _by_second(video) if by_second is None else by_second
    truths = by_second.get(t, [])[:max_truths]
    context = {
        s: [c.text for c in by_second.get(s, [])]
        for s in range(max(t - radius, 0), min(t + radius + 1, math.ceil(video.duration_s)))
        if s != t
    }
    frames, mask = _frames(features, video.id, t, radius)
    return Sample(
        video_id=video.id,
        t=t,
        frames=frames,
        frame_mask=mask,
        context=context,
        targets=[c.text for c in truths],
        period=period_bucket(t, video.duration_s),
        knowledge_target=any(c.knowledge for c in truths),
    )


def video_samples(
    video: Video,
    features: FrameFeatures | None,
    radius: int = CONTEXT_RADIUS,
    max_truths: int = MAX_TRUTHS,
) -> Iterator[Sample]:
    """One sample per second of ``video`` that has a comment, in time order."""
    by_second = _by_second(video)
    for t in sorted(by_second):
        yield sample_at(video, features, t, radius, max_truths, by_second)


def build_samples(corpus: Corpus, split: str | None = None, **kw) -> Iterator[Sample]:
    """Samples of every video (of ``split`` when given), video by video."""
    videos = corpus.split(split) if split is not None else list(corpus)
    for video in videos:
        yield from video_samples(video, corpus.features, **kw)
