"""Checkpoints name their backbone and load through the registry (:mod:`model.backbones`): a
checkpoint saved before backbones had names (no ``backbone`` entry) is KLVCG's and loads as
before; one naming a backbone this code does not have is refused in one line."""

from __future__ import annotations

import json

import pytest
import torch

from model.backbones import LEGACY_BACKBONE
from model.backbones.klvcg import KLVCG
from model.backbones.klvcg_config import KLVCGConfig, make_configs
from model.checkpoint import (
    DIGEST,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS,
    CheckpointError,
    build_model,
    load_checkpoint,
    save_checkpoint,
    weights_digest,
)
from model.data.vocab import SPECIALS, VOCAB_FILE, Vocab
from tests.model.test_klvcg import FRAME, V, copy_batch, targets, tiny


def corpus_vocab() -> Vocab:
    """The corpus vocabulary of :func:`tiny` (its model adds [MASK] and [CLS])."""
    return Vocab([*SPECIALS, *(f"w{i}" for i in range(len(SPECIALS), V - 2))])


def save_old_layout(directory, model: KLVCG, train_cfg, vocab: Vocab) -> None:
    """A checkpoint as ``save_checkpoint`` wrote it before the backbone registry: the same
    files and entries, without ``backbone``."""
    directory.mkdir(parents=True)
    vocab.save(directory / VOCAB_FILE)
    record = {
        "model": model.cfg.to_dict(),
        "train": train_cfg.to_dict(),
        "vocab_fingerprint": vocab.fingerprint,
        "data": {"format": "demo"},
        "dev": {"mrr": 0.5, "step": 3},
    }
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    saved = {"format": FORMAT, "version": FORMAT_VERSION, **record, "state_dict": weights}
    torch.save({**saved, DIGEST: weights_digest(weights)}, directory / WEIGHTS)
    (directory / "config.json").write_text(json.dumps(record), encoding="utf-8")


def test_a_checkpoint_saved_before_backbones_had_names_loads_as_klvcg(tmp_path):
    torch.manual_seed(0)
    model = KLVCG(tiny(copy=True)).eval()
    _, train_cfg = make_configs("cpu", "+copy", V, FRAME)
    save_old_layout(tmp_path / "old", model, train_cfg, corpus_vocab())
    assert "backbone" not in torch.load(tmp_path / "old" / WEIGHTS, weights_only=True)

    ckpt = load_checkpoint(tmp_path / "old")
    assert LEGACY_BACKBONE == "klvcg"
    assert isinstance(ckpt.model_config, KLVCGConfig) and ckpt.model_config == model.cfg
    assert ckpt.train_config == train_cfg and ckpt.dev == {"mrr": 0.5, "step": 3}
    loaded = build_model(ckpt, torch.device("cpu"))
    assert type(loaded) is KLVCG
    batch = copy_batch(2)
    cands = torch.stack([targets(5, seed=s) for s in (3, 4)])
    with torch.no_grad():
        want = model.score(model.encode(batch), cands)
        assert torch.equal(loaded.score(loaded.encode(batch), cands), want)


def test_a_checkpoint_records_its_backbone(tmp_path):
    model = KLVCG(tiny())
    _, train_cfg = make_configs("cpu", "full", V, FRAME)
    save_checkpoint(tmp_path, model, model.cfg, train_cfg, corpus_vocab(), {}, {})
    assert json.loads((tmp_path / "config.json").read_text())["backbone"] == "klvcg"
    assert torch.load(tmp_path / WEIGHTS, weights_only=True)["backbone"] == "klvcg"


def test_a_checkpoint_of_a_backbone_this_code_lacks_is_refused(tmp_path):
    model = KLVCG(tiny())
    _, train_cfg = make_configs("cpu", "full", V, FRAME)
    save_checkpoint(tmp_path, model, model.cfg, train_cfg, corpus_vocab(), {}, {})
    saved = torch.load(tmp_path / WEIGHTS, weights_only=True)
    torch.save({**saved, "backbone": "nope"}, tmp_path / WEIGHTS)
    with pytest.raises(CheckpointError, match=r"bad configuration \(unknown backbone 'nope'"):
        load_checkpoint(tmp_path)
