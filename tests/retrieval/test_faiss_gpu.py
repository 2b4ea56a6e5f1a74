"""The comment index's GPU path (:mod:`retrieval.faiss_ops`) on the CPU: without faiss-gpu
nothing moves; with a fake of faiss's GPU API that reports a GPU (its "GPU copies" are CPU
clones searched as GPU indexes are, without ID selectors) the index is built and searched on
the copies, and every result is the CPU path's."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from retrieval import faiss_ops
from retrieval.comment_index import CommentIndex
from tests.retrieval.test_comment_index import TableEmbedder, as_pairs, make_entries, unit


class FakeResources:
    """``faiss.StandardGpuResources``: nothing to hold on the CPU."""


class FakeGpu:
    """``index_cpu_to_gpu`` / ``index_gpu_to_cpu`` on the CPU; records what moved and the
    search parameters the copies were given."""

    def __init__(self) -> None:
        self.copies, self.back, self.params = 0, 0, []

    def to_gpu(self, resources, device, index):
        assert isinstance(resources, FakeResources) and device == 0
        self.copies += 1
        copy = faiss.clone_index(index)
        search = copy.search

        def gpu_search(x, k, *, params=None, **kw):
            self.params.append(params)
            return search(x, k, params=params, **kw)

        copy.search = gpu_search
        return copy

    def to_cpu(self, index):
        self.back += 1
        return faiss.clone_index(index)


@pytest.fixture
def fake_gpu(monkeypatch):
    fake = FakeGpu()
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "StandardGpuResources", FakeResources, raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", fake.to_gpu, raising=False)
    monkeypatch.setattr(faiss, "index_gpu_to_cpu", fake.to_cpu, raising=False)
    faiss_ops._gpu_resources.cache_clear()
    yield fake
    faiss_ops._gpu_resources.cache_clear()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(4)
    return unit(rng, 3000), make_entries(3000, 12), unit(rng, 20)


def searches(index: CommentIndex, queries) -> list:
    """Every kind of search the index answers: plain, leaving a video out, distinct texts."""
    left_out = [f"video{i % 12}" for i in range(len(queries))]
    return [
        [as_pairs(h) for h in index.search(queries, k=10)],
        [as_pairs(h) for h in index.search(queries, k=10, exclude_video=left_out)],
        [as_pairs(h) for h in index.search(queries, k=5, exclude_video="video3", distinct=True)],
    ]


def assert_same_results(a: list, b: list) -> None:
    for kind_a, kind_b in zip(a, b, strict=True):
        for hits_a, hits_b in zip(kind_a, kind_b, strict=True):
            assert [h[0] for h in hits_a] == [h[0] for h in hits_b]
            np.testing.assert_allclose([h[1] for h in hits_a], [h[1] for h in hits_b], atol=1e-6)


def test_faiss_cpu_has_no_gpu_and_nothing_moves(data):
    vectors, entries, _ = data
    assert faiss_ops.gpu_count() == 0  # faiss-cpu: no StandardGpuResources
    index = CommentIndex.build(entries, TableEmbedder(vectors))
    assert faiss_ops.to_device(index.index) is index.index
    assert faiss_ops.to_host(index.index) is index.index
    assert index.device_index is index.index


@pytest.mark.parametrize("threshold", [10**9, 1000], ids=["flat", "ivf"])
def test_a_reported_gpu_builds_and_searches_there_with_the_cpu_results(
    data, threshold, monkeypatch, fake_gpu
):
    vectors, entries, queries = data
    with monkeypatch.context() as cpu:  # the same build and searches without the GPU
        cpu.setattr(faiss, "get_num_gpus", lambda: 0)
        on_cpu = CommentIndex.build(entries, TableEmbedder(vectors), ivf_threshold=threshold)
        expected = searches(on_cpu, queries)
    assert fake_gpu.copies == fake_gpu.back == 0

    index = CommentIndex.build(entries, TableEmbedder(vectors), ivf_threshold=threshold)
    assert faiss_ops.gpu_count() == 1
    assert fake_gpu.back == 1  # built on the device, returned to the CPU
    assert index.manifest == on_cpu.manifest  # the same lists, the same calibrated nprobe
    assert index.index is not index.device_index  # searched on a device copy
    assert_same_results(searches(index, queries), expected)
    assert fake_gpu.params, "no search ran on the device copy"
    # GPU indexes ignore ID selectors: the device copy is never handed one
    assert all(p is None or p.sel is None for p in fake_gpu.params)


def test_a_search_past_the_gpu_limit_is_answered_on_the_cpu(data, monkeypatch, fake_gpu):
    vectors, entries, queries = data
    index = CommentIndex.build(entries, TableEmbedder(vectors))
    lo, hi = index.video_range("video3")
    monkeypatch.setattr(faiss_ops, "GPU_MAX_K", 10 + (hi - lo) - 1)  # one short
    device = index.device_index
    before = len(fake_gpu.params)
    scores, ids = faiss_ops.search_index(index.index, queries, 10, (lo, hi), device=device)
    assert len(fake_gpu.params) == before  # the CPU index with its selector
    assert ((ids < lo) | (ids >= hi)).all()
    monkeypatch.setattr(faiss_ops, "GPU_MAX_K", 10 + (hi - lo))
    on_gpu = faiss_ops.search_index(index.index, queries, 10, (lo, hi), device=device)
    assert len(fake_gpu.params) == before + 1
    np.testing.assert_array_equal(on_gpu[1], ids)
    np.testing.assert_allclose(on_gpu[0], scores, atol=1e-6)


def test_results_of_a_gpu_search_lose_the_excluded_range():
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5], [0.9, 0.4, 0.0, 0.0, 0.0]], dtype=np.float32)
    ids = np.array([[5, 1, 6, 2, 3], [7, 2, -1, -1, -1]], dtype=np.int64)
    kept_scores, kept = faiss_ops._without(scores, ids, 3, (5, 8))
    assert kept.tolist() == [[1, 2, 3], [2, -1, -1]]
    assert kept_scores[0].tolist() == pytest.approx([0.8, 0.6, 0.5])
    assert kept_scores[1, 0] == pytest.approx(0.4)
