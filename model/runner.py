"""Using a trained checkpoint: open it with the data it needs, and evaluate it.

``model.train`` evaluates the model it has just trained with :func:`evaluate_model`;
``model.evaluate`` and ``model.generate`` open a checkpoint with :func:`open_checkpoint`, which
reads the corpus the checkpoint was trained on unless ``--corpus``/``--format`` say otherwise
and refuses data the checkpoint cannot read (another vocabulary or feature size).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch

from model.batching import Featurizer
from model.checkpoint import Checkpoint, CheckpointError, check_compatible, load_checkpoint
from model.data.vocab import SEP, UNK
from model.device import resolve_device
from model.evaluate import generation_report, is_candidate, rank, ranking_report, spread
from model.klvcg import KLVCG
from model.pipeline import ModelData, add_data_args, build_data, lengths_of


def add_checkpoint_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (model.train --out)")
    add_data_args(p, default_format=None)


def banned_ids(featurizer: Featurizer) -> tuple[int, ...]:
    """Ids generation never produces: <UNK>, the separator and the model's own tokens."""
    return (UNK, SEP, featurizer.mask_id, featurizer.cls_id)


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


def with_trained_corpus(args: argparse.Namespace, ckpt: Checkpoint) -> argparse.Namespace:
    """``args`` with the corpus the checkpoint was trained on, unless they name one."""
    if args.format is not None:
        return args
    args = argparse.Namespace(**vars(args))
    args.format = ckpt.data.get("format", "demo")
    if args.corpus is None:
        args.corpus = ckpt.data.get("corpus")
    return args


def open_checkpoint(args: argparse.Namespace) -> Opened:
    """The checkpoint of ``args.checkpoint``, its model on ``args.device``, and its data."""
    ckpt = load_checkpoint(args.checkpoint)
    args = with_trained_corpus(args, ckpt)
    data = build_data(args, lengths_of(ckpt.model_config))
    check_compatible(ckpt, data.vocab, data.frame_dim)
    device = resolve_device(args.device)
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
    report = ranking_report(
        ranks, encoded.knowledge_target[idx], truth[idx], is_candidate(ids[idx])
    )
    report["candidates"] = int(ids.shape[1])
    report["split"] = split
    if generation_samples > 0:
        vocab = data.vocab
        refs = _references(encoded, vocab)
        report["generation"] = generation_report(
            model,
            encoded,
            refs,
            vocab.decode,
            device,
            spread(len(encoded), generation_samples),
            banned=banned_ids(data.featurizer),
            use_kg=use_kg,
            progress=progress,
        )
    return report


def _references(encoded, vocab) -> list[list[list[str]]]:
    """Each sample's ground truths as words, as the model could write them (unknown words
    stay <UNK>: generation can only use the vocabulary)."""
    by_sample: list[list[list[str]]] = [[] for _ in range(len(encoded))]
    for row, i in zip(encoded.targets, encoded.target_sample, strict=True):
        by_sample[int(i)].append(vocab.decode(row.tolist()))
    return by_sample


def evaluate_checkpoint(args: argparse.Namespace) -> dict:
    opened = open_checkpoint(args)
    report = evaluate_model(
        opened.model,
        opened.data,
        opened.device,
        split=args.split,
        use_kg=opened.ckpt.train_config.kg_in_finetune,
        generation_samples=args.generation_samples,
        eval_samples=args.eval_samples,
        progress=not args.no_progress,
    )
    report["checkpoint"] = str(opened.ckpt.directory)
    report["ablation"] = opened.ckpt.train_config.ablation
    return report
