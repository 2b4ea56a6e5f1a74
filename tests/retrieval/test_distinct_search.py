"""The flat distinct-text fast path returns what the entry-level faiss search returns."""

from __future__ import annotations

import numpy as np

import retrieval.faiss_ops as ci
from retrieval.comment_index import CommentIndex
from retrieval.embedders import make_embedder


def test_distinct_fast_path_matches_entry_level_search():
    rng = np.random.default_rng(1)
    words = ["刘德华", "梁朝伟", "好帅", "演技", "还演过", "无间道", "泪目", "导演", "票房", "韩国"]
    texts = ["".join(rng.choice(words, 4)) for _ in range(300)]
    entries = [(texts[rng.integers(300)], f"v{i % 30}", i) for i in range(4000)]
    index = CommentIndex.build(entries, make_embedder("hashing:256"))
    queries = ["".join(rng.choice(words, 3)) for _ in range(60)]
    excluded = [f"v{i % 30}" for i in range(60)]
    fast = index.search(queries, k=5, exclude_video=excluded, distinct=True)
    vectors = index._query_vectors(queries)
    for i, hits in enumerate(fast):
        scores, ids = ci.search_index(
            index.index, vectors[i : i + 1], len(index), index.video_range(excluded[i])
        )
        slow = index._hits(scores[0], ids[0], 5, True)
        assert np.allclose([h.score for h in hits], [h.score for h in slow], atol=1e-5)
        assert len({h.text for h in hits}) == len(hits) == 5
        assert all(h.video != excluded[i] for h in hits)
        # the same texts, up to the order of (near-)ties
        for a, b in zip(hits, slow, strict=True):
            assert a.text == b.text or abs(a.score - b.score) < 1e-5
