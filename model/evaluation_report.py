"""The report of an evaluation (:func:`model.evaluation.evaluate_model`): typed blocks, their
JSON form (:meth:`EvaluationReport.as_dict`: the keys of ``metrics.json`` and of ``--json``,
in that order) and the printed table.

Pure: the blocks are built from ranks and metric values, so the report's shape and its
formatting can be checked without a model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from model.metrics import RANK_METRICS, expected_random, summarize

#: The report's key of each rank metric.
KEYS = dict(zip(RANK_METRICS, ("r1", "r5", "r10", "mr", "mrr"), strict=True))


@dataclass(frozen=True)
class RankScores:
    """R@1, R@5, R@10 (%), MR and MRR."""

    r1: float
    r5: float
    r10: float
    mr: float
    mrr: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class RankEstimates:
    """Point estimates, the bounds of their bootstrap 95 % intervals, and what a uniformly
    random ranker scores on the same candidate sets."""

    value: RankScores
    low: RankScores
    high: RankScores
    random: RankScores


@dataclass(frozen=True)
class RankBlock:
    """The ranking metrics of ``n`` samples (none without samples)."""

    n: int
    estimates: RankEstimates | None = None

    def as_dict(self) -> dict:
        """``{"r1", "r5", "r10", "mr", "mrr", "ci": {...}, "n", "random": {...}}``;
        ``{"n": 0}`` without samples."""
        est = self.estimates
        if est is None:
            return {"n": self.n}
        low, high = est.low.as_dict(), est.high.as_dict()
        return {
            **est.value.as_dict(),
            "ci": {k: [low[k], high[k]] for k in KEYS.values()},
            "n": self.n,
            "random": est.random.as_dict(),
        }


def random_anchor(is_truth: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """What a uniformly random ranker scores on these candidate sets: the exact expectation
    for each sample's number of candidates (``valid`` ones; padding is not a candidate) and
    ground truths, averaged over the samples (MRR 0.1617 when every sample has 100
    candidates with 5 ground truths)."""
    valid = np.ones_like(is_truth, dtype=bool) if valid is None else valid
    n_cand, n_truth = valid.sum(axis=1), is_truth.sum(axis=1)
    pairs, counts = np.unique(np.stack([n_cand, n_truth], axis=1), axis=0, return_counts=True)
    out = dict.fromkeys(RANK_METRICS, 0.0)
    for (c, m), k in zip(pairs.tolist(), counts.tolist(), strict=True):
        for name, v in expected_random(c, m).items():
            out[name] += v * k / len(n_truth)
    return {KEYS[m]: round(out[m], 4) for m in RANK_METRICS}


def rank_block(ranks: np.ndarray, is_truth: np.ndarray, valid: np.ndarray) -> RankBlock:
    """The :class:`RankBlock` of ``ranks`` (rounded to 4 decimals); ``is_truth`` and ``valid``
    are the samples' candidate sets, for the random ranker."""
    if ranks.size == 0:
        return RankBlock(0)
    est = summarize(ranks)

    def scores(part: str) -> RankScores:
        return RankScores(**{KEYS[m]: round(getattr(est[m], part), 4) for m in RANK_METRICS})

    random = RankScores(**random_anchor(is_truth, valid))
    return RankBlock(
        int(ranks.size), RankEstimates(scores("value"), scores("low"), scores("high"), random)
    )


@dataclass(frozen=True)
class KnowledgeSubset:
    """The ranking on the knowledge-bearing samples, and which definition chose them
    (``"flags"``: the demo corpus's flags; ``"stated"``: a ground truth states a fact)."""

    ranking: RankBlock
    definition: str

    def as_dict(self) -> dict:
        return {**self.ranking.as_dict(), "definition": self.definition}


@dataclass(frozen=True)
class KnowledgeCounts:
    """Knowledge-bearing samples among those ranked, by each definition and by both."""

    flagged: int
    stated: int
    both: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class ValueSwapBlock:
    """The ranking of the value-swap sets (:mod:`model.value_swap`): how many, of what mean
    size."""

    ranking: RankBlock
    sets: int
    mean_size: float

    def as_dict(self) -> dict:
        return {**self.ranking.as_dict(), "sets": self.sets, "mean_size": self.mean_size}


