"""VideoIC's MML-CG (model/backbones/mmlcg.py): the time-prediction task's labels, that its
head learns which second a context comment was posted at from the frames, that its weight 0
switches it off, and the presets; the contract suite covers the rest."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from model.backbones import TrainingBatch, backbone_class, build_backbone
from model.backbones.mmlcg import NO_LABEL, MMLCGConfig, time_labels
from model.config import TrainConfig
from model.data.vocab import BOS, EOS, PAD
from model.encoded_split import Batch
from model.word_ids import WordSpace

CORPUS, R, ROW, G = 30, 5, 4, 6  # corpus words, radius, row width, g
CLS = CORPUS + 1
SECONDS = 2 * R + 1
SPACE = WordSpace(CORPUS, CORPUS)
SIGNS = 2 * R + 1  # the matching task's frame patterns, named by words 5..15


def tiny(**over) -> MMLCGConfig:
    cfg, _ = backbone_class("mmlcg").configure("cpu", None, CORPUS + 2, SIGNS)
    sizes = dict(d_model=32, heads=4, layers=1, d_ff=64, max_step_len=ROW, max_len=G)
    return replace(cfg, **{**sizes, **over})


def batch_of(frames: np.ndarray, rows: np.ndarray) -> Batch:
    b = len(frames)
    zeros = torch.zeros(b, 1, dtype=torch.long)
    return Batch(
        frames=torch.as_tensor(frames, dtype=torch.float32),
        frame_mask=torch.ones(b, SECONDS, dtype=torch.bool),
        rows=torch.as_tensor(rows, dtype=torch.long),
        knowledge=zeros + CLS,
        fact_of=zeros - 1,
        fact_part=zeros,
        period=torch.zeros(b, dtype=torch.long),
        subtitle=zeros + CLS,
        transcript=zeros + CLS,
        context_likes=torch.full((b, SECONDS, 1), -1),
        has_likes=torch.zeros(b, dtype=torch.bool),
    )


def matching(rng: np.random.Generator, b: int) -> tuple[Batch, np.ndarray]:
    """Windows where only the frames tell when a comment was posted: each second of a window
    shows one of SIGNS patterns (a one-hot frame, shuffled per window), and the comment at a
    context second names its frame's pattern (word 5 + pattern) among random filler words;
    one second in five has no comment, the other videos' row holds pattern words too (it is
    no context second). Returns the batch and ground-truth comments of random words."""
    patterns = np.stack([rng.permutation(SIGNS) for _ in range(b)])  # (b, 2l+1)
    frames = np.eye(SIGNS, dtype=np.float32)[patterns]  # (b, 2l+1, SIGNS)
    rows = np.full((b, SECONDS, ROW), PAD, dtype=np.int64)
    rows[:, :, 0] = CLS
    seconds = np.r_[0:R, R + 1 : SECONDS]  # the frame of each context row
    rows[:, : 2 * R, 1] = 5 + patterns[:, seconds]
    rows[:, : 2 * R, 2] = rng.integers(5 + SIGNS, CORPUS, (b, 2 * R))  # filler
    rows[rng.random((b, SECONDS)) < 0.2, 1:] = PAD
    rows[:, 2 * R, 1:3] = 5 + rng.integers(0, SIGNS, (b, 2))
    targets = np.full((b, G), PAD, dtype=np.int64)
    targets[:, :4] = np.c_[np.full(b, BOS), rng.integers(5, CORPUS, (b, 2)), np.full(b, EOS)]
    return batch_of(frames, rows), targets


def truths(targets: np.ndarray, owner: np.ndarray | None = None) -> TrainingBatch:
    return TrainingBatch(
        targets, SPACE, TrainConfig(), torch.Generator().manual_seed(0), owner=owner
    )


def test_labels_are_the_context_rows_seconds_and_skip_empty_rows_and_other_videos():
    rows = np.full((1, SECONDS, ROW), PAD, dtype=np.int64)
    rows[..., 0] = CLS
    rows[0, :, 1] = 7
    rows[0, 4, 1] = PAD  # nobody commented at t-1
    labels = time_labels(torch.as_tensor(rows), R, CLS)
    # rows t-5..t-1 (0-4) are frames 0-4, rows t+1..t+5 (5-9) frames 6-10; the last row (10,
    # other videos) is no context second and has no label; t (frame 5) is never a label
    assert labels.tolist() == [[0, 1, 2, 3, NO_LABEL, 6, 7, 8, 9, 10]]
    model = build_backbone(tiny()).eval()
    memory = model.encode(batch_of(np.zeros((1, SECONDS, SIGNS)), rows))
    assert torch.equal(memory.time_target, labels)
    assert memory.time_logits.shape == (1, 2 * R, SECONDS)


def trained_accuracy(time_weight: float, steps: int = 40) -> float:
    """Time-prediction accuracy on fresh windows after ``steps`` of training on the full
    loss (generation + ``time_weight`` x time) on matching windows."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build_backbone(tiny(time_weight=time_weight)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(steps):
        batch, targets = matching(rng, 32)
        loss = model.loss(model.encode(batch), truths(targets), "finetune")
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        memory = model.encode(matching(np.random.default_rng(1), 256)[0])
    labelled = memory.time_target.ne(NO_LABEL)
    hits = memory.time_logits.argmax(-1).eq(memory.time_target)[labelled]
    return hits.float().mean().item()


