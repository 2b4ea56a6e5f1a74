"""Knowledge-bearing by the stated-fact definition, value-swap sets, and the generation
knowledge metrics, on a hand-made KG and video."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kg.embedded import EmbeddedStore
from kg.loader import load
from model.data.schema import Comment, Corpus, Video
from model.encoded_split import Encoded
from model.metrics import WindowKnowledge, knowledge_generation_metrics
from model.value_swap import build_swap_sets
from retrieval.lexicon import EntityLexicon
from retrieval.linker import Linker, LinkerConfig
from retrieval.stated import stated_facts

KB = {
    "蒂姆·罗斯": [
        ["蒂姆·罗斯", "国籍", "英国"],
        ["蒂姆·罗斯", "出生日期", "1961年5月14日"],
        ["蒂姆·罗斯", "中文名", "蒂姆·罗斯"],
    ],
    "朱塞佩·托纳多雷": [
        ["朱塞佩·托纳多雷", "国籍", "意大利"],
        ["朱塞佩·托纳多雷", "出生日期", "1956年5月27日"],
    ],
    "梁朝伟": [["梁朝伟", "国籍", "中国"], ["梁朝伟", "出生日期", "1962年6月27日"]],
    "凯特·温斯莱特": [["凯特·温斯莱特", "国籍", "英国"]],
    "汤姆·汉克斯": [["汤姆·汉克斯", "国籍", "美国"]],
}


@pytest.fixture(scope="module")
def linker(tmp_path_factory):
    d = tmp_path_factory.mktemp("kg")
    (d / "kb.json").write_text(json.dumps(KB, ensure_ascii=False), encoding="utf-8")
    store = EmbeddedStore(d / "db")
    load(store, "filmkg", d / "kb.json", progress=False)
    yield Linker(store, EntityLexicon.from_store(store), LinkerConfig())
    store.close()


VIDEO = Video(
    "v1",
    "",
    100.0,
    [
        Comment(8.0, "蒂姆·罗斯来了"),
        Comment(9.0, "朱塞佩·托纳多雷 梁朝伟 凯特·温斯莱特 汤姆·汉克斯"),
        Comment(10.0, "他是英国人"),
        Comment(10.0, "他也叫蒂姆·罗斯"),
        Comment(10.0, "好看"),
    ],
)


def test_stated_facts_need_a_linked_entity_and_a_stateable_value(linker):
    facts = stated_facts(linker, VIDEO, 10, "他是英国人")
    # both linked entities whose 国籍 is 英国 (which one "他" is, the KG cannot say)
    assert {(f.head, f.relation, f.tail) for f in facts} == {
        ("凯特·温斯莱特", "国籍", "英国"),
        ("蒂姆·罗斯", "国籍", "英国"),
    }
    assert stated_facts(linker, VIDEO, 10, "他也叫蒂姆·罗斯") == []  # an alias value
    assert stated_facts(linker, VIDEO, 10, "好看") == []
    unlinked = Video("v2", "", 100.0, [Comment(10.0, "他是英国人")])
    assert stated_facts(linker, unlinked, 10, "他是英国人") == []


def encoded_for(stated: list[list[list[str]]], linked: list[str]) -> Encoded:
    n_t = len(stated)
    return Encoded(
        video=["v1"],
        t=np.array([10], dtype=np.int32),
        frames=np.zeros((1, 11, 1), np.float32),
        frame_mask=np.zeros((1, 11), bool),
        rows=np.zeros((1, 11, 4), np.int32),
        knowledge=np.zeros((1, 5), np.int32),
        fact_of=np.full((1, 5), -1, np.int16),
        fact_part=np.zeros((1, 5), np.int8),
        period=np.zeros(1, np.int64),
        knowledge_target=np.zeros(1, bool),
        targets=np.zeros((n_t, 4), np.int32),
        target_sample=np.zeros(n_t, np.int32),
        facts=[[]],
        ac=[[]],
        corpus_words=10,
        linked=[linked],
        stated=stated,
    )


def test_swap_sets_replace_the_value_with_false_values_of_the_same_relation(linker):
    corpus = Corpus(format="demo", path="mem", videos={"v1": VIDEO})
    stated = [[["蒂姆·罗斯", "国籍", "英国"]], [], []]
    linked = ["蒂姆·罗斯", "朱塞佩·托纳多雷", "梁朝伟", "凯特·温斯莱特", "汤姆·汉克斯"]
    encoded = encoded_for(stated, linked)
    assert encoded.knowledge_stated.tolist() == [True]
    sets = build_swap_sets(encoded, corpus, linker, seed=0)
    assert len(sets) == 1
    s = sets[0]
    assert s.texts[0] == "他是英国人" and (s.head, s.relation, s.value) == (
        "蒂姆·罗斯",
        "国籍",
        "英国",
    )
    # 意大利, 中国, 美国: values of 国籍 that are not true for 蒂姆·罗斯 (英国 of another
    # entity is the truth's own value, never a swap); no date of another relation
    assert sorted(s.texts[1:]) == ["他是中国人", "他是意大利人", "他是美国人"]
    again = build_swap_sets(encoded, corpus, linker, seed=0)
    assert again == sets


def test_knowledge_generation_metrics():
    w = WindowKnowledge(
        stated=frozenset({"英国"}),
        true=frozenset({"英国", "1961年5月14日"}),
        relation_values=frozenset({"英国", "美国", "意大利", "1961年5月14日", "1961年"}),
        new_fact_words=frozenset({"英国", "出生"}),
    )
    texts = ["他是英国人", "他是美国人", "1961年5月14日出生", "好看"]
    words = [["他", "是", "英国", "人"], ["他", "是", "美国", "人"], ["1961", "出生"], ["好看"]]
    m = knowledge_generation_metrics(texts, words, [w] * 4)
    assert m["fact_copy"] == 0.25
    assert m["with_values"] == 3  # the date contains 1961年: only the longer value counts
    assert m["supported_values"] == pytest.approx(2 / 3, abs=1e-4)
    assert m["unsupported_values"] == pytest.approx(1 / 3, abs=1e-4)
    f1_first = 2 * (1 / 4) * (1 / 2) / (1 / 4 + 1 / 2)
    f1_third = 2 * (1 / 2) * (1 / 2) / 1.0
    assert m["knowledge_f1"] == pytest.approx((f1_first + f1_third) / 4, abs=1e-4)
