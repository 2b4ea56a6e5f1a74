"""The demo corpus: size, determinism, structure, knowledge flags, MovieLC round trip."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from kg.settings import BUNDLED_FILMKG
from kg.sources import read_filmkg
from kg.triples import Triple, bare_name
from model.data.demo import DemoConfig, ensure_demo, generate
from model.data.demo_text import PERSON_FACTS, PRONOUN
from model.data.movielc import read_movielc, write_movielc


def test_default_demo_meets_the_issue_sizes(demo):
    assert len(demo.videos) >= 40
    assert all(v.duration_s >= 600 for v in demo)
    assert demo.n_comments >= 20_000
    assert {v.split for v in demo} == {"train", "dev", "test"}
    for v in demo:
        assert v.comments == sorted(v.comments, key=lambda c: c.time_s)
        assert all(0 <= c.time_s < v.duration_s for c in v.comments)
        assert v.subtitles and v.transcript
        assert all(c.likes is not None and c.likes >= 0 for c in v.comments)


def _kg_tails_and_people():
    facts = [t for t in read_filmkg(BUNDLED_FILMKG) if isinstance(t, Triple)]
    tails = {t.tail for t in facts}
    people = {bare_name(t.head) or t.head for t in facts if t.relation in PERSON_FACTS}
    return tails, people


def test_knowledge_comments_state_real_facts_of_entities_named_nearby(demo):
    tails, people = _kg_tails_and_people()
    knowledge = [(v, c) for v in demo for c in v.comments if c.knowledge]
    assert 0.05 < len(knowledge) / demo.n_comments < 0.4
    # each states a value that occurs in the KG (possibly as the first item of a list)
    stated = sum(any(value in c.text for value in tails if len(value) >= 2) for _, c in knowledge)
    assert stated / len(knowledge) > 0.95
    # "ta ...": the person was named in [t-5, t); a named person: earlier in the same video
    ta = [(v, c) for v, c in knowledge if c.text.startswith(PRONOUN)]
    assert 0.3 < len(ta) / len(knowledge) < 0.6
    for v, c in ta[:500]:
        before = " ".join(x.text for x in v.comments_between(c.time_s - 5, c.time_s))
        assert any(name in before for name in people), (v.id, c)
    named = [(v, c) for v, c in knowledge if any(c.text.startswith(p) for p in people)]
    assert len(named) > 0.1 * len(knowledge)
    for v, c in named[:500]:
        name = next(p for p in people if c.text.startswith(p))
        earlier = " ".join(x.text for x in v.comments_between(0, c.time_s + 1) if x != c)
        assert name in earlier, (v.id, c)


def test_held_out_films_state_what_training_films_state(demo):
    """Dev/test films are the ones whose knowledge values the training films also state, so a
    training vocabulary can write their knowledge comments."""
    tails, _ = _kg_tails_and_people()
    train_text = " ".join(c.text for v in demo.split("train") for c in v.comments)
    # the test films are held out first; a random split of the default corpus: 0.31 dev, 0.18 test
    for split, least in (("dev", 0.4), ("test", 0.8)):
        values = [
            max((t for t in tails if len(t) >= 2 and t in c.text), key=len)
            for v in demo.split(split)
            for c in v.comments
            if c.knowledge and any(len(t) >= 2 and t in c.text for t in tails)
        ]
        assert sum(value in train_text for value in values) / len(values) > least, split


def test_generation_is_deterministic_and_seeded():
    small = DemoConfig(films=4, seed=3)
    a, fa = generate(small)
    b, fb = generate(small)
    assert [c for v in a for c in v.comments] == [c for v in b for c in v.comments]
    assert all(np.array_equal(fa[k][s], fb[k][s]) for k in fa for s in fa[k])
    c, _ = generate(DemoConfig(films=4, seed=4))
    assert [x.text for v in a for x in v.comments] != [x.text for v in c for x in v.comments]


def test_features_have_scene_structure():
    corpus, feats = generate(DemoConfig(films=2, seed=1))
    video = next(iter(corpus))
    f = np.stack([feats[video.id][s] for s in range(int(video.duration_s))])
    assert f.shape == (int(video.duration_s), 128) and f.dtype == np.float32
    step = np.linalg.norm(np.diff(f, axis=0), axis=1)
    # within a scene consecutive seconds are close; scene cuts are big jumps
    assert np.median(step) * 3 < np.percentile(step, 99)


def test_movielc_round_trip(tmp_path):
    corpus, feats = generate(DemoConfig(films=3, seed=2))
    back = read_movielc(write_movielc(corpus, tmp_path / "m", feats))
    assert list(back.videos) == list(corpus.videos)
    for vid, v in corpus.videos.items():
        w = back.videos[vid]
        assert (w.title, w.duration_s, w.split) == (v.title, v.duration_s, v.split)
        assert w.comments == v.comments and w.subtitles == v.subtitles
        assert w.transcript == v.transcript
        assert np.array_equal(back.features.get(vid, 7), feats[vid][7])
    assert back.features.get("demo0000", 10**6) is None


def test_ensure_demo_reuses_and_rebuilds(tmp_path):
    out = tmp_path / "d"
    cfg = DemoConfig(films=2, seed=5)
    ensure_demo(out, cfg)
    stamp = (out / "meta.json").stat().st_mtime_ns
    ensure_demo(out, cfg)
    assert (out / "meta.json").stat().st_mtime_ns == stamp, "same settings: not regenerated"
    ensure_demo(out, DemoConfig(films=3, seed=5))
    assert len(json.loads((out / "meta.json").read_text(encoding="utf-8"))) == 3


def test_demo_cli_json(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "model.data.demo",
            "--out",
            str(tmp_path / "d"),
            "--films",
            "3",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["videos"] == 3
    assert summary["comments"] > summary["knowledge_comments"] > 0


def test_movielc_bad_input_names_file_and_field(tmp_path):
    import pytest

    from model.data.schema import DataError

    corpus, _ = generate(DemoConfig(films=2, seed=2))
    root = write_movielc(corpus, tmp_path / "m")
    vid = next(iter(corpus.videos))
    with pytest.raises(DataError, match="no such directory"):
        read_movielc(tmp_path / "nope")
    (root / "comment" / f"{vid}.json").write_text('{"12": ["ok"]}', encoding="utf-8")
    with pytest.raises(DataError, match=rf"comment_meta/{vid}.json: second 12: \d+ entries for 1"):
        read_movielc(root)
    (root / "extras" / "comment_meta" / f"{vid}.json").unlink()  # real MovieLC has no extras
    assert [c.text for c in read_movielc(root).videos[vid].comments] == ["ok"]
    (root / "comment" / f"{vid}.json").write_text('{"12": ["ok"], "x": ["bad"]}', encoding="utf-8")
    with pytest.raises(DataError, match=rf"{vid}.json: key 'x': expected a second"):
        read_movielc(root)
    (root / "comment" / f"{vid}.json").write_text('{"12": ["ok"],', encoding="utf-8")
    with pytest.raises(DataError, match=rf"{vid}.json:1: invalid JSON"):
        read_movielc(root)
    (root / "division" / "test.json").write_text('{"video": "a"}\n[1, 2\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"test.json:2: invalid JSON"):
        read_movielc(root)
    (root / "meta.json").unlink()
    with pytest.raises(DataError, match=r"meta.json: missing"):
        read_movielc(root)


def test_movielc_processed_records_only(tmp_path):
    """A MovieLC copy with only processed_data/: comments and candidates from records, kg
    checked."""
    import pytest

    from model.data.schema import DataError

    root = tmp_path / "movielc"
    setup = root / "processed_data" / "setup_knowledge_enhanced"
    setup.mkdir(parents=True)
    (root / "processed_data" / "vid_duration.json").write_text('{"No0001": 120}')
    train = [
        {
            "video": "No0001",
            "time": 7,
            "context": {"6": "好 看"},
            "comment": "前方 高能",
            "kg": "阿甘正传 导演 罗伯特·泽米吉斯",
        },
        {"video": "No0001", "time": 9, "context": {}, "comment": "泪目"},
    ]
    (setup / "train-all.json").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in train), encoding="utf-8"
    )
    test = {"video": "No0001", "time": 30, "context": {}, "candidate": {"好 看": 1, "泪目": 2}}
    (setup / "test-all.json").write_text(json.dumps(test, ensure_ascii=False), encoding="utf-8")
    corpus = read_movielc(root)
    video = corpus.videos["No0001"]
    assert [(c.time_s, c.text) for c in video.comments] == [
        (7.0, "前方高能"),
        (9.0, "泪目"),
        (30.0, "好看"),
    ]
    assert video.split == "train"
    assert [(c.text, c.label) for c in corpus.candidates[("No0001", 30)]] == [
        ("好看", 1),
        ("泪目", 2),
    ]
    test["candidate"] = {"好 看": 2}
    (setup / "test-all.json").write_text(json.dumps(test, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataError, match=r"test-all.json:1: field 'candidate': no ground truth"):
        read_movielc(root)
    test.update(candidate={"好 看": 1}, kg=["阿甘正传"])
    (setup / "test-all.json").write_text(json.dumps(test, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataError, match=r"test-all.json:1: field 'kg': expected a string"):
        read_movielc(root)
