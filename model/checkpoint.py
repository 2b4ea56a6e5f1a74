"""Checkpoints that carry everything needed to use them again.

A checkpoint directory holds::

    checkpoint.pt      the selected weights (best dev MRR), the backbone's name, the model and
                       training configs, the vocabulary's fingerprint, what data it was
                       trained on, dev metrics
    dicts-30000.json   the vocabulary (LiveBot format) the ids refer to
    config.json        the same configs and data record, readable
    metrics.json       the test metrics ``model.train`` printed
    state.pt           the training state for resuming (model, optimiser, schedule, step)

Loading checks every stored CRC-32 of the file (``torch.save`` writes a zip archive, and
``torch.load`` reads it without checking them), then the format version, the configs (read by
the config class of the backbone named, :mod:`model.backbones`; a checkpoint saved before
backbones had names is KLVCG's), the
weights against the digest written beside them at save time (a checkpoint saved before
digests existed loads with a warning that its weights cannot be verified), and that the
vocabulary in the directory is the one the weights were trained with; :func:`check_compatible`
refuses a corpus whose vocabulary differs. Every failure is a :class:`CheckpointError` naming
the file and reason. Files are written to a temporary name and renamed
(:mod:`common.atomic`), so an interrupted save never leaves a half-written checkpoint and a
failed load never touches the directory.

Opening one to use it (:func:`open_checkpoint`: the model on a device, with the data it reads)
is here too: ``model.evaluate``, ``model.generate`` and the benchmarks share it.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import pickle
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from common.atomic import atomic_open, write_json
from common.device import resolve_device
from common.errors import UserError
from common.settings import RunSettings
from kg.store import GraphStore
from model.backbones import (
    LEGACY_BACKBONE,
    Backbone,
    BackboneConfig,
    build_backbone,
    config_from_dict,
)
from model.config import TrainConfig
from model.data.schema import DataError
from model.data.vocab import VOCAB_FILE, Vocab
from model.model_data import ModelData, add_data_args, build_data, lengths_of

FORMAT = "danmaku-klvcg-checkpoint"
FORMAT_VERSION = 1
WEIGHTS = "checkpoint.pt"
STATE = "state.pt"
DIGEST = "weights_digest"

log = logging.getLogger(__name__)


class CheckpointError(UserError):
    """A checkpoint that is missing, corrupted, or does not fit the data or settings."""


@dataclass
class Checkpoint:
    directory: Path
    model_config: BackboneConfig  # its ``name`` is the backbone's
    train_config: TrainConfig
    vocab: Vocab
    state_dict: dict
    data: dict  # corpus format/path/fingerprint, prepared dir, encoding key
    dev: dict  # the dev metrics the weights were selected on


def atomic_torch_save(obj: object, path: Path) -> None:
    """``torch.save`` through :func:`common.atomic.atomic_open`."""
    with atomic_open(path) as f:
        torch.save(obj, f)


def weights_digest(state_dict: dict) -> str:
    """SHA-256 of a state dict's names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}\t{t.dtype}\t{tuple(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _check_crcs(path: Path) -> None:
    """Every member's CRC-32 of a zip-format torch file (older non-zip files have none)."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise CheckpointError(f"{path}: corrupted or not a checkpoint ({e})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: corrupted: {bad} fails its CRC-32 check")


def safe_torch_load(path: Path) -> dict:
    """``torch.load`` restricted to tensors and plain containers, after the file's CRC-32s
    are checked; any damage -> one line."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    _check_crcs(path)
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
    model_config: BackboneConfig,
    train_config: TrainConfig,
    vocab: Vocab,
    data: dict,
    dev: dict,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / VOCAB_FILE).exists():
        vocab.save(directory / VOCAB_FILE)
    record = {
        "backbone": model_config.name,
        "model": model_config.to_dict(),
        "train": train_config.to_dict(),
        "vocab_fingerprint": vocab.fingerprint,
        "data": data,
        "dev": dev,
    }
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_torch_save(
        {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            **record,
            "state_dict": weights,
            DIGEST: weights_digest(weights),
        },
        directory / WEIGHTS,
    )
    write_json(directory / "config.json", record)


def load_checkpoint(directory: str | Path) -> Checkpoint:
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    obj = safe_torch_load(directory / WEIGHTS)
    _check_weights(directory / WEIGHTS, obj)
    try:
        model_config = config_from_dict(obj.get("backbone", LEGACY_BACKBONE), obj["model"])
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


def _check_weights(path: Path, obj: dict) -> None:
    """The weights against the digest saved with them."""
    weights = obj.get("state_dict")
    if not isinstance(weights, dict) or not all(
        isinstance(v, torch.Tensor) for v in weights.values()
    ):
        raise CheckpointError(f"{path}: corrupted: no weights (state_dict) in the file")
    saved = obj.get(DIGEST)
    if saved is None:
        log.warning(
            "%s: saved before checkpoints carried a weights digest: its weights cannot be verified",
            path,
        )
    elif saved != weights_digest(weights):
        raise CheckpointError(
            f"{path}: corrupted: the weights differ from the digest written when it was saved"
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
    write_json(directory / "metrics.json", metrics)


# ----------------------------------------------------------------------------- opening one


def add_checkpoint_args(p: argparse.ArgumentParser) -> None:
    """``--checkpoint`` and the data options, the corpus defaulting to the checkpoint's."""
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (model.train --out)")
    add_data_args(p, default_format=None)


def build_model(ckpt: Checkpoint, device: torch.device) -> Backbone:
    """The checkpoint's model (its backbone, through the registry) with its weights, on
    ``device``, in eval mode."""
    model = build_backbone(ckpt.model_config)
    try:
        model.load_state_dict(ckpt.state_dict)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(
            f"{ckpt.directory}: the weights do not fit their configuration ({first})"
        ) from None
    return model.to(device).eval()


@dataclass
class OpenedCheckpoint:
    ckpt: Checkpoint
    data: ModelData
    model: Backbone
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


def open_checkpoint(ckpt: Checkpoint, settings: RunSettings, store: GraphStore) -> OpenedCheckpoint:
    """The checkpoint's model on ``settings.device`` and its data (the corpus of ``settings``,
    see :func:`with_trained_corpus`, and the KG in ``store``); data the checkpoint cannot read
    (another vocabulary or feature size) is refused."""
    data = build_data(settings, store, lengths_of(ckpt.model_config))
    check_compatible(ckpt, data.vocab, data.frame_dim)
    device = resolve_device(settings.device)
    return OpenedCheckpoint(ckpt, data, build_model(ckpt, device), device)
