"""Evaluating a model on a split: ranking and generation (docs/evaluation.md; KLVCG §V-A;
LiveBot §5), returned as an :class:`~model.evaluation_report.EvaluationReport`.

Ranking (:mod:`model.ranking`): the split's candidate sets, overall and on the
knowledge-bearing subset, and the value-swap sets (:mod:`model.value_swap`). Generation: beam
search on a fixed, evenly spread subset of the samples, and on the knowledge-bearing windows
for the knowledge metrics (:func:`model.metrics.knowledge_generation_metrics`); on a split with
like counts, the engagement metrics (:mod:`model.engagement`) of the comments of its liked
samples, the generation pass's comments reused.

A library: no argument parsing and no printing. ``model.train`` and ``model.evaluate`` call
:func:`evaluate_model` and print the report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from tqdm import tqdm

from model.backbones import Backbone
from model.checkpoint import CheckpointError
from model.data.schema import Video
from model.data.vocab import Vocab, words_to_text
from model.encoded_split import Encoded
from model.engagement import (
    SEGMENT_S,
    engagement_metrics,
    mean_cosine,
    reference_sets,
    segment_comments,
)
from model.evaluation_report import (
    EngagementReport,
    EvaluationReport,
    GenerationReport,
    KnowledgeCounts,
    KnowledgeGeneration,
    KnowledgeSubset,
    RankBlock,
    ValueSwapBlock,
    rank_block,
)
from model.generator import banned_ids
from model.metrics import (
    WindowKnowledge,
    corpus_bleu,
    distinct_n,
    knowledge_generation_metrics,
    non_empty_rate,
)
from model.model_data import ModelData
from model.ranking import is_candidate, rank, spread
from model.value_swap import relation_values, swap_arrays
from retrieval.embedders import DEFAULT_EMBEDDER, make_embedder
from retrieval.embedding import Embedder
from retrieval.recall import window_of

GENERATION_SAMPLES = 100
KNOWLEDGE_GENERATION_SAMPLES = 300
#: At most this many liked samples for the engagement metrics (model.engagement), and no more
#: than the generation metrics' samples.
ENGAGEMENT_SAMPLES = 100


def evaluate_model(
    model: Backbone,
    data: ModelData,
    device: torch.device,
    *,
    split: str = "test",
    use_kg: bool = True,
    generation_samples: int = GENERATION_SAMPLES,
    eval_samples: int | None = None,
    progress: bool = True,
) -> EvaluationReport:
    """Ranking metrics (overall, knowledge subset, value swap) and generation metrics on
    ``split`` (ranking on ``eval_samples`` evenly spread samples of it when given: a quick
    look; no generation when ``generation_samples`` is 0)."""
    encoded = data.split(split)
    if len(encoded) == 0:
        raise CheckpointError(f"{data.ctx.corpus.path}: the {split} split has no samples")
    run = SplitEvaluation(model, data, encoded, split, device, use_kg, progress)
    idx = spread(len(encoded), eval_samples or len(encoded))
    ids, truth = data.candidates(split, encoded)
    ranking, knowledge_subset = run.ranking(ids, truth, idx)
    value_swap = run.value_swap(idx)
    generation = engagement = None
    if generation_samples > 0:
        gen_idx = spread(len(encoded), generation_samples)
        hyps, latencies = run.generate(gen_idx)
        generation = run.generation_report(hyps, gen_idx, latencies)
        generated = dict(zip(gen_idx.tolist(), hyps, strict=True))
        engagement = run.engagement(generated, min(generation_samples, ENGAGEMENT_SAMPLES))
    return EvaluationReport(
        ranking=ranking,
        knowledge_subset=knowledge_subset,
        knowledge_counts=run.knowledge_counts(idx),
        candidates=int(ids.shape[1]),
        split=split,
        value_swap=value_swap,
        generation=generation,
        engagement=engagement,
    )


@dataclass(frozen=True)
class SplitEvaluation:
    """One model on one encoded split of ``data``: the steps of :func:`evaluate_model`."""

    model: Backbone
    data: ModelData
    encoded: Encoded
    split: str
    device: torch.device
    use_kg: bool
    progress: bool

    @cached_property
    def videos(self) -> dict[str, Video]:
        """Each video as the split sees it (``Corpus.split``: for a video split by time, only
        the split's ranges), for the windows the metrics read."""
        return {v.id: v for v in self.data.ctx.corpus.split(self.split)}

    def rank(
        self, ids: np.ndarray, truth: np.ndarray, idx: np.ndarray, desc: str, aligned: bool = False
    ) -> np.ndarray:
        """:func:`model.ranking.rank` of the candidate sets ``ids`` of the samples ``idx``."""
        return rank(
            self.model,
            self.encoded,
            ids,
            truth,
            self.device,
            idx=idx,
            use_kg=self.use_kg,
            progress=self.progress,
            desc=desc,
            aligned=aligned,
        )

    def ranking(
        self, ids: np.ndarray, truth: np.ndarray, idx: np.ndarray
    ) -> tuple[RankBlock, KnowledgeSubset]:
        """The ranking of the candidate sets ``ids`` of the samples ``idx``: all of them, and
        the knowledge-bearing ones (:meth:`knowledge_samples`)."""
        ranks = self.rank(ids, truth, idx, f"ranking {self.split}")
        subset, definition = self.knowledge_samples()
        truth, valid, knowledge = truth[idx], is_candidate(ids[idx]), subset[idx]
        return rank_block(ranks, truth, valid), KnowledgeSubset(
            rank_block(ranks[knowledge], truth[knowledge], valid[knowledge]), definition
        )

    def knowledge_samples(self) -> tuple[np.ndarray, str]:
        """The knowledge-bearing samples and the definition that chose them: the demo corpus
        flags its knowledge comments; every other corpus uses the stated-fact definition."""
        flagged = self.encoded.knowledge_target
        if flagged.any():
            return flagged, "flags"
        return self.encoded.knowledge_stated, "stated"

    def knowledge_counts(self, idx: np.ndarray) -> KnowledgeCounts:
        flagged, stated = self.encoded.knowledge_target, self.encoded.knowledge_stated
        return KnowledgeCounts(
            flagged=int(flagged[idx].sum()),
            stated=int(stated[idx].sum()),
            both=int((flagged & stated)[idx].sum()),
        )

    def value_swap(self, idx: np.ndarray) -> ValueSwapBlock:
        """Ranking of the value-swap sets (:mod:`model.value_swap`) of the samples ``idx``."""
        wanted = set(idx.tolist())
        sets = [s for s in self.data.swap_sets(self.split, self.encoded) if s.sample in wanted]
        owners, ids, truth = swap_arrays(sets, self.data.text_encoder, self.encoded.unseen())
        ranks = self.rank(ids, truth, owners, f"value swap {self.split}", aligned=True)
        valid = is_candidate(ids)
        mean_size = round(float(valid.sum(axis=1).mean()), 2) if sets else 0.0
        return ValueSwapBlock(rank_block(ranks, truth, valid), len(sets), mean_size)

    def generation(self, samples: int) -> GenerationReport:
        """Generation metrics of the best beam comments of ``samples`` spread samples, and
        the knowledge metrics (:meth:`knowledge_generation`)."""
        idx = spread(len(self.encoded), samples)
        hyps, latencies = self.generate(idx)
        return self.generation_report(hyps, idx, latencies)

    def generation_report(
        self, hyps: list[list[str]], idx: np.ndarray, latencies: list[float]
    ) -> GenerationReport:
        """:meth:`generation` of the comments ``hyps`` already generated for ``idx``."""
        references = self.references()
        refs = [references[i] for i in idx]
        distinct = [round(distinct_n(hyps, n), 4) for n in (1, 2, 3, 4)]
        return GenerationReport(
            samples=len(hyps),
            non_empty=round(non_empty_rate(hyps), 4),
            distinct_1=distinct[0],
            distinct_2=distinct[1],
            distinct_3=distinct[2],
            distinct_4=distinct[3],
            bleu=round(corpus_bleu(hyps, refs, smooth=True), 4) if hyps else 0.0,
            latency_ms_p50=round(1000 * float(np.median(latencies)), 1) if latencies else 0.0,
            knowledge=self.knowledge_generation(),
        )

    def engagement(
        self, generated: dict[int, list[str]], samples: int = ENGAGEMENT_SAMPLES
    ) -> EngagementReport | None:
        """:mod:`model.engagement` on ``samples`` evenly spread samples of the split with like
        counts, reusing the comments ``generated`` for the generation metrics (sample ->
        words; all of them when every sample has counts) and generating the others; None
        when no sample has counts."""
        liked = np.flatnonzero(self.encoded.has_likes)
        if not len(liked):
            return None
        rows = liked[spread(len(liked), samples)]
        missing = np.array([i for i in rows.tolist() if i not in generated], dtype=np.int64)
        if len(missing):
            more = self.generate(missing)[0]
            generated = {**generated, **dict(zip(missing.tolist(), more, strict=True))}
        tokens = self.data.text_encoder.tokenizer
        radius = self.model.cfg.radius
        hyps, highs, lows = [], [], []
        for i in rows.tolist():
            video = self.videos[self.encoded.video[i]]
            t = int(self.encoded.t[i])
            nearby = video.comments_between(t - SEGMENT_S, t + SEGMENT_S + 1)
            segment = segment_comments(
                [(c.time_s, tokens(c.text), c.likes or 0, c.text) for c in nearby],
                t,
                radius,
                SEGMENT_S,
            )
            high, low = reference_sets(segment)
            if high and low:
                hyps.append(generated[i])
                highs.append(high)
                lows.append(low)
        embedder = self.embedder()
        similarities = []
        if hyps:
            texts = [words_to_text(h) for h in hyps] + [c.text for r in highs for c in r]
            vectors = embedder.embed(texts)
            refs = vectors[len(hyps) :]
            start = 0
            for k, high in enumerate(highs):
                similarities.append(mean_cosine(vectors[k], refs[start : start + len(high)]))
                start += len(high)
        metrics = engagement_metrics(
            hyps,
            [[c.words for c in r] for r in highs],
            [[c.words for c in r] for r in lows],
            similarities,
        )
        return EngagementReport(liked_samples=int(len(liked)), **metrics, embedder=embedder.name)

    def embedder(self) -> Embedder:
        """The sentence embedder the product uses: the other-videos comment index's, or the
        data's spec when the corpus has no index."""
        index = self.data.ctx.index
        if index is not None:
            return index.embedder
        return make_embedder(self.data.encoding_key.get("embedder", DEFAULT_EMBEDDER))

    def generate(self, idx: np.ndarray) -> tuple[list[list[str]], list[float]]:
        """:func:`generate_best` of the samples ``idx``."""
        return generate_best(
            self.model,
            self.encoded,
            self.data.vocab,
            self.device,
            idx,
            use_kg=self.use_kg,
            progress=self.progress,
        )

    def references(self) -> list[list[list[str]]]:
        """Each sample's ground truths as words (the words the vocabulary lacks included: a
        model with a copy path can write them)."""
        encoded, vocab = self.encoded, self.data.vocab
        by_sample: list[list[list[str]]] = [[] for _ in range(len(encoded))]
        for row, i in zip(encoded.targets, encoded.target_sample, strict=True):
            by_sample[int(i)].append(encoded.words(row.tolist(), vocab))
        return by_sample

    def knowledge_generation(self) -> KnowledgeGeneration:
        """:func:`model.metrics.knowledge_generation_metrics` of the best beam comments on the
        knowledge-bearing windows of the split (by the stated-fact definition; at most
        ``KNOWLEDGE_GENERATION_SAMPLES`` of them, evenly spread)."""
        rows = np.flatnonzero(self.encoded.knowledge_stated)
        rows = rows[spread(len(rows), KNOWLEDGE_GENERATION_SAMPLES)]
        hyps, _ = self.generate(rows)
        texts = [words_to_text(h) for h in hyps]
        metrics = knowledge_generation_metrics(texts, hyps, self.windows(rows))
        return KnowledgeGeneration(**metrics)

    def windows(self, rows: np.ndarray) -> list[WindowKnowledge]:
        """What the knowledge metrics of the comment of each sample ``rows`` are measured
        against."""
        encoded, linker = self.encoded, self.data.ctx.linker
        tokens = self.data.text_encoder.tokenizer
        pool = relation_values(encoded, linker)
        per_sample: dict[int, set[str]] = {}
        for i, facts in zip(encoded.target_sample.tolist(), encoded.stated, strict=True):
            per_sample.setdefault(i, set()).update(f[2] for f in facts)
        windows = []
        for i in rows.tolist():
            facts = [f for e in encoded.linked[i] for f in linker.entity_facts(e)]
            relations = {f.relation for f in facts}
            video = self.videos[encoded.video[i]]
            window, _ = window_of(video, int(encoded.t[i]), linker.config.radius)
            said = {w for c in window for w in tokens(c.text)}
            fact_words = {w for f in encoded.facts[i] for w in tokens(f.text)}
            windows.append(
                WindowKnowledge(
                    stated=frozenset(per_sample.get(i, ())),
                    true=frozenset(f.tail for f in facts),
                    relation_values=frozenset(v for r in relations for v in pool.get(r, ())),
                    new_fact_words=frozenset(fact_words - said),
                )
            )
        return windows


@torch.no_grad()
def generate_best(
    model: Backbone,
    encoded: Encoded,
    vocab: Vocab,
    device: torch.device,
    idx: np.ndarray,
    beam: int = 5,
    use_kg: bool = True,
    progress: bool = False,
) -> tuple[list[list[str]], list[float]]:
    """The best beam-search comment (as words, copied ones included) of each sample ``idx``,
    and the seconds each took (encoding and search)."""
    model.eval()
    space = encoded.space(model.cfg)
    hyps, latencies = [], []
    for i in tqdm(idx, desc="generating", unit=" samples", disable=not progress, leave=False):
        started = time.perf_counter()
        enc = model.encode(encoded.batch([i], device, space), use_kg=use_kg)
        best = model.generate(enc, beam=beam, banned=banned_ids(space))
        latencies.append(time.perf_counter() - started)
        hyps.append(encoded.decode(best[0][0], int(i), space, vocab) if best else [])
    return hyps, latencies
