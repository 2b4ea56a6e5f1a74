"""LiveBot's Fusional RNN (:mod:`model.backbones.fusional_rnn`): the context rows are split into
comments and the n nearest read in time order, the m nearest frames are read, the text
encoder attends to the video, beam search's stepped decoder agrees with teacher forcing, and
the presets (the rest of the interface is the backbone contract suite's)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.backbones import backbone_class, build_backbone
from model.backbones.fusional_rnn import split_comments
from model.data.vocab import BOS, EOS, PAD, SEP
from tests.model.test_backbone_contract import G, N, candidates, configs, synthetic

C = 99  # the [CLS] id of the hand-made rows below


def rows_of(*seconds: list[int], width: int = 8) -> torch.Tensor:
    """(1, len(seconds), width): each second's row, ``[CLS]`` first, padded."""
    out = torch.full((1, len(seconds), width), PAD, dtype=torch.long)
    for i, row in enumerate(seconds):
        out[0, i, : len(row) + 1] = torch.tensor([C, *row])
    return out


def as_lists(comments: torch.Tensor, count: torch.Tensor) -> list[list[int]]:
    return [[w for w in c.tolist() if w != PAD] for c in comments[0, : int(count[0])]]


# radius 2: rows t-2, t-1, t+1, t+2, then the other videos' row
WINDOW = rows_of([10, 11, SEP, 12], [13, SEP, 14, 15, SEP], [], [16], [17, 18])


def test_rows_are_split_into_the_nearest_comments_in_time_order():
    comments, count = split_comments(WINDOW, radius=2, n_comments=4, cls_id=C)
    # nearest first: t-1's two, t+1 has none, then t-2's two; t+2's is the fifth
    assert as_lists(comments, count) == [[10, 11], [12], [13], [14, 15]]
    comments, count = split_comments(WINDOW, radius=2, n_comments=10, cls_id=C)
    # every comment, no empty one (t-1's trailing separator), never the other videos' row
    assert as_lists(comments, count) == [[10, 11], [12], [13], [14, 15], [16]]


def test_a_window_without_comments_reads_one_cls_comment():
    comments, count = split_comments(rows_of([], [], [], [], [17]), 2, 5, C)
    assert count.tolist() == [1] and as_lists(comments, count) == [[C]]
    both = torch.cat([WINDOW, rows_of([], [], [], [], [])])
    comments, count = split_comments(both, 2, 3, C)
    assert count.tolist() == [3, 1] and comments[1, 0, 0] == C


def model_and_batch():
    torch.manual_seed(0)
    model = build_backbone(configs("fusional_rnn", None)[0]).eval()
    data = synthetic()
    return model, data, data.batch(np.arange(N), space=data.space(model.cfg))


def changed(batch, field: str, index, value):
    tensor = getattr(batch, field).clone()
    tensor[index] = value
    return type(batch)(**{**batch.__dict__, field: tensor})


def test_the_text_encoding_attends_to_the_video():
    model, _, batch = model_and_batch()
    other = changed(batch, "frames", (slice(None), 5), 3.0)  # the frame at t
    with torch.no_grad():
        text = model.encode(batch).text
        text_other = model.encode(other).text
    assert not torch.allclose(text, text_other)  # the same comments, other frames


@pytest.mark.parametrize(
    "field,index,reads",
    [
        ("frames", (slice(None), 0), False),  # t-5: not among the 5 nearest frames
        ("frames", (slice(None), 10), False),  # t+5
        ("frames", (slice(None), 3), True),  # t-2
        ("rows", (slice(None), 0, 1), False),  # t-5's comment: not among the 5 nearest
        ("rows", (slice(None), 10, 1), False),  # the other videos' row
        ("rows", (slice(None), 5, 1), True),  # t+1's comment
        ("rows", (slice(None), 7, 1), True),  # t+3's comment, the fifth nearest
    ],
)
def test_only_the_nearest_frames_and_comments_are_read(field, index, reads):
    model, data, batch = model_and_batch()
    ids, _ = candidates(data, model)
    other = changed(batch, field, index, 3.0 if field == "frames" else 7)
    with torch.no_grad():
        before = model.score(model.encode(batch), ids)[:, :N]
        after = model.score(model.encode(other), ids)[:, :N]
    assert torch.equal(before, after) is not reads


def test_beam_search_scores_agree_with_teacher_forced_scores():
    model, _, batch = model_and_batch()
    with torch.no_grad():
        memory = model.encode(batch)
        for i in range(N):
            one = memory.select(torch.tensor([i]))
            hyps = model.generate(one, beam=4)
            assert len(hyps) > 1
            cands = torch.full((1, len(hyps), G), PAD, dtype=torch.long)
            for j, (ids, _) in enumerate(hyps):
                cands[0, j, : len(ids) + 2] = torch.tensor([BOS, *ids, EOS])
            # each hypothesis's state followed its parents: same log P as decoding it anew
            scores = model.score(one, cands)[0]
            assert torch.allclose(-scores, torch.tensor([s for _, s in hyps]), atol=1e-5)


def test_one_default_row_and_both_presets():
    cls = backbone_class("fusional_rnn")
    model_cfg, train_cfg = cls.configure("cpu", None, 40, 6)
    assert train_cfg.ablation == "default" == cls.canonical_ablation("default")
    assert model_cfg.name == "fusional_rnn" and not model_cfg.copy
    assert (model_cfg.n_frames, model_cfg.n_comments) == (5, 5)
    paper, paper_train = cls.configure("paper", "default", 40, 6, batch_size=32)
    assert (paper.embed_dim, paper.hidden) == (512, 512)
    assert (paper_train.lr, paper_train.batch_size) == (3e-4, 32)  # an override wins
    assert type(paper).from_dict(paper.to_dict()) == paper
    assert [s.use_kg for s in build_backbone(model_cfg).stages(train_cfg)] == [False]
    with pytest.raises(ValueError, match="no ablation 'full'"):
        cls.configure("cpu", "full", 40, 6)
