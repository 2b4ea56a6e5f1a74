"""Damaged retrieval caches (the keyword sets, the FAISS index of training comments) are
derived data: they are built again with a warning naming the file, never a traceback; a
damaged index met outside that path says how to recover."""

from __future__ import annotations

import json
import logging

import pytest

from model.data.schema import Comment, Corpus, Video
from retrieval.comment_index import CommentIndex
from retrieval.context import cached_index, cached_keywords
from retrieval.embedder_backends import HashingEmbedder
from retrieval.index_format import DamagedIndexError
from retrieval.lexicon import EntityLexicon

EMBEDDER = "hashing:16"


@pytest.fixture
def corpus() -> Corpus:
    texts = ["阿甘正传真好看", "汤姆汉克斯演得好", "前方高能", "这段音乐好听", "哈哈哈哈"]
    videos = {
        f"v{i}": Video(
            f"v{i}",
            f"电影{i}",
            60.0,
            [Comment(float(s), texts[(i + s) % len(texts)]) for s in range(0, 50, 5)],
            split="train" if i < 3 else "test",
        )
        for i in range(4)
    }
    return Corpus("demo", "mem", videos)


def index_dir(folder):
    return folder / f"index-{EMBEDDER.replace(':', '_')}"


@pytest.mark.parametrize("damage", ["flip", "truncate", "manifest"])
def test_a_damaged_comment_index_is_built_again(corpus, tmp_path, monkeypatch, caplog, damage):
    monkeypatch.setenv("DANMAKU_DATA", str(tmp_path / "data"))
    folder = tmp_path / "retrieval"
    built = cached_index(corpus, EMBEDDER, folder)
    expected = built.search(["阿甘正传"], k=5, exclude_video="v0")
    directory = index_dir(folder)
    target = directory / ("manifest.json" if damage == "manifest" else "index.faiss")
    data = bytearray(target.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    target.write_bytes(bytes(data))

    with pytest.raises(DamagedIndexError) as refused:
        CommentIndex.load(directory, HashingEmbedder(16))
    assert f"delete {directory} and it is built again" in str(refused.value)
    with caplog.at_level(logging.WARNING):
        again = cached_index(corpus, EMBEDDER, folder)
    assert again.search(["阿甘正传"], k=5, exclude_video="v0") == expected
    assert any(str(target) in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert CommentIndex.load(directory, HashingEmbedder(16))  # saved whole again


@pytest.mark.parametrize(
    "damage", [b'{"v0": [["\xe9\x98', b'{"v0": [["word", 1.0, null]], "v1": 3}', b"\xff\xfe{}"]
)
def test_damaged_keyword_sets_are_built_again(corpus, tmp_path, caplog, damage):
    lexicon = EntityLexicon([("阿甘正传", "阿甘正传"), ("汤姆汉克斯", "汤姆·汉克斯")])
    folder = tmp_path / "retrieval"
    fresh = cached_keywords(corpus, lexicon, folder)
    path = folder / f"keywords-{lexicon.fingerprint}.json"
    assert fresh and path.is_file()
    path.write_bytes(damage)
    with caplog.at_level(logging.WARNING):
        again = cached_keywords(corpus, lexicon, folder)
    assert again == fresh
    assert any(str(path) in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert json.loads(path.read_text(encoding="utf-8")).keys() == fresh.keys()
