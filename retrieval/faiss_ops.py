"""FAISS index construction, search with an id-range exclusion, and IVF nprobe calibration.

Design: docs/architecture.md, section "Retrieval".

The low-level half of :mod:`retrieval.comment_index`: an ``IndexIDMap`` over inner product
of unit vectors, exact ``IndexFlatIP`` below ``IVF_THRESHOLD`` entries and
``IndexIVFFlat`` above; searches leave out an id range with ``IDSelectorNot(IDSelectorRange)``.

On a GPU when faiss has one (the ``gpu`` extra, faiss-gpu, and a CUDA device: :func:`gpu_count`),
on the CPU otherwise, through one code path: :func:`to_device` is a GPU copy of an index there
and the index itself here, :func:`to_host` the way back. An index is built on the device (the
IVF's k-means and the adding of the vectors) and returned on the CPU, where it is saved,
loaded and read back (``reconstruct``); searches run on its device copy. GPU indexes ignore ID
selectors, so there a search fetches the excluded range's size more neighbours and drops that
range itself (:func:`search_index`), the CPU index answering one that would need more
neighbours or lists than a GPU search takes (``GPU_MAX_K``). faiss's GPU resources are not
thread-safe: GPU searches take turns.
"""

from __future__ import annotations

import functools
import logging
import math
import threading

import numpy as np

log = logging.getLogger(__name__)

IVF_THRESHOLD = 200_000
CALIBRATION_TARGET = 0.95
GPU_MAX_K = 2048  # the most neighbours (and IVF lists) one faiss GPU search takes
_GPU_TURN = threading.Lock()


def gpu_count() -> int:
    """The GPUs faiss can use: none with faiss-cpu (no GPU code) or on a machine without one."""
    import faiss

    if not hasattr(faiss, "StandardGpuResources"):
        return 0
    return faiss.get_num_gpus()


@functools.cache
def _gpu_resources():
    import faiss

    return faiss.StandardGpuResources()


def to_device(index):
    """``index`` where it is built and searched: a copy on the first GPU when faiss has one,
    else ``index`` itself."""
    if gpu_count() == 0:
        return index
    import faiss

    return faiss.index_cpu_to_gpu(_gpu_resources(), 0, index)


def to_host(index):
    """``index`` on the CPU: a copy of a :func:`to_device` copy, ``index`` itself without a GPU."""
    if gpu_count() == 0:
        return index
    import faiss

    return faiss.index_gpu_to_cpu(index)


def default_nlist(n_entries: int, n_vectors: int) -> int:
    """~4 sqrt(n) lists, but at least 39 distinct training vectors per list (faiss' minimum)."""
    return max(1, min(round(4 * math.sqrt(n_entries)), n_vectors // 39))


def build_faiss_index(vectors, text_ids, *, ivf_threshold=IVF_THRESHOLD, nlist=None, seed=0):
    """``IndexIDMap`` holding ``vectors[text_ids[i]]`` under id i: flat IP, or IVF-flat IP from
    ``ivf_threshold`` entries up, trained on a seeded sample of 64 ``vectors`` per list. Built
    on the GPU when faiss has one (:func:`to_device`), returned on the CPU."""
    import faiss

    n, dim = len(text_ids), vectors.shape[1]
    sample = None
    if n < ivf_threshold:
        base = faiss.IndexFlatIP(dim)
    else:
        nlist = nlist or default_nlist(n, len(vectors))
        base = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        base.cp.seed = seed
        rng = np.random.default_rng(seed)
        size = min(len(vectors), 64 * nlist)
        sample = vectors[np.sort(rng.choice(len(vectors), size=size, replace=False))]
    index = to_device(faiss.IndexIDMap(base))
    if sample is not None:
        ivf = faiss.downcast_index(index.index)
        if hasattr(ivf, "cp"):  # a GPU copy does not carry the k-means seed over
            ivf.cp.seed = seed
        log.info("training IVF: %d lists on %d vectors", nlist, len(sample))
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
    for start in range(0, n, 1 << 16):
        ids = np.arange(start, min(n, start + (1 << 16)), dtype=np.int64)
        index.add_with_ids(np.ascontiguousarray(vectors[text_ids[ids]], dtype=np.float32), ids)
    return to_host(index)


def ivf_of(index):
    """The ``IndexIVF`` inside an ``IndexIDMap``, or None for a flat one."""
    import faiss

    base = faiss.downcast_index(index.index)
    return base if isinstance(base, faiss.IndexIVF) else None


def search_index(
    index, queries, k, exclude=None, nprobe=None, *, device=None
) -> tuple[np.ndarray, np.ndarray]:
    """Raw faiss search ``(scores, ids)`` of float32 ``queries`` leaving out the ids
    ``exclude = (lo, hi)``, ``lo <= id < hi``; ids are -1 where fewer than ``k`` were found.
    ``device``: ``index``'s :func:`to_device` copy, searched instead when it is on a GPU."""
    import faiss

    queries = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, index.ntotal)
    ivf = ivf_of(index) is not None
    if device is not None and device is not index:
        span = exclude[1] - exclude[0] if exclude else 0
        fetch = min(k + span, index.ntotal)
        if max(fetch, nprobe or 1) <= GPU_MAX_K:  # the GPU's limit on both
            params = faiss.SearchParametersIVF(nprobe=nprobe or 1) if ivf else None
            with _GPU_TURN:
                scores, ids = device.search(queries, fetch, params=params)
            return _without(scores, ids, k, exclude)
    sel = faiss.IDSelectorNot(faiss.IDSelectorRange(*exclude)) if exclude else None
    if ivf:
        params = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe or 1)
    else:
        params = faiss.SearchParameters(sel=sel) if sel else None
    return index.search(queries, k, params=params)


def _without(scores, ids, k, exclude) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` first results of each row whose id is found and outside ``exclude``, in
    their order; rows with fewer padded as faiss pads them (id -1)."""
    out_scores = np.full((len(ids), k), -np.finfo(np.float32).max, dtype=np.float32)
    out_ids = np.full((len(ids), k), -1, dtype=np.int64)
    lo, hi = exclude if exclude else (0, 0)
    for row, (row_scores, row_ids) in enumerate(zip(scores, ids, strict=True)):
        keep = (row_ids >= 0) & ((row_ids < lo) | (row_ids >= hi))
        kept = np.flatnonzero(keep)[:k]
        out_scores[row, : len(kept)] = row_scores[kept]
        out_ids[row, : len(kept)] = row_ids[kept]
    return out_scores, out_ids


def calibrate_nprobe(
    index, vectors, counts, *, k=10, target=CALIBRATION_TARGET, seed=0, device=None
) -> int:
    """Smallest power-of-two nprobe reaching recall@k >= ``target`` against exact search, for
    256 seeded queries drawn from ``vectors`` (the distinct vectors; ``counts``: entries of
    each). A hit counts when it scores at least the exact k-th best: robust to repeats' ties.
    ``device``: the index's copy its searches run on (:func:`to_device`)."""
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
        found, _ = search_index(index, queries, k, nprobe=nprobe, device=device)
        recall = float(np.mean(found >= kth[:, None] - 1e-5))
        if recall >= target or nprobe >= nlist:
            log.info("IVF nprobe %d of %d lists: recall@%d %.3f", nprobe, nlist, k, recall)
            return min(nprobe, nlist)
        nprobe *= 2
