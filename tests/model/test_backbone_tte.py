"""LiveChat's TTE (model/backbones/tte.py): the random ground truth it trains on per sample and
step, and that it reads the audio transcript; the contract suite covers the rest."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.backbones import FINETUNE, TrainingBatch, backbone_class, build_backbone
from model.backbones.tte import pick_one_per_sample
from model.config import TrainConfig
from model.data.vocab import BOS, EOS, PAD
from model.encoded_split import Batch
from model.word_ids import WordSpace

CORPUS, FRAME, G = 30, 6, 8
V, CLS = CORPUS + 2, CORPUS + 1
OWNER = np.array([0, 0, 0, 1, 2, 2, 3, 3, 3, 3])  # samples with 3, 1, 2 and 4 ground truths


def tiny():
    cfg, train = backbone_class("tte").configure("cpu", None, V, FRAME)
    small = dict(d_model=16, heads=2, layers=1, d_ff=32, max_step_len=8, max_len=G)
    torch.manual_seed(0)
    return build_backbone(cfg.__class__(**{**cfg.to_dict(), **small})).eval(), train


def batch(b: int, transcript: torch.Tensor | None = None, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    rows = torch.randint(5, CORPUS, (b, 11, 8), generator=g)
    rows[:, :, 0] = CLS
    rows[:, :, 5:] = PAD
    rows[:, 3, 1:] = PAD  # a second nobody commented at
    if transcript is None:
        transcript = torch.full((b, 1), CLS)  # a corpus without transcripts: [CLS] alone
    knowledge = torch.full((b, 1), CLS)
    return Batch(
        frames=torch.randn(b, 11, FRAME, generator=g),
        frame_mask=torch.ones(b, 11, dtype=torch.bool),
        rows=rows,
        knowledge=knowledge,
        fact_of=torch.full_like(knowledge, -1),
        fact_part=torch.zeros_like(knowledge),
        period=torch.zeros(b, dtype=torch.long),
        subtitle=torch.full((b, 1), CLS),
        transcript=transcript,
        context_likes=torch.full((b, 11, 4), -1),
        has_likes=torch.zeros(b, dtype=torch.bool),
    )


def targets(n: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.full((n, G), PAD, dtype=np.int32)
    for i in range(n):
        k = 1 + i % (G - 2)
        t[i, : k + 2] = [BOS, *rng.integers(5, CORPUS, k), EOS]
    return t


def training(seed: int, train: TrainConfig, owner=OWNER) -> TrainingBatch:
    return TrainingBatch(
        targets(len(OWNER)),
        WordSpace(CORPUS, CORPUS),
        train,
        torch.Generator().manual_seed(seed),
        owner=owner,
    )


def test_one_ground_truth_per_sample_reproducible_by_seed_and_varying_with_it():
    draws = []
    for seed in range(20):
        rows = pick_one_per_sample(OWNER, len(OWNER), torch.Generator().manual_seed(seed))
        assert OWNER[rows.numpy()].tolist() == [0, 1, 2, 3]  # one row of each sample, in order
        again = pick_one_per_sample(OWNER, len(OWNER), torch.Generator().manual_seed(seed))
        assert torch.equal(rows, again)
        draws.append(tuple(rows.tolist()))
    assert len(set(draws)) > 1
    # every ground truth of a sample gets its turn over the seeds
    assert {d[3] for d in draws} == {6, 7, 8, 9} and {d[0] for d in draws} == {0, 1, 2}
    # without owners, each row is its own sample
    assert pick_one_per_sample(None, 5, torch.Generator()).tolist() == [0, 1, 2, 3, 4]


def test_the_loss_is_the_mean_over_the_picked_rows_only():
    model, train = tiny()
    memory = model.encode(batch(4)).select(torch.as_tensor(OWNER))
    with torch.no_grad():
        loss = model.loss(memory, training(3, train), FINETUNE)
        assert torch.equal(loss, model.loss(memory, training(3, train), FINETUNE))
        rows = pick_one_per_sample(OWNER, len(OWNER), torch.Generator().manual_seed(3))
        t = torch.as_tensor(targets(len(OWNER))[rows.numpy()], dtype=torch.long)
        nll = model.token_nll(memory.select(rows), t)
        assert torch.allclose(loss, nll.sum() / t[:, 1:].ne(PAD).sum())
        losses = {model.loss(memory, training(s, train), FINETUNE).item() for s in range(8)}
    assert len(losses) > 1  # another seed, other rows


def test_the_transcript_changes_the_memory_and_a_cls_alone_row_works():
    model, _ = tiny()
    words = torch.tensor([[CLS, 7, 8, 9, 3, 10, PAD], [CLS, 11, 12, PAD, PAD, PAD, PAD]])
    with torch.no_grad():
        alone = model.encode(batch(2))
        spoken = model.encode(batch(2, transcript=words))
        other = model.encode(batch(2, transcript=words.where(words != 8, torch.tensor(20))))
        assert alone.audio.shape[1] == 1 and torch.isfinite(alone.audio).all()
        assert not torch.allclose(alone.audio, spoken.audio[:, :1])
        assert not torch.allclose(spoken.audio[0], other.audio[0])
        assert torch.equal(spoken.comments, other.comments)  # only the audio memory moved
        cands = torch.as_tensor(targets(3), dtype=torch.long)[None].expand(2, 3, G)
        a, b = model.score(alone, cands), model.score(spoken, cands)
        assert torch.isfinite(a).all() and not torch.allclose(a, b)  # the decoder reads it
        assert model.generate(alone.select(torch.tensor([0])), 2)


def test_presets_and_its_one_row():
    cls = backbone_class("tte")
    paper, _ = cls.configure("paper", None, V, FRAME)
    assert (paper.d_model, paper.heads, paper.layers, paper.d_ff) == (512, 8, 6, 2048)
    cpu, cpu_train = cls.configure("cpu", "default", V, FRAME, max_steps=3)
    assert cpu.d_model == 128 and cpu_train.max_steps == 3
    assert cpu_train.ablation == "default" == cls.canonical_ablation(None)
    with pytest.raises(ValueError, match="no ablation"):
        cls.configure("cpu", "+copy", V, FRAME)
    with pytest.raises(ValueError, match="unknown preset"):
        cls.configure("big", None, V, FRAME)
