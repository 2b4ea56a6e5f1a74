"""Ranking candidate sets (docs/evaluation.md, section "Ranking"; LiveBot §5).

Each sample's context is encoded once and all its candidates go through one batched decoder
pass, scored by their mean token cross-entropy; lower ranks first, ties pessimistic
(:func:`model.metrics.ranks_of_first_truth`). A module of its own because the evaluation
(:mod:`model.evaluation`), the trainer's dev MRR and the benchmarks all rank.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from model.backbones import Backbone
from model.data.vocab import PAD
from model.encoded_split import Encoded
from model.metrics import ranks_of_first_truth

CANDIDATE_ROWS = 512  # candidates per decoder pass (B samples x C candidates)


@torch.no_grad()
def candidate_scores(
    model: Backbone,
    encoded: Encoded,
    cand_ids: np.ndarray,
    device: torch.device,
    *,
    idx: np.ndarray | None = None,
    use_kg: bool = True,
    progress: bool = False,
    desc: str = "ranking",
    aligned: bool = False,
) -> np.ndarray:
    """Mean token cross-entropy of every candidate of each sample ``idx`` (default: all),
    ``(len(idx), C)``: each context encoded once, its candidates (corpus ids, with the split's
    unseen words: :meth:`Encoded.unseen`) scored in one decoder pass.
    ``cand_ids`` holds a set per sample of ``encoded``, or with ``aligned`` one per entry of
    ``idx`` (several sets of one sample: value-swap sets, one per stated fact)."""
    model.eval()
    space = encoded.space(model.cfg)
    idx = np.arange(len(encoded)) if idx is None else np.asarray(idx)
    per_pass = max(1, CANDIDATE_ROWS // max(cand_ids.shape[1], 1))
    out = []
    bar = tqdm(total=len(idx), desc=desc, unit=" samples", disable=not progress, leave=False)
    for i in range(0, len(idx), per_pass):
        chunk = idx[i : i + per_pass]
        enc = model.encode(encoded.batch(chunk, device, space), use_kg=use_kg)
        rows = cand_ids[i : i + per_pass] if aligned else cand_ids[chunk]
        source = encoded.source(chunk)[:, None, :] if space.copy else None
        rows = space.target_ext(rows, source)
        cands = torch.as_tensor(rows, dtype=torch.long, device=device)
        out.append(model.score(enc, cands).float().cpu().numpy())
        bar.update(len(chunk))
    bar.close()
    return np.concatenate(out) if out else np.zeros((0, cand_ids.shape[1]), dtype=np.float32)


def is_candidate(cand_ids: np.ndarray) -> np.ndarray:
    """(N, C) True where a row is a candidate, False where it pads a smaller set (all
    ``<PAD>``; every candidate starts with ``<BOS>``)."""
    return cand_ids[..., 0] != PAD


def rank(
    model: Backbone,
    encoded: Encoded,
    cand_ids: np.ndarray,
    is_truth: np.ndarray,
    device: torch.device,
    *,
    idx: np.ndarray | None = None,
    use_kg: bool = True,
    progress: bool = False,
    desc: str = "ranking",
    aligned: bool = False,
) -> np.ndarray:
    """Rank of the first ground truth of each sample ``idx`` (default: all); padding rows of
    smaller sets are never counted. ``aligned`` as in :func:`candidate_scores`."""
    idx = np.arange(len(encoded)) if idx is None else np.asarray(idx)
    scores = candidate_scores(
        model,
        encoded,
        cand_ids,
        device,
        idx=idx,
        use_kg=use_kg,
        progress=progress,
        desc=desc,
        aligned=aligned,
    )
    if not len(idx):
        return np.zeros(0, dtype=np.int64)
    rows = slice(None) if aligned else idx
    return ranks_of_first_truth(scores, is_truth[rows], is_candidate(cand_ids[rows]))


def spread(n: int, k: int) -> np.ndarray:
    """``k`` evenly spread indices of ``n`` samples (all when n <= k): a fixed subset."""
    if n <= k:
        return np.arange(n)
    return np.linspace(0, n - 1, k).round().astype(int)
