"""Checkpoints that carry everything needed to use them again.

A checkpoint directory is a Hugging Face model folder (:mod:`model.pretrained`) with the
project's files beside it::

    config.json        the backbone's name and config, the training config, the vocabulary's
                       fingerprint, what data it was trained on, the dev metrics, a digest of
                       the weights (a ``transformers`` config: ``model_type`` danmaku_<name>)
    model.safetensors  the selected weights (best dev MRR), by ``save_pretrained``
    dicts-30000.json   the vocabulary (LiveBot format) the ids refer to
    metrics.json       the test metrics ``model.train`` printed
    metrics.csv        the training curves (model.train_log)
    state.pt           the training state for resuming (model, optimiser, schedule, step)

Loading reads the folder with ``from_pretrained`` (offline), refuses weights missing from or
unknown to the backbone, checks the weights against the digest written at save time
(safetensors carries no checksum), and that the vocabulary in the directory is the one the
weights were trained with; :func:`check_compatible` refuses a corpus whose vocabulary
differs. A checkpoint of the earlier layout (``checkpoint.pt``: a torch zip with the same
record, whose CRC-32s are checked; one saved before backbones had names is KLVCG's) still
loads. Every failure is a :class:`CheckpointError` naming the file and reason. Files are
written to a temporary folder and renamed into place, the weights before the config that
holds their digest, so an interrupted save never leaves a checkpoint that loads wrong.

Opening one to use it (:func:`open_checkpoint`: the model on a device, with the data it reads)
is here too: ``model.evaluate``, ``model.generate`` and the benchmarks share it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import pickle
import shutil
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors import SafetensorError

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
from model.pretrained import CONFIG, SAFETENSORS, pretrained_classes, quiet

FORMAT = "danmaku-klvcg-checkpoint"  # the torch files: state.pt, and the earlier checkpoint.pt
FORMAT_VERSION = 1
WEIGHTS = SAFETENSORS
LEGACY_WEIGHTS = "checkpoint.pt"  # the weights and record of the earlier layout
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
    model: Backbone  # with its weights, on the CPU, in eval mode
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
    model: Backbone,
    model_config: BackboneConfig,
    train_config: TrainConfig,
    vocab: Vocab,
    data: dict,
    dev: dict,
) -> None:
    """``model`` with its record as a Hugging Face folder in ``directory`` (module docstring)."""
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / VOCAB_FILE).exists():
        vocab.save(directory / VOCAB_FILE)
    config_cls, model_cls = pretrained_classes(model_config.name)
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    config = config_cls(
        model=model_config.to_dict(),
        train=train_config.to_dict(),
        vocab_fingerprint=vocab.fingerprint,
        data=data,
        dev=dev,
        weights_digest=weights_digest(weights),
    )
    with torch.device("meta"):  # the wrapper only: its backbone is replaced by ``model``
        wrapper = model_cls(config)
    wrapper.backbone = model
    tmp = directory / ".saving"
    shutil.rmtree(tmp, ignore_errors=True)
    with quiet():
        wrapper.save_pretrained(tmp)
    for name in (WEIGHTS, CONFIG):  # the weights first: the config holds their digest
        os.replace(tmp / name, directory / name)
    shutil.rmtree(tmp, ignore_errors=True)
    (directory / LEGACY_WEIGHTS).unlink(missing_ok=True)  # a run re-trained in an old folder


def load_checkpoint(directory: str | Path) -> Checkpoint:
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    if (directory / WEIGHTS).exists():
        load = _load_pretrained
    elif (directory / LEGACY_WEIGHTS).exists():
        load = _load_legacy
    else:
        raise CheckpointError(f"{directory}: no {WEIGHTS} (nor {LEGACY_WEIGHTS}): not a checkpoint")
    try:
        vocab = Vocab.load(directory / VOCAB_FILE)
    except DataError as e:
        raise CheckpointError(str(e)) from None
    ckpt, fingerprint = load(directory, vocab)
    if vocab.fingerprint != fingerprint:
        raise CheckpointError(
            f"{directory / VOCAB_FILE}: vocabulary {vocab.fingerprint} is not the one the "
            f"weights were trained with ({fingerprint})"
        )
    return ckpt


def _read_config(path: Path) -> dict:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not a readable config ({e})") from None
    if not isinstance(record, dict) or not isinstance(record.get("backbone"), str):
        raise CheckpointError(f"{path}: not a danmaku checkpoint config (no backbone name)")
    return record


def _load_pretrained(directory: Path, vocab: Vocab) -> tuple[Checkpoint, str | None]:
    """A Hugging Face folder (``from_pretrained``, offline), and the fingerprint of the
    vocabulary its weights were trained with."""
    record = _read_config(directory / CONFIG)
    try:
        _, model_cls = pretrained_classes(record["backbone"])
    except ValueError as e:  # a backbone this version does not have
        raise CheckpointError(f"{directory / CONFIG}: {e}") from None
    try:
        with quiet():
            wrapper, info = model_cls.from_pretrained(
                directory,
                output_loading_info=True,
                local_files_only=True,
                ignore_mismatched_sizes=True,  # reported in ``info``, refused below in one line
            )
        train_config = TrainConfig(**wrapper.config.train)
    except SafetensorError as e:
        raise CheckpointError(f"{directory / WEIGHTS}: corrupted ({_first_line(e)})") from None
    except (OSError, TypeError, ValueError, KeyError, RuntimeError) as e:
        raise CheckpointError(f"{directory}: cannot load the model ({_first_line(e)})") from None
    wrong = {k: sorted(v) for k, v in info.items() if k != "error_msgs" and v}
    if wrong:
        raise CheckpointError(
            f"{directory / WEIGHTS}: the weights do not fit their configuration ({wrong})"
        )
    model = wrapper.backbone.eval()
    _check_digest(directory / WEIGHTS, model.state_dict(), wrapper.config.weights_digest)
    config = wrapper.config
    ckpt = Checkpoint(directory, model.cfg, train_config, vocab, model, config.data, config.dev)
    return ckpt, config.vocab_fingerprint


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _load_legacy(directory: Path, vocab: Vocab) -> tuple[Checkpoint, str | None]:
    """The earlier layout (``checkpoint.pt``), as :func:`_load_pretrained` returns it."""
    obj = safe_torch_load(directory / LEGACY_WEIGHTS)
    _check_weights(directory / LEGACY_WEIGHTS, obj)
    try:
        model_config = config_from_dict(obj.get("backbone", LEGACY_BACKBONE), obj["model"])
        train_config = TrainConfig(**obj["train"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{directory / LEGACY_WEIGHTS}: bad configuration ({e})") from None
    model = build_backbone(model_config)
    try:
        model.load_state_dict(obj["state_dict"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise CheckpointError(
            f"{directory}: the weights do not fit their configuration ({first})"
        ) from None
    data, dev = obj.get("data", {}), obj.get("dev", {})
    ckpt = Checkpoint(directory, model_config, train_config, vocab, model.eval(), data, dev)
    return ckpt, obj.get("vocab_fingerprint")


def _check_weights(path: Path, obj: dict) -> None:
    """The weights of a ``checkpoint.pt`` against the digest saved with them."""
    weights = obj.get("state_dict")
    if not isinstance(weights, dict) or not all(
        isinstance(v, torch.Tensor) for v in weights.values()
    ):
        raise CheckpointError(f"{path}: corrupted: no weights (state_dict) in the file")
    _check_digest(path, weights, obj.get(DIGEST))


def _check_digest(path: Path, weights: dict, saved: str | None) -> None:
    if saved is None:
        log.warning(
            "%s: saved without a weights digest (before digests existed): its weights cannot "
            "be verified",
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
    return ckpt.model.to(device).eval()


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
