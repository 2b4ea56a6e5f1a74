"""Candidate sets (model.data.candidates) as LiveBot's add_candidate.py builds them
(DESIGN.md section 6), on a hand-made pool with a character tokenizer."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from model.data.candidates import (
    PLAUSIBLE,
    POPULAR,
    RANDOM,
    TRUTH,
    TWITCH_SPEC,
    CandidatePool,
    CandidateRequest,
    CandidateSpec,
    as_mapping,
    build_all,
    char_tokenize,
    load_candidate_sets,
    released_candidates,
    released_labels,
    save_candidate_sets,
)
from model.data.schema import Candidate, DataError

CONTEXT = "刘德华的新电影真好看"
#: 20 popular comments: "哈" * (i + 1), said 40 - i times each.
POPULAR_TEXTS = ["哈" * (i + 1) for i in range(20)]
#: 30 comments that share characters with CONTEXT, to different degrees.
RELATED = [CONTEXT[: i % 9 + 1] + f"q{i}" for i in range(30)]
#: 300 comments that share no character with CONTEXT or the popular ones.
FILLER = [f"x{i}y" for i in range(300)]


def _train_texts() -> list[str]:
    texts = [t for i, t in enumerate(POPULAR_TEXTS) for _ in range(40 - i)]
    return texts + RELATED * 2 + FILLER + ["  "]


@pytest.fixture(scope="module")
def pool() -> CandidatePool:
    return CandidatePool(_train_texts(), char_tokenize)


def _labels(cands) -> Counter:
    return Counter(c.label for c in cands)


def test_pool_keeps_distinct_texts_by_frequency(pool):
    assert len(pool) == 20 + 30 + 300
    assert pool.popular() == POPULAR_TEXTS
    assert pool.counts[:2] == [40, 39]


def test_plausible_are_the_most_tfidf_similar(pool):
    got = pool.plausible(CONTEXT)
    # the reference: cosine of sklearn TF-IDF vectors over the distinct texts, brute force
    vec = TfidfVectorizer(tokenizer=char_tokenize, lowercase=False, token_pattern=None)
    matrix = vec.fit_transform(pool.texts)
    sims = (matrix @ vec.transform([CONTEXT]).T).toarray().ravel()
    ranked = sorted(range(len(sims)), key=lambda i: (-sims[i], i))
    assert got == [pool.texts[i] for i in ranked[:20]]
    assert set(got) <= set(RELATED)
    # the longest overlaps with the context come first
    assert got[0] in {t for t in RELATED if t.startswith(CONTEXT[:9])}


def test_plausible_needs_some_similarity(pool):
    assert pool.plausible("完全无关") == []
    with_de = {t for t in RELATED if "德" in t}
    assert len(with_de) > 20
    assert set(pool.plausible("德", k=50)) == with_de
    assert len(pool.plausible("德")) == 20


def test_build_gives_exactly_100_with_the_livebot_parts(pool):
    truths = ["刘德华演技好", "真好看呀", "x1y"]  # the last one is also a training comment
    cands = pool.build(truths, CONTEXT, np.random.default_rng(0))
    texts = [c.text for c in cands]
    assert len(cands) == 100
    assert len(set(texts)) == 100
    assert {c.text for c in cands if c.label == TRUTH} == set(truths)
    assert {c.text for c in cands if c.label == POPULAR} == set(POPULAR_TEXTS)
    assert {c.text for c in cands if c.label == PLAUSIBLE} == set(pool.plausible(CONTEXT))
    assert _labels(cands) == {TRUTH: 3, POPULAR: 20, PLAUSIBLE: 20, RANDOM: 57}
    taken = set(truths) | set(POPULAR_TEXTS) | set(pool.plausible(CONTEXT))
    assert {c.text for c in cands if c.label == RANDOM} <= set(pool.texts) - taken
    assert [c.label for c in cands[:3]] != [TRUTH] * 3  # shuffled


def test_truths_are_deduplicated_capped_and_win_over_popular(pool):
    truths = ["哈", "哈", "b1", "b2", "b3", "b4", "b5"]
    cands = pool.build(truths, CONTEXT, np.random.default_rng(0))
    assert [c.text for c in cands if c.label == TRUTH].count("哈") == 1
    assert {c.text for c in cands if c.label == TRUTH} == {"哈", "b1", "b2", "b3", "b4"}
    assert _labels(cands)[POPULAR] == 19
    assert len(cands) == 100


def test_deterministic_for_a_seed_and_different_for_another(pool):
    def build(seed: int):
        return pool.build(["一条评论"], CONTEXT, np.random.default_rng(seed))

    assert build(7) == build(7)
    assert build(7) != build(8)
    randoms = [{c.text for c in build(s) if c.label == RANDOM} for s in (7, 8)]
    assert randoms[0] != randoms[1]


def test_errors_when_the_pool_is_too_small_or_no_truth(pool):
    small = CandidatePool(FILLER[:50], char_tokenize)
    with pytest.raises(ValueError, match="cannot fill 100 distinct candidates"):
        small.build(["t"], "x", np.random.default_rng(0))
    exact = CandidatePool(FILLER[:99], char_tokenize)
    assert len(exact.build(["t"], "x", np.random.default_rng(0))) == 100
    with pytest.raises(ValueError, match="ground truth"):
        pool.build(["", " "], CONTEXT, np.random.default_rng(0))


def test_twitch_variant_80_with_plausible_first():
    context = "哈哈" + CONTEXT  # the popular "哈" comments are plausible too
    livebot = CandidatePool(_train_texts(), char_tokenize)
    twitch = CandidatePool(_train_texts(), char_tokenize, TWITCH_SPEC)
    rng = np.random.default_rng
    cands = twitch.build(["真好看", "第二条"], context, rng(0))
    assert len(cands) == 80
    assert [c.text for c in cands if c.label == TRUTH] == ["真好看"]
    assert _labels(cands)[PLAUSIBLE] == 20
    assert _labels(cands)[POPULAR] + _labels(cands)[PLAUSIBLE] + _labels(cands)[RANDOM] == 79
    overlap = set(twitch.plausible(context)) & set(POPULAR_TEXTS)
    assert overlap
    assert {c.text for c in cands if c.label == PLAUSIBLE} >= overlap
    by_livebot = {c.text: c.label for c in livebot.build(["真好看"], context, rng(0))}
    assert {by_livebot[t] for t in overlap} == {POPULAR}


def test_twitch_spec_orders_the_released_labels():
    labels = TWITCH_SPEC.ordered_labels()
    assert labels == [TRUTH] + [PLAUSIBLE] * 20 + [POPULAR] * 20 + [RANDOM] * 39
    assert CandidateSpec(size=4, max_truths=2, n_popular=1, n_plausible=0).ordered_labels() == [
        TRUTH,
        TRUTH,
        POPULAR,
        RANDOM,
    ]


def test_released_candidate_objects_join_words_and_merge_texts():
    labels = released_labels({"好 看": 2, "好看": 1, "前方 高能": 3, "前方高能": 4}, "f:1")
    assert labels == {"好看": TRUTH, "前方高能": PLAUSIBLE}
    assert released_candidates(labels, "f:1") == [
        Candidate("好看", TRUTH),
        Candidate("前方高能", PLAUSIBLE),
    ]
    for raw, expected in [
        ([], "field 'candidate': expected an object {words: label}"),
        ({}, "field 'candidate': expected an object"),
        ({"a": "1"}, 'field \'candidate["a"]\': expected an integer label, got "1"'),
        ({"a": True}, "field 'candidate[\"a\"]': expected an integer label, got true"),
        ({"a": -1}, "field 'candidate[\"a\"]': expected an integer label, got -1"),
    ]:
        with pytest.raises(DataError) as e:
            released_labels(raw, "f:1")
        assert str(e.value).startswith(f"f:1: {expected}")
    with pytest.raises(DataError, match=r"^f:1: field 'candidate': no ground truth \(label 1\)"):
        released_candidates({"a": POPULAR}, "f:1")


def test_spec_rejects_nonsense():
    with pytest.raises(ValueError):
        CandidateSpec(size=3, max_truths=5)


def _requests() -> list[CandidateRequest]:
    return [
        CandidateRequest(f"v{i % 3}", i, (f"真{i}", f"好{i}"), CONTEXT[: i + 1]) for i in range(6)
    ]


def test_build_all_seeds_each_sample_by_its_key(pool):
    sets = build_all(pool, _requests(), seed=5)
    assert [(s.video, s.t) for s in sets] == [(r.video, r.t) for r in _requests()]
    reordered = as_mapping(build_all(pool, list(reversed(_requests())), seed=5))
    assert as_mapping(sets) == reordered
    assert as_mapping(build_all(pool, _requests(), seed=6)) != reordered


def test_save_load_round_trip(pool, tmp_path):
    sets = build_all(pool, _requests(), seed=1)
    path = tmp_path / "test-candidates.jsonl"
    assert save_candidate_sets(path, sets) == 6
    assert load_candidate_sets(path) == sets
    assert load_candidate_sets(path, size=100) == sets
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"video", "t", "candidates"}
    assert "真0" in path.read_text(encoding="utf-8")  # UTF-8, not escaped


def _record(**change) -> dict:
    cands = [{"text": f"c{i}", "label": 4} for i in range(99)] + [{"text": "t", "label": 1}]
    record = {"video": "v", "t": 3, "candidates": cands}
    record.update(change)
    return record


def _no_truth() -> dict:
    return _record(candidates=[{"text": f"c{i}", "label": 4} for i in range(100)])


def _duplicate_text() -> dict:
    cands = [{"text": "c", "label": 4} for _ in range(99)] + [{"text": "t", "label": 1}]
    return _record(candidates=cands)


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "not JSON"),
        (json.dumps({"video": "v", "t": 1}), '"candidates"'),
        (json.dumps(_record(t="3")), '"t" must be'),
        (json.dumps(_record(video="")), '"video" must be'),
        (json.dumps(_no_truth()), "no ground-truth"),
        (json.dumps(_duplicate_text()), "more than once"),
        (json.dumps(_record(candidates=_record()["candidates"][1:])), "99 candidates"),
        (json.dumps(_record(candidates=[{"text": "t", "label": 5}] * 100)), "label must be"),
        (json.dumps(_record(candidates=[["t", 1]] * 100)), "candidate 0"),
        (json.dumps(_record()), "already at line 1"),
    ],
)
def test_bad_records_name_file_and_line(tmp_path, bad_line, message):
    path = tmp_path / "cands.jsonl"
    path.write_text(json.dumps(_record()) + "\n\n" + bad_line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message) as err:
        load_candidate_sets(path)
    assert str(err.value).startswith(f"{path}:3: ")
