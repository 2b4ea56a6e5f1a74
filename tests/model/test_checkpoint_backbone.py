"""Checkpoints are Hugging Face folders that name their backbone and load through the registry
(:mod:`model.checkpoint`, :mod:`model.pretrained`): ``AutoModel.from_pretrained`` reads one
offline; a checkpoint of the earlier layout (``checkpoint.pt``), with or without a backbone
name (none: KLVCG's), loads as before; one naming a backbone this code does not have, or whose
weights were damaged, is refused in one line."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoConfig, AutoModel

from model.backbones import LEGACY_BACKBONE
from model.backbones.klvcg import KLVCG
from model.backbones.klvcg_config import KLVCGConfig, make_configs
from model.checkpoint import (
    DIGEST,
    FORMAT,
    FORMAT_VERSION,
    LEGACY_WEIGHTS,
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


def save_old_layout(directory, model: KLVCG, train_cfg, vocab: Vocab, named: bool) -> None:
    """A checkpoint as ``save_checkpoint`` wrote it before checkpoints were Hugging Face
    folders (``checkpoint.pt``), and before the backbone registry (``named`` False: without
    ``backbone``)."""
    directory.mkdir(parents=True)
    vocab.save(directory / VOCAB_FILE)
    record = {
        **({"backbone": "klvcg"} if named else {}),
        "model": model.cfg.to_dict(),
        "train": train_cfg.to_dict(),
        "vocab_fingerprint": vocab.fingerprint,
        "data": {"format": "demo"},
        "dev": {"mrr": 0.5, "step": 3},
    }
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    saved = {"format": FORMAT, "version": FORMAT_VERSION, **record, "state_dict": weights}
    torch.save({**saved, DIGEST: weights_digest(weights)}, directory / LEGACY_WEIGHTS)
    (directory / "config.json").write_text(json.dumps(record), encoding="utf-8")


@pytest.mark.parametrize("named", [False, True], ids=["before-names", "named"])
def test_a_checkpoint_of_the_earlier_layout_loads(tmp_path, named):
    torch.manual_seed(0)
    model = KLVCG(tiny(copy=True)).eval()
    _, train_cfg = make_configs("cpu", "+copy", V, FRAME)
    save_old_layout(tmp_path / "old", model, train_cfg, corpus_vocab(), named)
    assert not (tmp_path / "old" / WEIGHTS).exists()

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


def test_a_checkpoint_is_a_hugging_face_folder_that_auto_model_reads(tmp_path):
    torch.manual_seed(0)
    model = KLVCG(tiny(copy=True)).eval()
    _, train_cfg = make_configs("cpu", "+copy", V, FRAME)
    save_checkpoint(tmp_path, model, model.cfg, train_cfg, corpus_vocab(), {}, {"mrr": 0.25})
    assert {p.name for p in tmp_path.iterdir()} == {WEIGHTS, "config.json", VOCAB_FILE}
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["backbone"] == "klvcg" and config["model_type"] == "danmaku_klvcg"
    assert config["model"] == model.cfg.to_dict() and config["dev"] == {"mrr": 0.25}

    assert AutoConfig.from_pretrained(tmp_path, local_files_only=True).train == train_cfg.to_dict()
    auto = AutoModel.from_pretrained(tmp_path, local_files_only=True)
    loaded = auto.backbone
    assert type(loaded) is KLVCG and not loaded.training
    assert loaded.out.weight is loaded.embed.weight  # tied again, as the model ties them
    batch = copy_batch(2)
    cands = torch.stack([targets(5, seed=s) for s in (3, 4)])
    with torch.no_grad():
        want = model.score(model.encode(batch), cands)
        assert torch.equal(loaded.score(loaded.encode(batch), cands), want)
    assert torch.equal(load_checkpoint(tmp_path).model.causal, model.causal)  # not in the file


def test_damaged_weights_are_refused(tmp_path):
    model = KLVCG(tiny())
    _, train_cfg = make_configs("cpu", "full", V, FRAME)
    save_checkpoint(tmp_path, model, model.cfg, train_cfg, corpus_vocab(), {}, {})
    data = bytearray((tmp_path / WEIGHTS).read_bytes())
    data[-5] ^= 0xFF  # one byte of the last tensor
    (tmp_path / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted: the weights differ from the digest"):
        load_checkpoint(tmp_path)
    (tmp_path / WEIGHTS).write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(CheckpointError, match=f"{WEIGHTS}: corrupted"):
        load_checkpoint(tmp_path)


def test_a_checkpoint_of_a_backbone_this_code_lacks_is_refused(tmp_path):
    model = KLVCG(tiny())
    _, train_cfg = make_configs("cpu", "full", V, FRAME)
    save_checkpoint(tmp_path, model, model.cfg, train_cfg, corpus_vocab(), {}, {})
    config = json.loads((tmp_path / "config.json").read_text())
    config["backbone"] = "nope"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"config.json: unknown backbone 'nope'"):
        load_checkpoint(tmp_path)
