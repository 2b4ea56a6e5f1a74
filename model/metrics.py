"""Evaluation metrics as small pure functions (docs/evaluation.md, section "Ranking").

Ranking (LiveBot, Ma et al. 2019, section 5 "Evaluation Metrics"; used by KLVCG, section V-A):
the model scores each of a sample's candidates (100, or 80 on Twitch) by the mean token
cross-entropy of the candidate under teacher forcing, and the metrics read the rank of the first
ground truth: Recall@k (%), Mean Rank, Mean Reciprocal Rank, each with a percentile bootstrap
95 % interval. :func:`expected_random` gives the exact values of a uniformly random ranker, the
anchors every evaluation is checked against.

Generation: non-empty rate, distinct-n (Li et al. 2016) and BLEU (Papineni et al. 2002) of
generated comments against the ground truths, and what they say of the window's facts
(:func:`knowledge_generation_metrics`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

RANK_METRICS = ("R@1", "R@5", "R@10", "MR", "MRR")
RECALL_KS = (1, 5, 10)


# --------------------------------------------------------------------------------- ranking


def ranks_of_first_truth(
    scores: np.ndarray, is_truth: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """1-based rank of the best-scored ground truth of each row of ``scores`` (S, C).

    ``scores`` are losses (mean token cross-entropy): LOWER ranks first. Ties are broken
    pessimistically: every distractor whose loss is <= the best ground truth's loss ranks before
    it, so a ground truth tied with distractors ranks after all of them (and among tied ground
    truths the first one still comes after every tied distractor).

    ``valid`` (S, C) marks the real candidates of sets padded to a common width (sets of
    different sizes in one array): padding is never a candidate, whatever its score.

    LiveBot's released code sorts the losses the wrong way (highest loss first) and VideoIC's sums
    token losses (which favours short candidates); we do neither: lower *mean* loss ranks first.
    """
    scores = np.asarray(scores, dtype=np.float64)
    is_truth = np.asarray(is_truth, dtype=bool)
    if scores.ndim != 2 or scores.shape != is_truth.shape:
        raise ValueError(
            f"scores {scores.shape} and is_truth {is_truth.shape} must be equal 2-d shapes"
        )
    valid = np.ones_like(is_truth) if valid is None else np.asarray(valid, dtype=bool)
    if valid.shape != is_truth.shape:
        raise ValueError(f"valid {valid.shape} must have the shape of is_truth {is_truth.shape}")
    if (is_truth & ~valid).any():
        raise ValueError("a ground truth is marked as padding")
    if np.isnan(scores[valid]).any():
        raise ValueError("scores contain NaN: a candidate's loss is undefined")
    if not is_truth.any(axis=1).all():
        raise ValueError("every sample needs at least one ground-truth candidate")
    best_truth = np.where(is_truth, scores, np.inf).min(axis=1, keepdims=True)  # (S, 1)
    # (S, C): distractors ranked before it
    beaten_by = valid & ~is_truth & (np.nan_to_num(scores, nan=np.inf) <= best_truth)
    return 1 + beaten_by.sum(axis=1)


def rank_of_first_truth(scores: Sequence[float], is_truth: Sequence[bool]) -> int:
    """Rank (1-based) of the first ground truth among one sample's candidates.

    See :func:`ranks_of_first_truth` for the order (lower loss first) and the pessimistic ties.
    """
    scores_arr = np.asarray(scores, dtype=np.float64)
    truth_arr = np.asarray(is_truth, dtype=bool)
    if scores_arr.ndim != 1:
        raise ValueError(f"scores must be 1-d, got shape {scores_arr.shape}")
    return int(ranks_of_first_truth(scores_arr[None, :], truth_arr[None, :])[0])


def _check_ranks(ranks: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(ranks, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"ranks must be a non-empty 1-d sequence, got shape {arr.shape}")
    if np.isnan(arr).any() or (arr < 1).any():
        raise ValueError("ranks are 1-based: every rank must be >= 1")
    return arr


def recall_at(ranks: Sequence[float] | np.ndarray, k: int) -> float:
    """Recall@k in %: the share of samples whose first ground truth ranks in the top ``k``."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return float(100.0 * np.mean(_check_ranks(ranks) <= k))


