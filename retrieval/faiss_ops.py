"""FAISS index construction, search with an id-range exclusion, and IVF nprobe calibration.

Design: docs/architecture.md, section "Retrieval".

The low-level half of :mod:`retrieval.comment_index`: an ``IndexIDMap`` over inner product
of unit vectors, exact ``IndexFlatIP`` below ``IVF_THRESHOLD`` entries and
``IndexIVFFlat`` above; searches leave out an id range with ``IDSelectorNot(IDSelectorRange)``.
"""

from __future__ import annotations

import logging
import math

import numpy as np

log = logging.getLogger(__name__)

IVF_THRESHOLD = 200_000
CALIBRATION_TARGET = 0.95


def default_nlist(n_entries: int, n_vectors: int) -> int:
    """~4 sqrt(n) lists, but at least 39 distinct training vectors per list (faiss' minimum)."""
    return max(1, min(round(4 * math.sqrt(n_entries)), n_vectors // 39))


def build_faiss_index(vectors, text_ids, *, ivf_threshold=IVF_THRESHOLD, nlist=None, seed=0):
    """``IndexIDMap`` holding ``vectors[text_ids[i]]`` under id i: flat IP, or IVF-flat IP from
    ``ivf_threshold`` entries up, trained on a seeded sample of 64 ``vectors`` per list."""
    import faiss

    n, dim = len(text_ids), vectors.shape[1]
    if n < ivf_threshold:
        base = faiss.IndexFlatIP(dim)
    else:
        nlist = nlist or default_nlist(n, len(vectors))
        base = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        base.cp.seed = seed
        rng = np.random.default_rng(seed)
        size = min(len(vectors), 64 * nlist)
        sample = vectors[np.sort(rng.choice(len(vectors), size=size, replace=False))]
        log.info("training IVF: %d lists on %d vectors", nlist, size)
        base.train(np.ascontiguousarray(sample, dtype=np.float32))
    index = faiss.IndexIDMap(base)
    for start in range(0, n, 1 << 16):
        ids = np.arange(start, min(n, start + (1 << 16)), dtype=np.int64)
        index.add_with_ids(np.ascontiguousarray(vectors[text_ids[ids]], dtype=np.float32), ids)
    return index


def ivf_of(index):
    """The ``IndexIVF`` inside an ``IndexIDMap``, or None for a flat one."""
    import faiss

    base = faiss.downcast_index(index.index)
    return base if isinstance(base, faiss.IndexIVF) else None


def search_index(index, queries, k, exclude=None, nprobe=None) -> tuple[np.ndarray, np.ndarray]:
    """Raw faiss search ``(scores, ids)`` of float32 ``queries`` leaving out the ids
    ``exclude = (lo, hi)``, ``lo <= id < hi``; ids are -1 where fewer than ``k`` were found."""
    import faiss

    sel = faiss.IDSelectorNot(faiss.IDSelectorRange(*exclude)) if exclude else None
    if ivf_of(index) is not None:
        params = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe or 1)
    else:
        params = faiss.SearchParameters(sel=sel) if sel else None
    k = min(k, index.ntotal)
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)


def calibrate_nprobe(index, vectors, counts, *, k=10, target=CALIBRATION_TARGET, seed=0) -> int:
    """Smallest power-of-two nprobe reaching recall@k >= ``target`` against exact search, for
    256 seeded queries drawn from ``vectors`` (the distinct vectors; ``counts``: entries of
    each). A hit counts when it scores at least the exact k-th best: robust to repeats' ties."""
    import faiss

    nlist = ivf_of(index).nlist
    rng = np.random.default_rng(seed)
    queries = vectors[rng.choice(len(vectors), size=min(256, len(vectors)), replace=False)]
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    kk = min(k, index.ntotal)
    # The exact kk-th best entry score: where the kk best distinct vectors' entry counts reach kk
    base = np.ascontiguousarray(vectors, dtype=np.float32)
    top_scores, top = faiss.knn(queries, base, min(kk, len(vectors)), faiss.METRIC_INNER_PRODUCT)
    pos = (np.cumsum(counts[top], axis=1) < kk).sum(axis=1)
    kth = top_scores[np.arange(len(queries)), pos]
    nprobe = 1
    while True:
        found, _ = search_index(index, queries, k, nprobe=nprobe)
        recall = float(np.mean(found >= kth[:, None] - 1e-5))
        if recall >= target or nprobe >= nlist:
            log.info("IVF nprobe %d of %d lists: recall@%d %.3f", nprobe, nlist, k, recall)
            return min(nprobe, nlist)
        nprobe *= 2
