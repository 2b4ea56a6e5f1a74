"""SFAT (model/backbones/sfat.py): the semantic frame aggregation (weights over the window's
frames, missing frames, temperature, the weighted sum), its presets and its one row; the
contract suite covers the rest."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from model.backbones import backbone_class, build_backbone
from model.backbones.sfat import SFAT, frame_weights
from tests.model.test_backbone_contract import CORPUS, FRAME, TINY, N, synthetic


def tiny(**over) -> SFAT:
    torch.manual_seed(0)
    cfg, _ = backbone_class("sfat").configure("cpu", None, CORPUS + 2, FRAME)
    return build_backbone(replace(cfg, **{**TINY["sfat"], **over})).eval()


def window(model: SFAT):
    data = synthetic()
    return data.batch(np.arange(N), space=data.space(model.cfg))


def test_weights_sum_to_one_and_missing_frames_weigh_nothing():
    model = tiny()
    batch = window(model)
    batch.frame_mask[1, 3:7] = False  # more missing seconds in one window
    with torch.no_grad():
        weights = model.encode(batch).weights  # (B, 2l+1)
    assert weights.shape == batch.frame_mask.shape
    assert torch.allclose(weights.sum(dim=1), torch.ones(N), atol=1e-6)
    assert (weights[~batch.frame_mask] == 0).all()
    assert (weights[batch.frame_mask] > 0).all()


def test_a_window_without_frames_has_zero_weights_and_finite_gradients():
    frames = torch.randn(2, 5, 4, requires_grad=True)
    chat = torch.randn(2, 4, requires_grad=True)
    present = torch.tensor([[True, False, True, True, False], [False] * 5])
    weights = frame_weights(frames, chat, present, 0.1)
    assert torch.allclose(weights[0].sum(), torch.tensor(1.0)) and (weights[1] == 0).all()
    (weights * torch.arange(5.0)).sum().backward()
    assert torch.isfinite(frames.grad).all() and torch.isfinite(chat.grad).all()


def test_a_lower_temperature_sharpens_the_weights():
    warm, cold = tiny(temperature=1.0), tiny(temperature=0.1)
    cold.load_state_dict(warm.state_dict())  # the same model but for the temperature
    batch = window(warm)
    with torch.no_grad():
        w_warm, w_cold = warm.encode(batch).weights, cold.encode(batch).weights
    assert (w_cold.max(dim=1).values > w_warm.max(dim=1).values).all()
    # the order of the frames is the same: only the sharpness changes
    assert torch.equal(w_cold.argmax(dim=1), w_warm.argmax(dim=1))


def test_the_aggregated_video_is_the_weighted_sum_of_the_frames():
    model = tiny()
    batch = window(model)
    with torch.no_grad():
        words = model._comment_words(batch.rows)
        chat = model.text_encoder(model._words(words), src_key_padding_mask=words.eq(0))[:, 0]
        weights, video = model.aggregate(batch.frames, batch.frame_mask, chat)
        memory = model.encode(batch)
    assert torch.allclose(weights, memory.weights)
    by_hand = sum(weights[:, i, None] * batch.frames[:, i] for i in range(weights.shape[1]))
    assert video.shape == (N, FRAME) and torch.allclose(video, by_hand, atol=1e-6)


def test_presets_and_its_one_row():
    cls = backbone_class("sfat")
    paper, paper_train = cls.configure("paper", None, 40, 6)
    assert (paper.d_model, paper.joint_dim, paper.heads, paper.d_ff) == (512, 512, 8, 2048)
    assert (paper.text_layers, paper.fusion_layers, paper.decoder_layers) == (6, 2, 6)
    assert paper.temperature == 0.1 and paper_train.batch_size == 128
    cpu, cpu_train = cls.configure("cpu", "default", 40, 6, max_steps=3)
    assert cpu.d_model == 128 and cpu_train.max_steps == 3
    assert cpu_train.ablation == "default" == cls.canonical_ablation(None)
    assert [s.name for s in build_backbone(cpu).stages(cpu_train)] == ["finetune"]
    with pytest.raises(ValueError, match="no ablation '\\+copy'"):
        cls.configure("cpu", "+copy", 40, 6)
    with pytest.raises(ValueError, match="unknown preset"):
        cls.configure("big", None, 40, 6)
    with pytest.raises(ValueError, match="temperature"):
        replace(cpu, temperature=0.0)