def mean_rank(ranks: Sequence[float] | np.ndarray) -> float:
    """MR: the mean rank of the first ground truth (lower is better)."""
    return float(np.mean(_check_ranks(ranks)))


def mean_reciprocal_rank(ranks: Sequence[float] | np.ndarray) -> float:
    """MRR: the mean of 1/rank of the first ground truth (higher is better)."""
    return float(np.mean(1.0 / _check_ranks(ranks)))


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate with its bootstrap 95 % interval ``[low, high]``."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def _metrics_of_counts(values: np.ndarray, counts: np.ndarray) -> dict[str, np.ndarray]:
    """All rank metrics of samples given as ``counts`` (B, V) of the distinct ranks ``values``."""
    n = counts.sum(axis=-1)
    out = {f"R@{k}": 100.0 * counts[..., values <= k].sum(axis=-1) / n for k in RECALL_KS}
    out["MR"] = counts @ values / n
    out["MRR"] = counts @ (1.0 / values) / n
    return out


def summarize(
    ranks: Sequence[float] | np.ndarray, n_boot: int = 1000, seed: int = 0
) -> dict[str, Estimate]:
    """R@1, R@5, R@10 (%), MR and MRR of ``ranks``, each with a percentile bootstrap 95 % CI.

    The bootstrap resamples the samples with replacement ``n_boot`` times. Resampling n ranks is
    the same as drawing multinomial counts over the distinct rank values (at most the number of
    candidates), so it is vectorised as one ``(n_boot, n_distinct)`` draw from a seeded
    ``numpy.random.Generator``, whatever the number of samples.
    """
    arr = _check_ranks(ranks)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    values, counts = np.unique(arr, return_counts=True)
    point = _metrics_of_counts(values, counts.astype(np.float64))
    rng = np.random.default_rng(seed)
    boot_counts = rng.multinomial(arr.size, counts / arr.size, size=n_boot).astype(np.float64)
    boot = _metrics_of_counts(values, boot_counts)
    result = {}
    for name in RANK_METRICS:
        low, high = np.percentile(boot[name], [2.5, 97.5])
        result[name] = Estimate(float(point[name]), float(low), float(high))
    return result


def first_truth_rank_distribution(n_candidates: int = 100, n_truths: int = 5) -> list[Fraction]:
    """Exact P(R = r), r = 1..n_candidates, for a uniformly random order of the candidates.

    R is the rank of the first of ``n_truths`` ground truths among ``n_candidates``. R > r means
    all ground truths lie in the last N - r positions, so ``P(R > r) = C(N-r, m) / C(N, m)`` and
    ``P(R = r) = P(R > r-1) - P(R > r) = C(N-r, m-1) / C(N, m)`` (Pascal's rule).
    """
    if not 1 <= n_truths <= n_candidates:
        raise ValueError(f"need 1 <= n_truths <= n_candidates, got {n_truths}, {n_candidates}")
    total = math.comb(n_candidates, n_truths)
    return [
        Fraction(math.comb(n_candidates - r, n_truths - 1), total)
        for r in range(1, n_candidates + 1)
    ]


def expected_random(n_candidates: int = 100, n_truths: int = 5) -> dict[str, float]:
    """Expected R@1/5/10 (%), MR and MRR of a uniformly random ranking, computed exactly.

    From :func:`first_truth_rank_distribution`: ``R@k = 1 - C(N-k, m) / C(N, m)``,
    ``MR = sum_r r P(R=r) = (N+1)/(m+1)`` and ``MRR = sum_r P(R=r) / r``. With N = 100 this
    gives 5.00 / 23.04 / 41.62 / 16.83 / 0.1617 for m = 5 and 1.00 / 5.00 / 10.00 / 50.50 /
    0.0519 for m = 1 (docs/evaluation.md, section "Ranking").
    """
    dist = first_truth_rank_distribution(n_candidates, n_truths)
    out = {f"R@{k}": float(100 * sum(dist[:k])) for k in RECALL_KS}
    out["MR"] = float(sum(r * p for r, p in enumerate(dist, start=1)))
    out["MRR"] = float(sum(p / r for r, p in enumerate(dist, start=1)))
    return out


