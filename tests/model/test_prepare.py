"""Vocabulary and candidate sets are built once, saved with the data, rebuilt on change."""

from __future__ import annotations

import pytest

from model.data.candidates import TRUTH, load_candidate_sets
from model.data.demo import DemoConfig, ensure_demo
from model.data.movielc import read_movielc
from model.data.prepare import VOCAB_FILE, prepare
from model.data.samples import build_samples


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return read_movielc(ensure_demo(tmp_path_factory.mktemp("small"), DemoConfig(films=6)))


def test_prepare_builds_saves_and_reuses(small, tmp_path):
    out = tmp_path / "prep"
    p = prepare(small, out, progress=False)
    samples = list(build_samples(small, "test"))
    sets = p.candidates["test"]
    assert [(s.video, s.t) for s in sets] == [(s.video_id, s.t) for s in samples]
    for s, sample in zip(sets, samples, strict=True):
        assert len(s.candidates) == 100
        truths = {c.text for c in s.candidates if c.label == TRUTH}
        assert truths == set(sample.targets)
    assert load_candidate_sets(out / "candidates" / "test.jsonl") == sets
    assert len(p.vocab) > 100 and (out / VOCAB_FILE).exists()

    stamp = (out / "candidates" / "test.jsonl").stat().st_mtime_ns
    again = prepare(small, out, progress=False)
    assert (out / "candidates" / "test.jsonl").stat().st_mtime_ns == stamp, "reused, not rebuilt"
    assert again.candidates == p.candidates and again.vocab.words == p.vocab.words

    reseeded = prepare(small, out, seed=1, progress=False)
    assert reseeded.candidates["test"] != sets, "another seed rebuilds other sets"
