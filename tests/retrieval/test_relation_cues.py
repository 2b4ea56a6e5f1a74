"""Learned relation cues on a small synthetic corpus: what is learned, what the linker packs
with it, and the cache."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest

from model.data.schema import Comment, Corpus, SplitRange, Video
from retrieval import relation_cues as rc
from retrieval.context import build_linker
from retrieval.cue_model import CueConfig, RelationCues
from retrieval.lexicon import EntityLexicon
from retrieval.linker import Linker, LinkerConfig
from retrieval.relation_cues import cached_cues, examples_from_videos
from tests.retrieval.kb import load_kb

PEOPLE = ["张三丰", "李四光", "王五岳", "赵六合", "钱七星", "孙八达"]
CITIES = ["上海", "北京", "广州", "深圳", "杭州", "成都"]
YEARS = ["1961年", "1972年", "1983年", "1954年", "1965年", "1976年"]
WORKS = [f"作品{chr(0x7532 + i)}{chr(0x4E59 + i)}" for i in range(16)]  # 16 distinct titles


def kb() -> dict:
    out = {}
    for i, p in enumerate(PEOPLE):
        out[p] = [
            [p, "出生地", CITIES[i]],
            [p, "出生日期", YEARS[i]],
            [p, "国籍", "中国"],
            *([p, "代表作品", w] for w in WORKS),
        ]
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = load_kb(tmp_path_factory.mktemp("kg"), kb())
    yield s
    s.close()


@pytest.fixture(scope="module")
def lexicon(store):
    return EntityLexicon.from_store(store)


def training_videos(n: int = 6) -> list[Video]:
    """Each person is named, asked about (老家 -> 出生地, 哪一年 -> 出生日期) and answered."""
    videos = []
    for v in range(n):
        comments, t = [], 10.0
        for i, p in enumerate(PEOPLE):
            birth = (i + v) % 2 == 0
            question = "ta哪一年生的呀" if birth else "ta老家在哪儿呀"
            answer = f"{YEARS[i]}生的" if birth else f"是{CITIES[i]}人"
            comments += [
                Comment(t, f"{p}来了"),
                Comment(t + 1, "好好看"),
                Comment(t + 2, question),
                Comment(t + 3, answer),
                Comment(t + 4, "哈哈哈"),
            ]
            t += 60
        videos.append(Video(f"train{v}", "", t + 60, comments, split="train"))
    return videos


def test_learned_cue_ranks_the_relation_it_asks_for_first(store, lexicon):
    linker = Linker(store, lexicon)
    examples = list(examples_from_videos(linker, training_videos()))
    assert len(examples) == 36  # one per answer
    cues = rc.learn(examples, seeds={}, lexicon=lexicon)  # no hand seeds: learned only

    def asked(question: str) -> dict[str, float]:
        # the question's cue words as the linker finds them (jieba's split, not a guess)
        return cues.relation_scores(cues.window_cues(lexicon, [Comment(9.0, question)], 10.0))

    home, year = asked("ta老家在哪儿呀"), asked("ta哪一年生的呀")
    assert max(home, key=home.get) == "出生地"
    assert max(year, key=year.get) == "出生日期"
    assert home["出生地"] - home["出生日期"] > 0.5 and year["出生日期"] - year["出生地"] > 0.5
    # chatter seen with both relations alike tells them apart little
    chatter = cues.relation_scores({"好好看": 1.0})
    assert abs(chatter.get("出生地", 0) - chatter.get("出生日期", 0)) < 0.2
    # a relation never stated is less likely than one that is
    assert cues.rate["代表作品"] < cues.rate["出生地"]


def test_linker_with_cues_packs_the_asked_fact(store, lexicon):
    examples = examples_from_videos(Linker(store, lexicon), training_videos())
    cues = rc.learn(examples, lexicon=lexicon)
    plain, cued = Linker(store, lexicon), Linker(store, lexicon, cues=cues)
    # A person of 19 facts: without cues they tie, the text order packs the 16 works first
    # and the budget's leftover takes the shortest fact that still fits (出生地 sorts first).
    home = [Comment(98.0, "孙八达来了"), Comment(99.0, "ta老家在哪儿呀")]
    year = [Comment(98.0, "孙八达来了"), Comment(99.0, "ta哪一年生的呀")]
    asked_year = ("孙八达", "出生日期", "1976年")
    without = plain.link(year, [], 100)
    assert without[0].relation == "代表作品"
    assert asked_year not in {(f.head, f.relation, f.tail) for f in without}
    first = cued.link(year, [], 100)[0]
    assert (first.head, first.relation, first.tail) == asked_year
    first = cued.link(home, [], 100)[0]
    assert (first.head, first.relation, first.tail) == ("孙八达", "出生地", "成都")


def test_linker_config_records_the_cue_model(store, lexicon):
    cues = rc.learn(examples_from_videos(Linker(store, lexicon), training_videos(2)))
    linker = Linker(store, lexicon, LinkerConfig(), cues=cues)
    assert linker.config.cue_model == cues.fingerprint != ""
    json.dumps(asdict(linker.config))  # encoding caches key on it
    assert Linker(store, lexicon, linker.config).config.cue_model == ""  # no cues, no model


def test_json_round_trip(store, lexicon):
    cues = rc.learn(examples_from_videos(Linker(store, lexicon), training_videos(2)))
    back = RelationCues.from_json(json.loads(json.dumps(cues.as_json(), ensure_ascii=False)))
    assert back == cues and back.fingerprint == cues.fingerprint
    with pytest.raises(ValueError, match="version"):
        RelationCues.from_json({**cues.as_json(), "version": 0})


def test_cache_reuses_and_a_changed_corpus_relearns(store, lexicon, tmp_path, monkeypatch):
    linker = Linker(store, lexicon)
    videos = training_videos(2)
    first = cached_cues(videos, linker, tmp_path)
    assert len(list(tmp_path.glob("relation-cues-*.json"))) == 1

    def fail(*a, **k):
        raise AssertionError("learned again")

    monkeypatch.setattr(rc, "learn", fail)
    assert cached_cues(videos, linker, tmp_path) == first  # from the file
    monkeypatch.undo()
    changed = [replace(videos[0], comments=videos[0].comments[:-5]), *videos[1:]]
    second = cached_cues(changed, linker, tmp_path)
    assert len(list(tmp_path.glob("relation-cues-*.json"))) == 2
    assert second.examples == first.examples - 1  # the dropped answer
    other = cached_cues(videos, linker, tmp_path, CueConfig(l2=4.0))  # other settings
    assert other != first and len(list(tmp_path.glob("relation-cues-*.json"))) == 3


def test_damaged_cache_file_is_relearned(store, lexicon, tmp_path):
    linker = Linker(store, lexicon)
    first = cached_cues(training_videos(2), linker, tmp_path)
    (path,) = tmp_path.glob("relation-cues-*.json")
    path.write_text("{", encoding="utf-8")
    assert cached_cues(training_videos(2), linker, tmp_path) == first


def test_build_linker_learns_from_the_training_split_only(store, lexicon, tmp_path):
    train = training_videos(3)
    test = [replace(v, id=f"test{i}", split="test") for i, v in enumerate(training_videos(2))]
    corpus = Corpus("demo", str(tmp_path), {v.id: v for v in train + test})
    linker = build_linker(corpus, store, lexicon, tmp_path)
    assert linker.cues is not None and linker.cues.examples == 18  # 3 videos x 6 answers
    assert linker.config.cue_model == linker.cues.fingerprint
    empty = Corpus("demo", str(tmp_path), {v.id: v for v in test})
    assert build_linker(empty, store, lexicon, tmp_path / "e").cues is None


def test_build_linker_learns_from_the_training_ranges_of_a_video_split_by_time(
    store, lexicon, tmp_path
):
    # one person per 60 s from t=10: the first three in training ranges, the others in test
    video = replace(training_videos(1)[0], id="vod", split=None)
    video.split_ranges = [SplitRange(0, 190, "train"), SplitRange(190, 430, "test")]
    corpus = Corpus("twitch", str(tmp_path), {video.id: video})
    linker = build_linker(corpus, store, lexicon, tmp_path)
    assert linker.cues is not None and linker.cues.examples == 3
