"""Checkpoints that carry everything needed to use them again.

A checkpoint directory holds::

    checkpoint.pt      the selected weights (best dev MRR), the model and training configs,
                       the vocabulary's fingerprint, what data it was trained on, dev metrics
    dicts-30000.json   the vocabulary (LiveBot format) the ids refer to
    config.json        the same configs and data record, readable
    metrics.json       test metrics written by training and ``model.evaluate``
    state.pt           the training state for resuming (model, optimiser, schedule, step)

Loading checks the format version, the configs, and that the vocabulary in the directory is
the one the weights were trained with; :func:`check_compatible` refuses a corpus whose
vocabulary differs. Every failure is a :class:`CheckpointError` naming the file and reason.
Files are written to a temporary name and renamed, so an interrupted save never leaves a
half-written checkpoint and a failed load never touches the directory.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from kg.errors import UserError
from model.config import ModelConfig, TrainConfig
from model.data.fileio import atomic_json
from model.data.schema import DataError
from model.data.vocab import VOCAB_FILE, Vocab

FORMAT = "danmaku-klvcg-checkpoint"
FORMAT_VERSION = 1
WEIGHTS = "checkpoint.pt"
STATE = "state.pt"


class CheckpointError(UserError):
    """A checkpoint that is missing, corrupted, or does not fit the data or settings."""


@dataclass
class Checkpoint:
    directory: Path
    model_config: ModelConfig
    train_config: TrainConfig
    vocab: Vocab
    state_dict: dict
    data: dict  # corpus format/path/fingerprint, prepared dir, encoding key
    dev: dict  # the dev metrics the weights were selected on


def atomic_torch_save(obj: object, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def safe_torch_load(path: Path) -> dict:
    """``torch.load`` restricted to tensors and plain containers; any damage -> one line."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: corrupted or not a checkpoint ({first})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} file")
    if obj.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {obj.get('version')!r}, this code reads "
            f"{FORMAT_VERSION}"
        )
    return obj


def save_checkpoint(
    directory: Path,
    model: torch.nn.Module,
    model_config: ModelConfig,
    train_config: TrainConfig,
    vocab: Vocab,
    data: dict,
    dev: dict,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / VOCAB_FILE).exists():
        vocab.save(directory / VOCAB_FILE)
    record = {
        "model": model_config.to_dict(),
        "train": train_config.to_dict(),
        "vocab_fingerprint": vocab.fingerprint,
        "data": data,
        "dev": dev,
    }
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save(
        {"format": FORMAT, "version": FORMAT_VERSION, **record, "state_dict": weights},
        directory / WEIGHTS,
    )
    atomic_json(directory / "config.json", record)


def load_checkpoint(directory: str | Path) -> Checkpoint:
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    obj = safe_torch_load(directory / WEIGHTS)
    try:
        model_config = ModelConfig.from_dict(obj["model"])
        train_config = TrainConfig(**obj["train"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{directory / WEIGHTS}: bad configuration ({e})") from None
    try:
        vocab = Vocab.load(directory / VOCAB_FILE)
    except DataError as e:
        raise CheckpointError(str(e)) from None
    if vocab.fingerprint != obj.get("vocab_fingerprint"):
        raise CheckpointError(
            f"{directory / VOCAB_FILE}: vocabulary {vocab.fingerprint} is not the one the "
            f"weights were trained with ({obj.get('vocab_fingerprint')})"
        )
    return Checkpoint(
        directory,
        model_config,
        train_config,
        vocab,
        obj["state_dict"],
        obj.get("data", {}),
        obj.get("dev", {}),
    )


def check_compatible(ckpt: Checkpoint, vocab: Vocab | None, frame_dim: int) -> None:
    """Refuse data the checkpoint cannot read: another vocabulary (when the caller has built
    one for its corpus) or another frame-feature size."""
    if vocab is not None and vocab.fingerprint != ckpt.vocab.fingerprint:
        raise CheckpointError(
            f"{ckpt.directory}: trained with vocabulary {ckpt.vocab.fingerprint} "
            f"({len(ckpt.vocab)} words); this corpus's vocabulary is {vocab.fingerprint} "
            f"({len(vocab)} words): train a model on this corpus"
        )
    if frame_dim != ckpt.model_config.frame_dim:
        raise CheckpointError(
            f"{ckpt.directory}: trained on {ckpt.model_config.frame_dim}-d frame features; "
            f"this corpus has {frame_dim}-d features"
        )


def write_metrics(directory: Path, metrics: dict) -> None:
    atomic_json(directory / "metrics.json", metrics)
