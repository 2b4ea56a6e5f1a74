"""Which entity the window is about: the linker's evidence, the learned entity model, and the
linker ranking facts by P(entity) * P(fact | entity) with it."""

from __future__ import annotations

import math

import pytest

from model.data.schema import Comment, Video
from retrieval import focus
from retrieval import relation_cues as rc
from retrieval.lexicon import EntityLexicon
from retrieval.linker import Linker, LinkerConfig
from retrieval.relation_cues import examples_from_videos
from tests.retrieval.kb import load_kb

PEOPLE = ["张三丰", "李四光", "王五岳", "赵六合", "钱七星", "孙八达"]
YEARS = ["1961年", "1972年", "1983年", "1954年", "1965年", "1976年"]
CITIES = ["上海", "北京", "广州", "深圳", "杭州", "成都"]
WORKS = [f"作品{chr(0x7532 + i)}{chr(0x4E59 + i)}" for i in range(6)]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    kb = {
        p: [
            [p, "出生日期", YEARS[i]],
            [p, "出生地", CITIES[i]],
            *([p, "代表作品", w] for w in WORKS),
        ]
        for i, p in enumerate(PEOPLE)
    }
    s = load_kb(tmp_path_factory.mktemp("kg"), kb)
    yield s
    s.close()


@pytest.fixture(scope="module")
def lexicon(store):
    return EntityLexicon.from_store(store)


def talk_show(v: int) -> Video:
    """The host (the topic, named again and again) brings on one guest after another; the
    question after a guest is named is about the guest, and its answer states the guest's
    birth year."""
    host = PEOPLE[0]
    comments = [Comment(float(s), f"{host}好帅") for s in range(0, 40, 4)]
    t = 60.0
    for k, guest in enumerate(PEOPLE[1:]):
        comments += [
            Comment(t, f"{host}好帅"),
            Comment(t + 10, f"{guest}来了"),
            Comment(t + 11, "ta哪一年生的呀"),
            Comment(t + 12, f"{YEARS[1 + k]}生的"),
        ]
        t += 40 + v
    return Video(f"show{v}", "", t + 40, comments, split="train")


def evidence(linker: Linker, window, history, t) -> dict[str, dict[str, float]]:
    cands = linker.entities(window, history, t, limit=8)
    return {c.entity: dict(zip(focus.FEATURES, c.evidence, strict=True)) for c in cands}


def test_evidence_orders_the_entities_by_when_they_were_last_named(store, lexicon):
    linker = Linker(store, lexicon)
    history = [Comment(1.0, "李四光和王五岳"), Comment(2.0, "张三丰")]
    window = [Comment(97.0, "王五岳来了"), Comment(99.0, "ta哪一年生的"), Comment(101.0, "赵六合")]
    ev = evidence(linker, window, history, 100.0)
    # named before t, latest first: 王五岳 (window), 张三丰, 李四光 (history); 赵六合 is after t
    assert [e for e in ev if ev[e]["last"]] == ["王五岳"]
    assert ev["张三丰"]["second"] == 1 and ev["李四光"]["third"] == 1
    assert not any(ev["赵六合"][k] for k in ("last", "second", "third"))
    assert ev["赵六合"]["window"] > 0 and ev["赵六合"]["topic"] == 0
    assert ev["王五岳"]["pronoun"] > 0 and ev["张三丰"]["pronoun"] == 0
    # the hand weight is the evidence's weighted sum, as before there was evidence
    cfg = linker.config
    for c in linker.entities(window, history, 100.0, limit=8):
        w, topic, title, pronoun, *_ = c.evidence
        hand = cfg.window_weight * (w + cfg.pronoun_weight * pronoun) + topic + title
        assert c.weight == pytest.approx(hand)


def test_fit_learns_the_feature_that_picks_the_entity():
    # the chosen candidate is always the one named last, never the one of the larger topic
    rows = []
    for k in range(20):
        host = (0.0, 1.0 + k % 3, 0.0, 0.0, 0.0, 1.0, 0.0)  # the topic, named second-last
        guest = (0.1, 0.2, 0.0, 0.0, 1.0, 0.0, 0.0)  # named last
        rows.append(((host, guest), frozenset({1})))
    weights = focus.fit(rows, l2=1.0)
    assert weights["last"] - weights["second"] > 1.0 and weights["topic"] < 0
    p = focus.probabilities(weights, rows[0][0])
    assert p[1] > 0.9 and math.isclose(sum(p), 1.0)
    assert focus.fit([], l2=1.0) == {}


def test_learned_focus_packs_the_guest_not_the_host(store, lexicon):
    plain = Linker(store, lexicon)
    cues = rc.learn(examples_from_videos(plain, [talk_show(v) for v in range(4)]), lexicon=lexicon)
    assert cues.focus["last"] > cues.focus["topic"]
    learned = Linker(store, lexicon, cues=cues)
    hand = Linker(store, lexicon, LinkerConfig(learned_focus=False), cues=cues)
    history = [Comment(float(s), "张三丰好帅") for s in range(0, 80, 4)]
    window = [Comment(95.0, "孙八达来了"), Comment(96.0, "ta哪一年生的呀")]
    # the host's weight from the history outweighs the guest named a moment ago
    assert hand.link(window, history, 97)[0].head == "张三丰"
    first = learned.link(window, history, 97)[0]
    assert (first.head, first.relation, first.tail) == ("孙八达", "出生日期", "1976年")


def test_fact_scores_are_the_entity_probability_split_over_its_facts(store, lexicon):
    cues = rc.learn(examples_from_videos(Linker(store, lexicon), [talk_show(0)]), lexicon=lexicon)
    linker = Linker(store, lexicon, LinkerConfig(budget=1000), cues=cues)  # everything packs
    history = [Comment(1.0, "张三丰好帅"), Comment(2.0, "李四光")]
    facts = linker.link([Comment(95.0, "孙八达来了")], history, 97)
    mass: dict[str, float] = {}
    for f in facts:
        mass[f.head] = mass.get(f.head, 0.0) + f.why.score
    assert set(mass) == {"张三丰", "李四光", "孙八达"}
    assert sum(mass.values()) == pytest.approx(1.0)  # every fact stateable, all packed
    assert max(mass, key=mass.get) == "孙八达"