@dataclass(frozen=True)
class KnowledgeGeneration:
    """:func:`model.metrics.knowledge_generation_metrics` of generated comments."""

    knowledge_samples: int
    fact_copy: float
    with_values: int
    supported_values: float
    unsupported_values: float
    knowledge_f1: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GenerationReport:
    """Beam-search comments of spread samples: non-empty rate, distinct-1..4, BLEU, median
    latency, and the knowledge metrics on the knowledge-bearing windows."""

    samples: int
    non_empty: float
    distinct_1: float
    distinct_2: float
    distinct_3: float
    distinct_4: float
    bleu: float
    latency_ms_p50: float
    knowledge: KnowledgeGeneration

    def as_dict(self) -> dict:
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "knowledge"}
        return {**own, **self.knowledge.as_dict()}


@dataclass(frozen=True)
class EngagementReport:
    """:func:`model.engagement.engagement_metrics` of the generated comments of the split's
    samples with like counts (``liked_samples`` of them in the split; ``samples``: those
    measured, with both reference sets), and the sentence embedder of ``semantic_high``."""

    liked_samples: int
    samples: int
    bleu_high: float | None
    recall_high: float | None
    semantic_high: float | None
    bleu_low: float | None
    relative: float | None
    relative_wins: float | None
    references_high: float | None
    references_low: float | None
    embedder: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EvaluationReport:
    """Everything one evaluation of a model on a split measured."""

    ranking: RankBlock  # all the ranked samples
    knowledge_subset: KnowledgeSubset
    knowledge_counts: KnowledgeCounts
    candidates: int  # candidates per sample (the widest set)
    split: str
    value_swap: ValueSwapBlock
    generation: GenerationReport | None = None  # None when no samples were generated
    engagement: EngagementReport | None = None  # None: nothing generated, or no like counts

    def as_dict(self) -> dict:
        """The JSON form: the ranking of all samples at the top level, then the other blocks."""
        out = {
            **self.ranking.as_dict(),
            "knowledge_subset": self.knowledge_subset.as_dict(),
            "knowledge_counts": self.knowledge_counts.as_dict(),
            "candidates": self.candidates,
            "split": self.split,
            "value_swap": self.value_swap.as_dict(),
        }
        if self.generation is not None:
            out["generation"] = self.generation.as_dict()
        if self.engagement is not None:
            out["engagement"] = self.engagement.as_dict()
        return out


# ------------------------------------------------------------------------------ formatting


def _cells(n: int, est: RankEstimates) -> str:
    """One row of the table: each metric with its interval, then n."""
    cells = []
    for key in KEYS.values():
        value, lo, hi = (getattr(s, key) for s in (est.value, est.low, est.high))
        digits, width = (3, 22) if key == "mrr" else (2, 20)
        cells.append(f"{value:.{digits}f} [{lo:.{digits}f},{hi:.{digits}f}]".rjust(width))
    return f"{''.join(cells)}{n:>7}"


def format_table(report: EvaluationReport) -> str:
    """The metrics table with 95 % intervals, overall, on the knowledge-bearing subset and on
    the value-swap sets, then the random ranker's R@1 and MRR on each."""
    lines = [
        f"{'':<18}{'R@1':>20}{'R@5':>20}{'R@10':>20}{'MR':>20}{'MRR':>22}{'n':>7}",
    ]
    blocks = [
        ("all", report.ranking),
        ("knowledge subset", report.knowledge_subset.ranking),
        ("value swap", report.value_swap.ranking),
    ]
    for name, block in blocks:
        row = (
            "(no samples)".rjust(20)
            if block.estimates is None
            else _cells(block.n, block.estimates)
        )
        lines.append(f"{name:<18}{row}")
    for name, block in blocks:
        if block.estimates is not None:
            anchor = block.estimates.random
            lines.append(f"random ranker, {name}: R@1 {anchor.r1:.2f}, MRR {anchor.mrr:.3f}")
    if report.engagement is not None:
        lines.append(format_engagement(report.engagement))
    return "\n".join(lines)


def format_engagement(engagement: EngagementReport) -> str:
    """The engagement metrics on one line (the paper's B_r, R_r, Bs_r and relative
    engagement against the high- and low-liked reference sets)."""
    e = engagement
    if not e.samples:
        return f"engagement: no sample with both reference sets ({e.liked_samples} with likes)"

    def cell(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    return (
        f"engagement ({e.samples} samples with likes): B_r {cell(e.bleu_high)}, "
        f"R_r {cell(e.recall_high)}, Bs_r {cell(e.semantic_high)} ({e.embedder}), "
        f"B_low {cell(e.bleu_low)}, relative {cell(e.relative)}, "
        f"high beats low {cell(e.relative_wins)}"
    )


def format_generation(generation: GenerationReport) -> str:
    """The generation metrics on one line, as ``model.train`` prints them."""
    return "generation: " + ", ".join(f"{k} {v}" for k, v in generation.as_dict().items())
