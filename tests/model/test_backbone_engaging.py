"""The engaging backbone's own parts (model/backbones/engaging.py): Box-Cox like scores,
competitive context selection, the semantic gap losses, and rows without likes."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from model.backbones import FINETUNE, TrainingBatch, backbone_class, build_backbone
from model.backbones.engaging import (
    EngagingConfig,
    boxcox,
    contrastive_terms,
    select_pairs,
    split_comments,
)
from model.data.vocab import PAD, SEP
from tests.model.test_backbone_contract import CLS, N, synthetic

TINY = dict(d_model=16, heads=2, encoder_layers=1, decoder_layers=1, d_ff=32, dropout=0.0,
            max_step_len=8, max_len=8)  # fmt: skip


def test_boxcox_is_the_formula_on_likes_plus_one():
    likes = np.array([0, 1, 2, 9, 77, 1000])
    for lam in (-1.0, -0.5, 0.0, 0.5):
        y = likes + 1.0
        expected = np.log(y) if lam == 0 else (y**lam - 1) / lam
        assert np.allclose(boxcox(likes, lam).numpy(), expected)
    scipy_stats = pytest.importorskip("scipy.stats")
    assert np.allclose(boxcox(likes, -1.0).numpy(), scipy_stats.boxcox(likes + 1.0, lmbda=-1.0))
    assert boxcox([0], -1.0).item() == 0.0 and boxcox([1], -1.0).item() == pytest.approx(0.5)


def test_pairs_respect_the_gap():
    scores = torch.tensor([[0.0, 0.5, 0.9, 0.3], [0.0, 0.3, 0.35, math.nan]])
    present = torch.ones(2, 4, dtype=torch.bool)
    hi, lo, ok = select_pairs(scores, present, 0.4)
    assert ok.tolist() == [True, False]  # row 2: no two counted scores 0.4 apart
    assert (hi[0].item(), lo[0].item()) == (2, 0)
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(200):
        hi, lo, ok = select_pairs(scores, present, 0.4, gen)
        assert ok.tolist() == [True, False]
        h, lw = hi[0].item(), lo[0].item()
        assert scores[0, h] - scores[0, lw] > 0.4
        seen.add((h, lw))
    assert seen == {(1, 0), (2, 0), (2, 3)}  # every qualifying pair, and only those
    # a comment outside the window (not present) is never drawn
    present[0, 2] = False
    for _ in range(50):
        hi, lo, ok = select_pairs(scores, present, 0.4, gen)
        assert (hi[0].item(), lo[0].item()) == (1, 0)


def test_the_window_comments_are_the_rows_stretches():
    rows = torch.tensor([[[CLS, 7, 8, SEP, 9, SEP, 10, 11], [CLS, 12, *[PAD] * 6]]])
    words = split_comments(rows, comments=3, width=3, cls_id=CLS)
    assert words[0, 0].tolist() == [[7, 8, PAD], [9, PAD, PAD], [10, 11, PAD]]
    assert words[0, 1].tolist() == [[12, PAD, PAD], [PAD] * 3, [PAD] * 3]


def test_hinges_are_zero_when_the_margins_hold_and_positive_otherwise():
    cfg = EngagingConfig(vocab_size=10, frame_dim=2)
    t = torch.tensor([[1.0, 0.0]])
    close, far = torch.tensor([[1.0, 0.1]]), torch.tensor([[-1.0, 0.2]])
    good = contrastive_terms(t, close, far, cfg)  # s_h ~ 0.995, s_l ~ -0.98
    assert good["hcl"].item() == 0 and good["lcl"].item() == 0 and good["jcl1"].item() == 0
    bad = contrastive_terms(t, far, close, cfg)  # high and low swapped
    # eq. 14: 1.5 - s_h - 1 > 0; eq. 15: 0.5 + s_l - 1 > 0; eq. 17: 1.6 + s_l - s_h - 1 > 0
    s_h, s_l = -1 / math.hypot(1, 0.2), 1 / math.hypot(1, 0.1)
    assert bad["hcl"].item() == pytest.approx(1.5 - s_h - 1, abs=1e-5)
    assert bad["lcl"].item() == pytest.approx(0.5 + s_l - 1, abs=1e-5)
    assert bad["jcl1"].item() == pytest.approx(1.6 + s_l - s_h - 1, abs=1e-5)
    assert bad["jcl2"].item() > good["jcl2"].item() >= 0


def _model_and_batch(has_likes: bool, objective: str = "isg"):
    torch.manual_seed(0)
    cfg, train = backbone_class("engaging").configure("cpu", objective, CLS + 1, 6)
    model = build_backbone(replace(cfg, **TINY))
    data = synthetic()
    # one comment per context second; likes 0 everywhere but one popular comment
    data.context_likes[:, :10, 0] = 0
    data.context_likes[:, 2, 0] = 40
    data.has_likes[:] = has_likes
    space = data.space(model.cfg)
    memory = model.encode(data.batch(np.arange(N), space=space))
    memory = memory.select(torch.as_tensor(data.target_sample, dtype=torch.long))
    truths = TrainingBatch(
        data.targets,
        space,
        train,
        torch.Generator().manual_seed(0),
        likes=data.target_likes,
        has_likes=data.has_likes[data.target_sample],
        owner=data.target_sample,
    )
    return model, memory, truths


@pytest.mark.parametrize("objective", ["isg", "jsg1", "jsg2"])
def test_rows_without_likes_give_the_mle_loss_only(objective):
    model, memory, truths = _model_and_batch(has_likes=False, objective=objective)
    mle, _, ok = model.loss_terms(memory, truths)
    assert not ok.any()
    assert torch.allclose(model.loss(memory, truths, FINETUNE), mle)


def test_rows_with_likes_add_the_contrastive_terms():
    model, memory, truths = _model_and_batch(has_likes=True)

    def fresh():  # the same draws each time
        return replace(truths, generator=torch.Generator().manual_seed(0))

    mle, terms, ok = model.loss_terms(memory, fresh())
    assert ok.all()  # the popular comment (score 40/41) against any unliked one (0)
    loss = model.loss(memory, fresh(), FINETUNE)
    assert torch.allclose(loss, mle + terms["hcl"].mean() + terms["lcl"].mean())
    assert (terms["hcl"] + terms["lcl"]).sum() > 0
    model.cfg = replace(model.cfg, objective="mle")
    assert torch.allclose(model.loss(memory, fresh(), FINETUNE), mle)


def test_the_rows_are_named_after_the_paper():
    cls = backbone_class("engaging")
    assert cls.canonical_ablation(None) == "isg"
    assert [cls.canonical_ablation(n) for n in ("default", "mle", "jcl1", "jcl2")] == [
        "isg",
        "mle",
        "jsg1",
        "jsg2",
    ]
    with pytest.raises(ValueError, match="no ablation"):
        cls.canonical_ablation("full")
    assert cls.configure("paper", "jsg2", 100, 6)[0].objective == "jsg2"
    paper, train = cls.configure("paper", None, 100, 6)
    assert (paper.d_model, paper.gamma1, paper.gap, train.batch_size, train.lr) == (
        512,
        0.11,
        0.4,
        128,
        3e-4,
    )


def test_a_ground_truth_pairs_with_its_samples_other_ground_truths_never_itself():
    torch.manual_seed(0)
    cfg, train = backbone_class("engaging").configure("cpu", None, CLS + 1, 6)
    model = build_backbone(replace(cfg, **TINY))
    data = synthetic()  # context comments without counts: only the ground truths are scored
    data.has_likes[:] = True
    space = data.space(model.cfg)
    owner = np.array([0, 0, 0, 1])
    memory = model.encode(data.batch(np.arange(N), space=space)).select(torch.as_tensor(owner))
    truths = TrainingBatch(
        data.targets,
        space,
        train,
        torch.Generator().manual_seed(0),
        likes=np.array([0, 0, 50, 50]),
        has_likes=np.ones(4, bool),
        owner=owner,
    )
    # rows 0 and 1: the sample's 50-like comment against its other unliked one; row 2: only
    # unliked ones besides itself; row 3: alone in its sample (row 2's 50 is another sample's)
    assert model.loss_terms(memory, truths)[2].tolist() == [True, True, False, False]
