"""Entity linking, fact ranking and packing, and the one recall() on small hand-made data."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kg.embedded import EmbeddedStore
from model.data.schema import Comment, DataError, Video
from retrieval.comment_index import CommentIndex
from retrieval.embedders import make_embedder
from retrieval.lexicon import EntityLexicon
from retrieval.linker import Linker, LinkerConfig
from retrieval.recall import recall
from tests.conftest import cli_env
from tests.retrieval.kb import load_kb

FILM = "海上钢琴师（1998年朱塞佩·托纳多雷执导电影）"
KB = {
    FILM: [
        [FILM, "导演", "朱塞佩·托纳多雷"],
        [FILM, "主演", "蒂姆·罗斯"],
        [FILM, "上映时间", "1998年10月28日"],
        [FILM, "类型", "剧情"],
        [FILM, "其它译名", "声光伴我飞"],
    ],
    "蒂姆·罗斯": [
        ["蒂姆·罗斯", "国籍", "英国"],
        ["蒂姆·罗斯", "出生日期", "1961年5月14日"],
        ["蒂姆·罗斯", "代表作品", "落水狗"],
    ],
    "朱塞佩·托纳多雷": [
        ["朱塞佩·托纳多雷", "国籍", "意大利"],
        ["朱塞佩·托纳多雷", "代表作品", "天堂电影院"],
    ],
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = load_kb(tmp_path_factory.mktemp("kg"), KB)
    yield s
    s.close()


@pytest.fixture(scope="module")
def linker(store):
    return Linker(store, EntityLexicon.from_store(store), LinkerConfig())


def video(*comments: tuple[float, str], title: str = "") -> Video:
    return Video("v1", title, 600.0, [Comment(t, x) for t, x in sorted(comments)])


def test_window_mention_links_entity_with_why(store, linker):
    v = video((98, "蒂姆·罗斯好帅"), (99, "弹幕护体"), (100, "目标评论"))
    k = recall(store, linker, None, v, 100)
    assert k.facts and {f.head for f in k.facts} >= {"蒂姆·罗斯"}
    first = k.facts[0]
    assert (first.head, first.why.entity, first.why.keyword, first.why.hop) == (
        "蒂姆·罗斯",
        "蒂姆·罗斯",
        "蒂姆·罗斯",
        1,
    )
    assert sum(f.tokens for f in k.facts) + len(k.facts) - 1 <= 80
    assert "目标评论" not in " ".join(f.tail for f in k.facts)


def test_relation_named_in_window_ranks_first(store, linker):
    v = video((95, "海上钢琴师真好看"), (99, "导演是谁啊"))
    k = recall(store, linker, None, v, 100)
    assert (k.facts[0].head, k.facts[0].relation) == (FILM, "导演")


def test_topic_from_history_and_title(store, linker):
    v = video((10, "海上钢琴师来了"), (300, "哈哈哈"))
    k = recall(store, linker, None, v, 300)
    assert FILM in {f.why.entity for f in k.facts}, "named 290 s earlier: the video's topic"
    titled = video((300, "哈哈哈"), title="海上钢琴师")
    assert FILM in {f.why.entity for f in recall(store, linker, None, titled, 300).facts}


def test_two_hop_fill_and_budget(store):
    lex = EntityLexicon.from_store(store)
    roomy = Linker(store, lex, LinkerConfig(budget=200))
    k = recall(store, roomy, None, video((99, "声光伴我飞")), 100)
    assert {f.why.hop for f in k.facts} == {1, 2}
    hop2 = [f for f in k.facts if f.why.hop == 2]
    assert {f.head for f in hop2} <= {"蒂姆·罗斯", "朱塞佩·托纳多雷"}
    tight = Linker(store, lex, LinkerConfig(budget=12))
    small = recall(store, tight, None, video((99, "声光伴我飞")), 100)
    assert sum(f.tokens for f in small.facts) + len(small.facts) - 1 <= 12


def test_empty_window_unknown_entities_and_bad_t(store, linker):
    assert recall(store, linker, None, video(), 100).facts == []
    assert recall(store, linker, None, video((99, "周杰伦好帅 不在图谱里")), 100).facts == []
    with pytest.raises(DataError, match="outside"):
        recall(store, linker, None, video(), 10_000)
    other = Linker(store, linker.lexicon)
    with pytest.raises(ValueError, match="another store"):
        recall(EmbeddedStore(store.directory), other, None, video(), 1)


def test_recall_is_deterministic_with_comments_of_other_videos(store, linker):
    emb = make_embedder("hashing:64")
    entries = [("蒂姆·罗斯演技好", "v2", 5), ("蒂姆·罗斯好帅", "v1", 3), ("无关的话", "v3", 9)]
    index = CommentIndex.build(entries, emb)
    v = video((98, "蒂姆·罗斯好帅"))
    a = recall(store, linker, index, v, 100).as_dict()
    b = recall(store, Linker(store, EntityLexicon.from_store(store)), index, v, 100).as_dict()
    assert a == b
    assert a["comments"] and all(c["video"] != "v1" for c in a["comments"])
    assert set(a["comments"][0]) == {"text", "video", "t", "score"}


def test_cli_windows_and_errors(tmp_path, data_dir):
    from model.data.demo import DemoConfig, ensure_demo

    corpus = ensure_demo(tmp_path / "demo", DemoConfig(films=3))
    windows = tmp_path / "w.jsonl"
    windows.write_text('{"video": "demo0000", "t": 60}\n{"video": "demo0001", "t": 5}\n')
    base = [
        sys.executable,
        "-m",
        "retrieval.recall",
        "--corpus",
        str(corpus),
        "--format",
        "movielc",
        "--embedder",
        "hashing:64",
    ]
    env = cli_env(DANMAKU_DATA=str(data_dir))
    res = subprocess.run(
        [*base, "--windows", str(windows)], capture_output=True, text=True, env=env
    )
    assert res.returncode == 0, res.stderr
    lines = [json.loads(x) for x in res.stdout.strip().splitlines()]
    assert [(x["video"], x["t"]) for x in lines] == [("demo0000", 60), ("demo0001", 5)]
    for x in lines:
        assert set(x) >= {"video", "t", "facts", "comments"}
        assert all(set(f) == {"head", "relation", "tail", "why"} for f in x["facts"])
    res = subprocess.run(
        [*base, "--video", "nope", "--t", "3", "--json"], capture_output=True, text=True, env=env
    )
    assert res.returncode == 2 and "unknown video 'nope'" in res.stderr
    assert "Traceback" not in res.stderr
