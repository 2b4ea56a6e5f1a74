"""Using a trained checkpoint: open it with the data it needs, and evaluate it.

``model.train`` evaluates the model it has just trained with :func:`evaluate_model`;
``model.evaluate`` and ``model.generate`` open a checkpoint with :func:`open_checkpoint`, which
reads the corpus the checkpoint was trained on unless ``--corpus``/``--format`` say otherwise
and refuses data the checkpoint cannot read (another vocabulary or feature size).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

import numpy as np
import torch

from common.device import resolve_device
from common.settings import RunSettings
from kg.store import GraphStore
from model.checkpoint import Checkpoint, CheckpointError, check_compatible, load_checkpoint
from model.data.vocab import words_to_text
from model.evaluate import (
    WindowKnowledge,
    generate_best,
    generation_report,
    is_candidate,
    knowledge_generation_metrics,
    rank,
    rank_block,
    ranking_report,
    spread,
)
from model.klvcg import KLVCG
from model.pipeline import ModelData, add_data_args, build_data, lengths_of
from model.value_swap import relation_values, swap_arrays
from retrieval.bootstrap import open_bootstrapped_store
from retrieval.recall import window_of

KNOWLEDGE_GENERATION_SAMPLES = 300


def add_checkpoint_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (model.train --out)")
    add_data_args(p, default_format=None)


def build_model(ckpt: Checkpoint, device: torch.device) -> KLVCG:
    model = KLVCG(ckpt.model_config)
    try:
        model.load_state_dict(ckpt.state_dict)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(
            f"{ckpt.directory}: the weights do not fit their configuration ({first})"
        ) from None
    return model.to(device).eval()


@dataclass
class Opened:
    ckpt: Checkpoint
    data: ModelData
    model: KLVCG
    device: torch.device


def with_trained_corpus(settings: RunSettings, ckpt: Checkpoint) -> RunSettings:
    """``settings`` with the corpus the checkpoint was trained on, unless they name one."""
    if settings.format is not None:
        return settings
    return replace(
        settings,
        format=ckpt.data.get("format", "demo"),
        corpus=settings.corpus if settings.corpus is not None else ckpt.data.get("corpus"),
    )


def open_checkpoint(ckpt: Checkpoint, settings: RunSettings, store: GraphStore) -> Opened:
    """The checkpoint's model on ``settings.device`` and its data (the corpus of ``settings``,
    see :func:`with_trained_corpus`, and the KG in ``store``)."""
    data = build_data(settings, store, lengths_of(ckpt.model_config))
    check_compatible(ckpt, data.vocab, data.frame_dim)
    device = resolve_device(settings.device)
    return Opened(ckpt, data, build_model(ckpt, device), device)


def evaluate_model(
    model: KLVCG,
    data: ModelData,
    device: torch.device,
    *,
    split: str = "test",
    use_kg: bool = True,
    generation_samples: int = 100,
    eval_samples: int | None = None,
    progress: bool = True,
) -> dict:
    """Ranking metrics (overall and knowledge subset) and generation metrics on ``split``
    (on ``eval_samples`` evenly spread samples of it when given: a quick look)."""
    encoded = data.split(split)
    if len(encoded) == 0:
        raise CheckpointError(f"{data.ctx.corpus.path}: the {split} split has no samples")
    ids, truth = data.candidates(split, encoded)
    idx = spread(len(encoded), eval_samples or len(encoded))
    ranks = rank(
        model,
        encoded,
        ids,
        truth,
        device,
        idx=idx,
        use_kg=use_kg,
        progress=progress,
        desc=f"ranking {split}",
    )
    flagged, stated = encoded.knowledge_target, encoded.knowledge_stated
    # the demo corpus flags its knowledge comments; every other corpus uses the definition
    subset, definition = (flagged, "flags") if flagged.any() else (stated, "stated")
    report = ranking_report(ranks, subset[idx], truth[idx], is_candidate(ids[idx]))
    report["knowledge_subset"]["definition"] = definition
    report["knowledge_counts"] = {
        "flagged": int(flagged[idx].sum()),
        "stated": int(stated[idx].sum()),
        "both": int((flagged & stated)[idx].sum()),
    }
    report["candidates"] = int(ids.shape[1])
    report["split"] = split
    report["value_swap"] = value_swap_report(
        model, data, split, encoded, device, idx, use_kg, progress
    )
    if generation_samples > 0:
        vocab = data.vocab
        refs = _references(encoded, vocab)
        report["generation"] = generation_report(
            model,
            encoded,
            refs,
            vocab,
            device,
            spread(len(encoded), generation_samples),
            use_kg=use_kg,
            progress=progress,
        )
        report["generation"].update(
            knowledge_generation(model, data, encoded, device, stated, use_kg, progress)
        )
    return report


def value_swap_report(model, data, split, encoded, device, idx, use_kg, progress) -> dict:
    """Ranking of the value-swap sets (:mod:`model.value_swap`) of the samples ``idx``."""
    sets = [s for s in data.swap_sets(split, encoded) if s.sample in set(idx.tolist())]
    owners, ids, truth = swap_arrays(sets, data.featurizer, encoded.unseen())
    ranks = rank(
        model,
        encoded,
        ids,
        truth,
        device,
        idx=owners,
        use_kg=use_kg,
        progress=progress,
        desc=f"value swap {split}",
        aligned=True,
    )
    block = rank_block(ranks, truth, is_candidate(ids))
    block["sets"] = len(sets)
    block["mean_size"] = round(float(is_candidate(ids).sum(axis=1).mean()), 2) if sets else 0.0
    return block


def knowledge_generation(model, data, encoded, device, stated, use_kg, progress) -> dict:
    """:func:`model.evaluate.knowledge_generation_metrics` of the best beam comments on the
    knowledge-bearing windows of the split (by the stated-fact definition; at most
    ``KNOWLEDGE_GENERATION_SAMPLES`` of them, evenly spread)."""
    linker, tokens = data.ctx.linker, data.featurizer.tokenizer
    rows = np.flatnonzero(stated)
    rows = rows[spread(len(rows), KNOWLEDGE_GENERATION_SAMPLES)]
    hyps, _ = generate_best(
        model,
        encoded,
        data.vocab,
        device,
        rows,
        use_kg=use_kg,
        progress=progress,
    )
    pool = relation_values(encoded, linker)
    per_sample: dict[int, set[str]] = {}
    for i, facts in zip(encoded.target_sample.tolist(), encoded.stated, strict=True):
        per_sample.setdefault(i, set()).update(f[2] for f in facts)
    windows = []
    for i in rows.tolist():
        facts = [f for e in encoded.linked[i] for f in linker.entity_facts(e)]
        relations = {f.relation for f in facts}
        video = data.ctx.corpus.videos[encoded.video[i]]
        window, _ = window_of(video, int(encoded.t[i]), linker.config.radius)
        said = {w for c in window for w in tokens(c.text)}
        fact_words = {w for f in encoded.facts[i] for w in tokens(f["text"])}
        windows.append(
            WindowKnowledge(
                stated=frozenset(per_sample.get(i, ())),
                true=frozenset(f.tail for f in facts),
                relation_values=frozenset(v for r in relations for v in pool.get(r, ())),
                new_fact_words=frozenset(fact_words - said),
            )
        )
    texts = [words_to_text(h) for h in hyps]
    return knowledge_generation_metrics(texts, hyps, windows)


def _references(encoded, vocab) -> list[list[list[str]]]:
    """Each sample's ground truths as words (the words the vocabulary lacks included: a model
    with a copy path can write them)."""
    by_sample: list[list[list[str]]] = [[] for _ in range(len(encoded))]
    for row, i in zip(encoded.targets, encoded.target_sample, strict=True):
        by_sample[int(i)].append(encoded.words(row.tolist(), vocab))
    return by_sample


def evaluate_checkpoint(args: argparse.Namespace) -> dict:
    """``python -m model.evaluate``: the checkpoint of ``args`` on the data its flags name."""
    ckpt = load_checkpoint(args.checkpoint)  # fails before anything is built
    settings = with_trained_corpus(RunSettings.from_args(args), ckpt)
    store = open_bootstrapped_store(settings)
    opened = open_checkpoint(ckpt, settings, store)
    report = evaluate_model(
        opened.model,
        opened.data,
        opened.device,
        split=args.split,
        use_kg=opened.ckpt.train_config.kg_in_finetune,
        generation_samples=args.generation_samples,
        eval_samples=args.eval_samples,
        progress=settings.progress,
    )
    report["checkpoint"] = str(opened.ckpt.directory)
    report["ablation"] = opened.ckpt.train_config.ablation
    return report