def test_the_time_head_learns_each_comments_second_from_the_frames():
    # chance: 1 in the 2l = 10 context seconds; without the time loss the head stays there
    assert trained_accuracy(1.0) > 0.8
    assert trained_accuracy(0.0) < 0.3


def test_weight_zero_switches_the_time_loss_off():
    torch.manual_seed(0)
    batch, targets = matching(np.random.default_rng(0), 8)
    on = build_backbone(tiny())
    off = build_backbone(tiny(time_weight=0.0))
    off.load_state_dict(on.state_dict())
    memory = on.encode(batch)
    generation = on.generation_loss(memory, truths(targets))
    time = on.time_loss(memory)
    assert time.item() > 0
    assert torch.equal(off.loss(off.encode(batch), truths(targets), "finetune"), generation)
    torch.testing.assert_close(
        on.loss(memory, truths(targets), "finetune"), generation + time, rtol=0, atol=1e-6
    )
    loss = off.loss(off.encode(batch), truths(targets), "finetune")
    loss.backward()
    assert off.time_query.weight.grad is None and off.time_key.weight.grad is None


def test_a_sample_counts_once_in_the_time_loss_however_many_truths_it_has():
    torch.manual_seed(0)
    batch, targets = matching(np.random.default_rng(0), 3)
    model = build_backbone(tiny()).eval()
    memory = model.encode(batch)
    owner = np.array([0, 0, 0, 1, 2])
    repeated = memory.select(torch.as_tensor(owner))
    torch.testing.assert_close(model.time_loss(repeated, owner), model.time_loss(memory))
    assert not torch.allclose(model.time_loss(repeated), model.time_loss(memory))


def test_presets_and_its_one_row():
    cls = backbone_class("mmlcg")
    paper, paper_train = cls.configure("paper", None, 40, 6)
    assert (paper.d_model, paper.heads, paper.layers, paper.d_ff) == (512, 8, 6, 2048)
    assert paper.time_weight == 1.0 and not paper.copy
    assert (paper_train.batch_size, paper_train.lr) == (64, 3e-4)
    cpu, cpu_train = cls.configure("cpu", "default", 40, 6, max_steps=3)
    assert cpu.d_model < paper.d_model and cpu_train.max_steps == 3
    assert cpu_train.ablation == "default" == cls.canonical_ablation(None)
    assert MMLCGConfig.from_dict(replace(cpu, time_weight=0.5).to_dict()).time_weight == 0.5
    assert [s.name for s in build_backbone(replace(cpu, layers=1)).stages(cpu_train)] == [
        "finetune"
    ]
    with pytest.raises(ValueError, match="no ablation"):
        cls.configure("cpu", "+kg", 40, 6)
    with pytest.raises(ValueError, match="unknown preset"):
        cls.configure("big", None, 40, 6)
    with pytest.raises(ValueError, match="time_weight"):
        replace(cpu, time_weight=-1.0)
