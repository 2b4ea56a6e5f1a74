"""A video the corpus lacks: its keyword set against the corpus's document frequencies is the
one TF-IDF over the corpus with it would give, and joining a context leaves the context as it
was."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from model.data.schema import Comment, Corpus, DataError, Video
from retrieval.context import RetrievalContext
from retrieval.keywords import DocumentFrequencies, new_video_keywords, video_keywords
from retrieval.lexicon import EntityLexicon

NAMES = [
    ("阿甘正传", "阿甘正传"),
    ("汤姆·汉克斯", "汤姆·汉克斯"),
    ("罗伯特·泽米吉斯", "罗伯特·泽米吉斯"),
]
TEXTS = {
    "a": ["阿甘正传太好看了", "汤姆·汉克斯的演技", "巧克力和羽毛", "电影的音乐", "跑步的镜头"],
    "b": ["汤姆·汉克斯又来了", "这部电影的导演", "海滩的镜头", "战争场面"],
    "c": ["罗伯特·泽米吉斯的电影", "特效很好", "音乐和画面", "时间旅行"],
}


def video(vid: str, texts: list[str]) -> Video:
    comments = [Comment(float(i), text) for i, text in enumerate(texts * 2)]
    return Video(vid, vid, float(len(comments)), comments)


@pytest.fixture(scope="module")
def lexicon() -> EntityLexicon:
    return EntityLexicon(NAMES)


@pytest.fixture
def corpus() -> Corpus:
    return Corpus("demo", "corpus", {v: video(v, texts) for v, texts in TEXTS.items()})


def test_keywords_of_a_new_video_are_those_of_tf_idf_over_the_corpus_with_it(lexicon, corpus):
    new = video("new", ["阿甘正传的巧克力", "汤姆·汉克斯", "羽毛飞起来", "巧克力盒子"])
    frequencies = DocumentFrequencies.of(corpus, lexicon)
    assert frequencies.n_docs == 3 and frequencies.df["汤姆·汉克斯"] == 2
    got = new_video_keywords(new, lexicon, frequencies)
    want = video_keywords([*corpus, new], lexicon)["new"]
    assert [k.word for k in got] == [k.word for k in want] and got
    assert [k.score for k in got] == pytest.approx([k.score for k in want])
    assert {k.word: k.entity for k in got}["汤姆·汉克斯"] == "汤姆·汉克斯"
    assert new_video_keywords(video("quiet", []), lexicon, frequencies) == []


def context(corpus: Corpus, lexicon: EntityLexicon, folder) -> RetrievalContext:
    linker = SimpleNamespace(lexicon=lexicon)
    return RetrievalContext(corpus, None, linker, None, {"a": []}, folder)  # type: ignore[arg-type]


def test_with_video_copies_the_context_and_caches_the_frequencies(lexicon, corpus, tmp_path):
    ctx = context(corpus, lexicon, tmp_path)
    new = video("new", ["阿甘正传的巧克力", "巧克力盒子"])
    joined = ctx.with_video(new, features=None)
    assert joined.corpus.videos["new"] is new and "new" in joined.keywords
    assert "巧克力" in joined.keyword_set("new")
    assert "new" not in ctx.corpus.videos and "new" not in ctx.keywords  # left as it was
    assert set(joined.corpus.videos) == {"a", "b", "c", "new"}
    (saved,) = tmp_path.glob("keyword-df-*.json")
    assert json.loads(saved.read_text(encoding="utf-8"))["n_docs"] == 3
    # a second video joins the same context; the frequencies are those counted before
    other = ctx.with_video(video("other", ["战争场面"]), features=None)
    assert set(other.corpus.videos) == {"a", "b", "c", "other"}
    with pytest.raises(DataError, match="'a' is already in the corpus"):
        ctx.with_video(video("a", []), features=None)


def test_damaged_frequencies_are_counted_again(lexicon, corpus, tmp_path, caplog):
    context(corpus, lexicon, tmp_path).document_frequencies()
    (saved,) = tmp_path.glob("keyword-df-*.json")
    saved.write_text("{not json", encoding="utf-8")
    again = context(corpus, lexicon, tmp_path).document_frequencies()
    assert again.n_docs == 3 and "damaged document frequencies" in caplog.text
    assert json.loads(saved.read_text(encoding="utf-8"))["n_docs"] == 3
