"""Engagement metrics of generated comments on a corpus with like counts (the iQIYI engaging
comments paper, §5.3-5.4 and Fig. 5): pure functions over words, like counts and sentence
vectors; :mod:`model.evaluation` collects the inputs from one generation pass.

What the paper gives (§5.3): for each video segment, 10 comments with relatively high likes
form the high-attraction reference set r, with no overlap with the contextual comments and
the ground truth. B_r is BLEU and R_r recall of the generated comments against r; Bs_r is
"BertSim", the semantic similarity of the generated comments to r. §5.4: a low-attraction
reference set of 10 lower-liked comments of the same context, and relative engagement, "the
ratio of comparing the generated comments with the high-attention reference set and the
low-attention reference set respectively after calculating the BLEU value".

What we chose (the paper does not say, or our data differs):

- The segment and the context: every backbone reads the window [t-l, t+l] (l = 5) and the
  ground truths are the comments of second t, so the references are the comments of
  [t - SEGMENT_S, t + SEGMENT_S] outside the window (:func:`segment_comments`): no overlap
  with anything the model reads or is measured against otherwise.
- The sets (:func:`reference_sets`): the segment's comments sorted by likes, most first
  (ties: nearer t first); the high set is the first min(10, ceil(n/2)), the low set the last
  min(10, n - |high|), so they never overlap. A segment whose comments all have the same
  count has no relative engagement and is left out, as is a sample without counts.
- B_r: corpus BLEU-4 (the add-one smoothing of ``generation.bleu``), each comment against
  its high set as multiple references. R_r: per comment, the best unigram recall (clipped
  counts) over its references, averaged. Bs_r: the mean cosine between the comment's
  sentence vector and its references' (the product's sentence embedder: the one the
  other-videos comment index uses), averaged over the comments; we have no BERT.
- Relative engagement: B_r divided by the same BLEU against the low sets (None when that is
  0), and the share of comments whose sentence BLEU against the high set beats the one
  against the low set (ties count half), a per-example reading of Fig. 5.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from model.metrics import bleu, corpus_bleu

REFERENCES = 10  # per set (§5.3)
SEGMENT_S = 30  # seconds each side of t the references come from (ours)
#: The keys of :func:`engagement_metrics` after ``samples``.
METRICS = ("bleu_high", "recall_high", "semantic_high", "bleu_low", "relative",
           "relative_wins", "references_high", "references_low")  # fmt: skip


@dataclass(frozen=True)
class LikedComment:
    """A comment of the segment: its words, its like count, its distance to t, its text."""

    words: tuple[str, ...]
    likes: int
    distance: float = 0.0
    text: str = ""


def segment_comments(
    comments: Sequence[tuple[float, Sequence[str], int, str]], t: int, radius: int, segment: int
) -> list[LikedComment]:
    """The comments ``(time_s, words, likes, text)`` of [t - segment, t + segment] outside
    the window [t - radius, t + radius] (whole seconds), without empty ones."""
    out = []
    for time_s, words, likes, text in comments:
        second = int(time_s)
        if abs(second - t) <= radius or abs(second - t) > segment or not words:
            continue
        out.append(LikedComment(tuple(words), int(likes), abs(time_s - t), text))
    return out


def reference_sets(
    comments: Sequence[LikedComment], size: int = REFERENCES
) -> tuple[list[LikedComment], list[LikedComment]]:
    """(high, low): the most- and least-liked comments (module docstring); both empty when
    fewer than two comments or all counts equal."""
    if len(comments) < 2 or len({c.likes for c in comments}) < 2:
        return [], []
    ranked = sorted(comments, key=lambda c: (-c.likes, c.distance))
    n_high = min(size, math.ceil(len(ranked) / 2))
    n_low = min(size, len(ranked) - n_high)
    return ranked[:n_high], ranked[len(ranked) - n_low :]


def unigram_recall(hypothesis: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """The best over ``references`` of the share of a reference's words the hypothesis has
    (clipped counts); 0 without references."""
    hyp = Counter(hypothesis)
    best = 0.0
    for ref in references:
        counts = Counter(ref)
        if counts:
            best = max(best, sum(min(c, hyp[w]) for w, c in counts.items()) / sum(counts.values()))
    return best


def mean_cosine(vector: np.ndarray, references: np.ndarray) -> float:
    """The mean cosine similarity of ``vector`` (d,) to each row of ``references`` (k, d)."""
    v = np.asarray(vector, dtype=np.float64)
    refs = np.asarray(references, dtype=np.float64).reshape(-1, len(v))
    norms = np.linalg.norm(refs, axis=1) * np.linalg.norm(v)
    cos = (refs @ v) / np.where(norms > 0, norms, 1.0)
    return float(np.mean(np.where(norms > 0, cos, 0.0))) if len(refs) else 0.0


def relative_wins(
    hypotheses: Sequence[Sequence[str]],
    highs: Sequence[Sequence[Sequence[str]]],
    lows: Sequence[Sequence[Sequence[str]]],
) -> float:
    """The share of hypotheses whose sentence BLEU against their high set beats the one
    against their low set (a tie counts half)."""
    wins = 0.0
    for hyp, high, low in zip(hypotheses, highs, lows, strict=True):
        h, lo = bleu(hyp, high), bleu(hyp, low)
        wins += 1.0 if h > lo else 0.5 if h == lo else 0.0
    return wins / len(hypotheses)


def engagement_metrics(
    hypotheses: Sequence[Sequence[str]],
    highs: Sequence[Sequence[Sequence[str]]],
    lows: Sequence[Sequence[Sequence[str]]],
    similarities: Sequence[float],
) -> dict:
    """The engagement block of comments with non-empty high and low sets (module docstring):
    ``similarities`` is each comment's :func:`mean_cosine` to its high set."""
    n = len(hypotheses)
    if not n:
        return {"samples": 0, **dict.fromkeys(METRICS)}
    b_high = corpus_bleu(hypotheses, highs, smooth=True)
    b_low = corpus_bleu(hypotheses, lows, smooth=True)
    recall = float(np.mean([unigram_recall(h, r) for h, r in zip(hypotheses, highs, strict=True)]))
    return {
        "samples": n,
        "bleu_high": round(b_high, 4),
        "recall_high": round(recall, 4),
        "semantic_high": round(float(np.mean(similarities)), 4),
        "bleu_low": round(b_low, 4),
        "relative": round(b_high / b_low, 4) if b_low > 0 else None,
        "relative_wins": round(relative_wins(hypotheses, highs, lows), 4),
        "references_high": round(float(np.mean([len(r) for r in highs])), 2),
        "references_low": round(float(np.mean([len(r) for r in lows])), 2),
    }
