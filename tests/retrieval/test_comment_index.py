"""The other-video comment index (DESIGN.md §4, KLVCG §IV-B "AC"): FAISS against numpy brute
force (flat, and IVF scanning every list), same-video exclusion, persistence."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from model.data.schema import Comment, Corpus, Video
from retrieval.comment_index import CommentIndex, entries_fingerprint, entries_from_corpus
from retrieval.embedder_backends import HashingEmbedder
from retrieval.faiss_ops import search_index
from retrieval.index_format import CommentIndexError, StaleIndexError

DIM = 32


class TableEmbedder:
    """Text ``"v<i>"`` -> row i of a fixed random unit-vector table (exact, instant)."""

    def __init__(self, vectors: np.ndarray, name: str = "table") -> None:
        self.vectors, self.name, self.dim = vectors, name, vectors.shape[1]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.vectors[[int(t[1:]) for t in texts]]


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(rng: np.random.Generator, n: int, centres: int = 40) -> np.ndarray:
    """Unit vectors around a few centres: the structure real sentence embeddings have."""
    c = unit(rng, centres)
    return unit_rows(c[rng.integers(0, centres, n)] + 0.35 * unit(rng, n))


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_entries(n: int, videos: int) -> list[tuple[str, str, int]]:
    """Entry i has text v<i>; videos interleave so grouping by video is exercised."""
    return [(f"v{i}", f"video{i % videos}", i // videos) for i in range(n)]


def brute_force(vectors, entries, query, k, exclude=None):
    rows = [i for i, e in enumerate(entries) if e[1] != exclude]
    scores = vectors[rows] @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return [(entries[rows[j]][:3], float(scores[j])) for j in order]


def as_pairs(hits):
    return [((h.text, h.video, h.t), h.score) for h in hits]


def assert_same(hits, expected):
    assert [p[0] for p in as_pairs(hits)] == [e[0] for e in expected]
    np.testing.assert_allclose([h.score for h in hits], [e[1] for e in expected], atol=1e-5)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    vectors = unit(rng, 3000)
    return vectors, make_entries(3000, 12), unit(rng, 20)


def test_flat_equals_numpy_brute_force(data):
    vectors, entries, queries = data
    index = CommentIndex.build(entries, TableEmbedder(vectors))
    assert index.index_type == "flat" and len(index) == 3000
    for query, hits in zip(queries, index.search(queries, k=10), strict=True):
        assert_same(hits, brute_force(vectors, entries, query, 10))


def test_ivf_scanning_all_lists_equals_flat(data):
    vectors, entries, queries = data
    flat = CommentIndex.build(entries, TableEmbedder(vectors))
    ivf = CommentIndex.build(entries, TableEmbedder(vectors), ivf_threshold=1000, seed=3)
    assert ivf.index_type == "ivf" and 1 <= ivf.nprobe <= ivf.manifest["nlist"]
    nlist = ivf.manifest["nlist"]
    for exclude in (None, "video5"):
        expected = flat.search(queries, k=10, exclude_video=exclude)
        got = ivf.search(queries, k=10, exclude_video=exclude, nprobe=nlist)
        for hits, want in zip(got, expected, strict=True):
            assert_same(hits, as_pairs(want))


def test_ivf_default_nprobe_reaches_recall():
    rng = np.random.default_rng(1)
    vectors = clustered(rng, 6000)
    entries = make_entries(6000, 30)
    queries = unit_rows(vectors[rng.integers(0, 6000, 200)] + 0.2 * unit(rng, 200))
    flat = CommentIndex.build(entries, TableEmbedder(vectors))
    ivf = CommentIndex.build(entries, TableEmbedder(vectors), ivf_threshold=1000)
    assert ivf.nprobe < ivf.manifest["nlist"]
    exact = [{h.text for h in hits} for hits in flat.search(queries, k=10)]
    approx = [{h.text for h in hits} for hits in ivf.search(queries, k=10)]
    recall = np.mean([len(a & e) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.9


@pytest.mark.parametrize("threshold", [10**9, 1000], ids=["flat", "ivf"])
def test_same_video_excluded_best_other_found(data, threshold):
    vectors, entries, _ = data
    index = CommentIndex.build(entries, TableEmbedder(vectors), ivf_threshold=threshold)
    if index.index_type == "ivf":
        index.nprobe = index.manifest["nlist"]
    own = [0, 1, 13, 2999]  # entries of videos 0, 1, 1, 11
    queries = vectors[own]
    videos = [entries[i][1] for i in own]
    for i, hits in zip(own, index.search(queries, k=10, exclude_video=videos), strict=True):
        video = entries[i][1]
        assert hits and all(h.video != video for h in hits)
        assert_same(hits[:1], brute_force(vectors, entries, vectors[i], 1, exclude=video))
    unexcluded = index.search(queries[:1], k=1)[0][0]
    assert (unexcluded.text, unexcluded.video, unexcluded.score) == (
        "v0",
        "video0",
        pytest.approx(1),
    )


def test_selector_range_in_raw_faiss_search(data):
    vectors, entries, queries = data
    for threshold in (10**9, 1000):
        index = CommentIndex.build(entries, TableEmbedder(vectors), ivf_threshold=threshold)
        lo, hi = index.video_range("video3")
        nprobe = index.manifest["nlist"]
        _, ids = search_index(index.index, queries, 50, exclude=(lo, hi), nprobe=nprobe)
        assert ((ids < lo) | (ids >= hi)).all() and (ids >= 0).all()


def test_ranges_are_contiguous_per_video():
    entries = [("a", "x", 1), ("b", "y", 2), ("c", "x", 3), ("d", "z", 4), ("e", "y", 5)]
    index = CommentIndex.build(entries, HashingEmbedder(64))
    assert index.videos == ["x", "y", "z"]
    assert [index.video_range(v) for v in "xyz"] == [(0, 2), (2, 4), (4, 5)]
    assert index.video_range("unknown") is None
    hit = index.search(["c"], k=1)[0][0]
    assert (hit.text, hit.video, hit.t) == ("c", "x", 3)


def test_text_queries_distinct_and_repeats():
    entries = [("前方高能", f"v{i}", i) for i in range(5)] + [("前方高能预警", "v9", 7)]
    entries += [("哈哈哈", "v0", 1), ("下雨了", "v1", 2)]
    index = CommentIndex.build(entries, HashingEmbedder(128))
    assert index.manifest["texts"] == 4  # "前方高能" embedded once for five entries
    plain = index.search("前方高能", k=3, exclude_video="v0")[0]
    assert [h.text for h in plain] == ["前方高能"] * 3
    assert [h.video for h in plain] == ["v1", "v2", "v3"]  # ties broken by id: deterministic
    distinct = index.search(["前方高能"], k=3, exclude_video="v0", distinct=True)[0]
    # "哈哈哈" is only in the excluded video v0
    assert [h.text for h in distinct] == ["前方高能", "前方高能预警", "下雨了"]
    assert [h.video for h in distinct] == ["v1", "v9", "v1"]
    everything = index.search(["哈哈哈"], k=100)[0]
    assert len(everything) == len(entries)


def test_save_load_round_trip(tmp_path, data):
    vectors, entries, queries = data
    emb = TableEmbedder(vectors)
    for threshold in (10**9, 1000):
        built = CommentIndex.build(entries, emb, ivf_threshold=threshold)
        built.save(tmp_path / str(threshold))
        loaded = CommentIndex.load(tmp_path / str(threshold), emb)
        assert loaded.manifest == built.manifest
        for exclude in (None, "video7"):
            assert loaded.search(queries, k=10, exclude_video=exclude) == built.search(
                queries, k=10, exclude_video=exclude
            )
    with pytest.raises(StaleIndexError, match="other comments"):
        CommentIndex.load(tmp_path / "1000", emb, expect_fingerprint="0" * 64)
    fingerprint = built.manifest["fingerprint"]
    assert CommentIndex.load(tmp_path / "1000", emb, expect_fingerprint=fingerprint)


def test_load_refuses_other_embedder_and_corruption(tmp_path):
    entries = make_entries(50, 5)
    texts_vectors = unit(np.random.default_rng(2), 50)
    directory = CommentIndex.build(entries, TableEmbedder(texts_vectors)).save(tmp_path / "ix")
    with pytest.raises(CommentIndexError, match="built with embedder table"):
        CommentIndex.load(directory, TableEmbedder(texts_vectors, name="other"))
    with pytest.raises(CommentIndexError, match="built with embedder table"):
        CommentIndex.load(directory, HashingEmbedder(DIM))
    with pytest.raises(CommentIndexError, match="manifest missing"):
        CommentIndex.load(tmp_path / "nothing", HashingEmbedder(DIM))

    index_file = directory / "index.faiss"
    good = index_file.read_bytes()
    index_file.write_bytes(good[: len(good) // 2])
    with pytest.raises(CommentIndexError, match="corrupt"):
        CommentIndex.load(directory, TableEmbedder(texts_vectors))
    index_file.write_bytes(good)

    manifest = directory / "manifest.json"
    text = manifest.read_text()
    manifest.write_text(text[:40])
    with pytest.raises(CommentIndexError, match="corrupt manifest"):
        CommentIndex.load(directory, TableEmbedder(texts_vectors))
    broken = json.loads(text)
    del broken["files"]
    manifest.write_text(json.dumps(broken))
    with pytest.raises(CommentIndexError, match="corrupt manifest"):
        CommentIndex.load(directory, TableEmbedder(texts_vectors))


def test_entries_from_corpus_and_bad_input():
    def video(vid: str, split: str) -> Video:
        comments = [Comment(1.5, "好看"), Comment(3.0, "哈哈"), Comment(4.2, "  ")]
        return Video(vid, vid, 10.0, comments=comments, split=split)

    corpus = Corpus("demo", "mem", {v: video(v, s) for v, s in [("a", "train"), ("b", "test")]})
    assert list(entries_from_corpus(corpus)) == [("好看", "a", 1), ("哈哈", "a", 3), ("  ", "a", 4)]
    assert len(list(entries_from_corpus(corpus, split=None))) == 6
    index = CommentIndex.build(entries_from_corpus(corpus, split=None), HashingEmbedder(16))
    assert len(index) == 4  # blank comments are not indexed
    with pytest.raises(CommentIndexError, match="no comments"):
        CommentIndex.build([], HashingEmbedder(16))
    for bad in [("b", "v"), (3, "v", 1), ("b", "v", "x"), ("b", "v", 1.5)]:
        with pytest.raises(CommentIndexError, match="entry 1"):
            CommentIndex.build([("a", "v", 1), bad], HashingEmbedder(16))
    assert (
        entries_fingerprint(entries_from_corpus(corpus))
        == CommentIndex.build(entries_from_corpus(corpus), HashingEmbedder(16)).manifest[
            "fingerprint"
        ]
    )
