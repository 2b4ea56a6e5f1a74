"""Candidate sets of different sizes in one split: padding rows are never scored, never
outrank a candidate, and are not counted by the random-ranker anchor."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from model.backbones.klvcg import KLVCG
from model.data.vocab import PAD
from model.encoded_split import Encoded
from model.evaluation_report import random_anchor
from model.metrics import expected_random, ranks_of_first_truth
from model.ranking import is_candidate, rank
from tests.model.test_klvcg import V, batch, targets, tiny


def padded_sets(sizes: list[int], g: int = 8, seed: int = 3) -> np.ndarray:
    """Candidate ids (N, max(sizes), g): sample i has sizes[i] candidates, then padding."""
    width = max(sizes)
    out = np.full((len(sizes), width, g), PAD, dtype=np.int64)
    for i, n in enumerate(sizes):
        out[i, :n] = targets(n, seed=seed + i, length=g).numpy()
    return out


def test_score_of_a_padding_row_is_inf_not_nan():
    torch.manual_seed(0)
    model = KLVCG(tiny()).eval()
    cands = torch.as_tensor(padded_sets([3, 1]))
    scores = model.score(model.encode(batch(2)), cands)
    assert torch.isfinite(scores[0]).all()
    assert torch.isfinite(scores[1, 0])
    assert torch.isinf(scores[1, 1:]).all() and not torch.isnan(scores).any()


def test_padding_never_outranks_a_candidate():
    # the truth has the worst loss of its set: it ranks last among the real candidates only
    scores = np.array([[5.0, 1.0, 2.0, -math.inf], [9.0, 3.0, 0.0, 0.0]])
    truth = np.array([[True, False, False, False], [True, False, False, False]])
    valid = np.array([[True, True, True, False], [True, True, False, False]])
    assert ranks_of_first_truth(scores, truth, valid).tolist() == [3, 2]
    nan_padding = np.where(valid, scores, np.nan)
    assert ranks_of_first_truth(nan_padding, truth, valid).tolist() == [3, 2]
    with pytest.raises(ValueError, match="NaN"):
        ranks_of_first_truth(np.where(valid, np.nan, scores), truth, valid)


def test_random_anchor_counts_only_real_candidates():
    truth = np.zeros((2, 100), dtype=bool)
    truth[:, 0] = True
    valid = np.zeros((2, 100), dtype=bool)
    valid[0, :100] = True
    valid[1, :10] = True
    got = random_anchor(truth, valid)
    want = (expected_random(100, 1)["MRR"] + expected_random(10, 1)["MRR"]) / 2
    assert got["mrr"] == pytest.approx(want, abs=1e-4)
    assert random_anchor(truth[1:, :10])["mrr"] == pytest.approx(0.2929, abs=1e-4)


def test_mixed_sizes_rank_end_to_end():
    """A split whose samples hold 5, 2 and 4 candidates ranks without NaN, every rank within
    its own set's size."""
    torch.manual_seed(0)
    model = KLVCG(tiny()).eval()
    sizes = [5, 2, 4]
    b = batch(len(sizes))
    n = len(sizes)
    encoded = Encoded(
        video=[f"v{i}" for i in range(n)],
        t=np.arange(n, dtype=np.int32),
        frames=b.frames.numpy(),
        frame_mask=b.frame_mask.numpy(),
        rows=b.rows.numpy().astype(np.int32),
        knowledge=b.knowledge.numpy().astype(np.int32),
        fact_of=np.full(b.knowledge.shape, -1, dtype=np.int16),
        fact_part=np.zeros(b.knowledge.shape, dtype=np.int8),
        period=b.period.numpy(),
        knowledge_target=np.zeros(n, dtype=bool),
        targets=np.zeros((0, 8), dtype=np.int32),
        target_sample=np.zeros(0, dtype=np.int32),
        facts=[[] for _ in range(n)],
        ac=[[] for _ in range(n)],
        corpus_words=V - 2,
    )
    ids = padded_sets(sizes)
    truth = np.zeros(ids.shape[:2], dtype=bool)
    truth[:, 0] = True
    assert is_candidate(ids).sum(axis=1).tolist() == sizes
    ranks = rank(model, encoded, ids, truth, torch.device("cpu"))
    assert all(1 <= r <= s for r, s in zip(ranks.tolist(), sizes, strict=True))