# ------------------------------------------------------------------------------ generation


def non_empty_rate(texts: Sequence[str | Sequence[str]]) -> float:
    """Share (0..1) of generated comments with any non-blank text (strings or token lists)."""
    if len(texts) == 0:
        raise ValueError("non_empty_rate of no texts")

    def non_empty(text: str | Sequence[str]) -> bool:
        if isinstance(text, str):
            return bool(text.strip())
        return any(token.strip() for token in text)

    return sum(non_empty(t) for t in texts) / len(texts)


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def distinct_n(texts: Sequence[Sequence[str]], n: int) -> float:
    """Distinct-n (Li et al. 2016): distinct n-grams / all n-grams over all ``texts`` (0..1).

    ``texts`` are token lists; 0.0 when they hold no n-gram at all.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    counts: Counter[tuple[str, ...]] = Counter()
    for tokens in texts:
        counts.update(_ngrams(list(tokens), n))
    total = sum(counts.values())
    return len(counts) / total if total else 0.0


@dataclass(frozen=True, slots=True)
class _BleuStats:
    matches: tuple[int, ...]  # clipped n-gram matches, n = 1..max_n
    totals: tuple[int, ...]  # hypothesis n-grams, n = 1..max_n
    hyp_len: int
    ref_len: int  # length of the closest reference (the shorter one on a tie)


def _bleu_stats(
    hypothesis: Sequence[str], references: Sequence[Sequence[str]], max_n: int
) -> _BleuStats:
    if max_n < 1:
        raise ValueError(f"max_n must be >= 1, got {max_n}")
    if len(references) == 0:
        raise ValueError("BLEU needs at least one reference")
    hyp = list(hypothesis)
    refs = [list(r) for r in references]
    matches, totals = [], []
    for n in range(1, max_n + 1):
        hyp_counts = _ngrams(hyp, n)
        max_ref: Counter[tuple[str, ...]] = Counter()
        for ref in refs:
            max_ref |= _ngrams(ref, n)  # elementwise max: the clipping counts
        matches.append(sum(min(c, max_ref[g]) for g, c in hyp_counts.items()))
        totals.append(max(len(hyp) - n + 1, 0))
    ref_len = min((len(r) for r in refs), key=lambda length: (abs(length - len(hyp)), length))
    return _BleuStats(tuple(matches), tuple(totals), len(hyp), ref_len)


def _bleu_of_stats(stats: Sequence[_BleuStats], max_n: int, smooth: bool) -> float:
    matches = [sum(s.matches[i] for s in stats) for i in range(max_n)]
    totals = [sum(s.totals[i] for s in stats) for i in range(max_n)]
    hyp_len = sum(s.hyp_len for s in stats)
    ref_len = sum(s.ref_len for s in stats)
    if hyp_len == 0 or matches[0] == 0:
        return 0.0
    log_p = 0.0
    for i in range(max_n):
        m, t = matches[i], totals[i]
        if smooth and i > 0:  # add-one for n >= 2 (Lin & Och 2004)
            m, t = m + 1, t + 1
        if m == 0:
            return 0.0
        log_p += math.log(m / t) / max_n
    brevity = 1.0 if hyp_len > ref_len else math.exp(1.0 - ref_len / hyp_len)
    return brevity * math.exp(log_p)


def bleu(
    hypothesis: Sequence[str],
    references: Sequence[Sequence[str]],
    max_n: int = 4,
    smooth: bool = True,
) -> float:
    """Sentence BLEU (0..1) of one token list against its reference token lists.

    Clipped n-gram precisions for n = 1..``max_n``, uniform weights, brevity penalty against the
    closest reference length (the shorter one on a tie). Smoothing: Lin & Och (2004) add-one,
    Chen & Cherry (2014) "smoothing 2": p_n = (m_n + 1) / (l_n + 1) for n >= 2, unigram precision
    unsmoothed (NLTK's ``method2`` also smooths unigrams; we do not). So a hypothesis with no
    unigram match scores 0, and an empty hypothesis scores 0.
    """
    return _bleu_of_stats([_bleu_stats(hypothesis, references, max_n)], max_n, smooth)


def corpus_bleu(
    hypotheses: Sequence[Sequence[str]],
    references: Sequence[Sequence[Sequence[str]]],
    max_n: int = 4,
    smooth: bool = False,
) -> float:
    """Corpus BLEU (0..1), Papineni et al. (2002): n-gram matches, n-gram totals and lengths
    summed over all hypotheses before the precisions and the brevity penalty are taken.

    Unsmoothed by default, as ``multi-bleu.perl``; ``smooth=True`` applies the add-one smoothing
    of :func:`bleu` to the summed counts.
    """
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets")
    if len(hypotheses) == 0:
        raise ValueError("corpus_bleu of no hypotheses")
    stats = [_bleu_stats(h, refs, max_n) for h, refs in zip(hypotheses, references, strict=True)]
    return _bleu_of_stats(stats, max_n, smooth)


# ------------------------------------------------------------------- knowledge in generation


@dataclass(frozen=True)
class WindowKnowledge:
    """What the knowledge metrics of one generated comment are measured against."""

    stated: frozenset[str]  # the values its ground truths state
    true: frozenset[str]  # every value of a fact of an entity linked in the window
    relation_values: frozenset[str]  # every known value of the relations those entities have
    new_fact_words: frozenset[str]  # recalled facts' words not in the window's comments


def _longest(values: set[str]) -> set[str]:
    """``values`` without those inside a longer one (``2004年`` inside ``2004年06月25日``)."""
    return {v for v in values if not any(v != w and v in w for w in values)}


def _knowledge_f1(words: Sequence[str], new_fact_words: frozenset[str]) -> float:
    """Unigram F1 between a comment's words and the new fact words of its window."""
    hits = sum(1 for t in words if t in new_fact_words)
    if not hits or not new_fact_words:
        return 0.0
    p, r = hits / len(words), len(set(words) & new_fact_words) / len(new_fact_words)
    return 2 * p * r / (p + r)


def knowledge_generation_metrics(
    texts: list[str], words: list[list[str]], windows: list[WindowKnowledge]
) -> dict:
    """``fact_copy``: share of comments containing a value their ground truth states;
    ``supported_values``/``unsupported_values``: among comments containing a value of a
    relation the window's entities have, the share whose values are all true for an entity of
    the window, and the share with one that is not (a hallucinated fact); ``knowledge_f1``:
    mean unigram F1 between a comment's words and the recalled facts' words that are not
    already in the window's comments (Dinan et al. 2019, "Wizard of Wikipedia", §4.2)."""
    copied = supported = unsupported = 0
    f1s = []
    for text, toks, w in zip(texts, words, windows, strict=True):
        copied += any(v in text for v in w.stated)
        contained = _longest({v for v in w.relation_values if v in text})
        if contained:
            if contained <= w.true:
                supported += 1
            else:
                unsupported += 1
        f1s.append(_knowledge_f1(toks, w.new_fact_words))
    n, with_values = len(texts), supported + unsupported
    return {
        "knowledge_samples": n,
        "fact_copy": round(copied / n, 4) if n else 0.0,
        "with_values": with_values,
        "supported_values": round(supported / with_values, 4) if with_values else 0.0,
        "unsupported_values": round(unsupported / with_values, 4) if with_values else 0.0,
        "knowledge_f1": round(float(np.mean(f1s)), 4) if f1s else 0.0,
    }
