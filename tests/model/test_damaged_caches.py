"""Damaged model caches (an encoded split's ``.npz`` or ``.json``, a prepared candidates file
cut inside a UTF-8 character or at a line end) are refused with one line naming the file, and
the builders that own them build them again with a warning."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from model.data.candidates import CandidateSpec, char_tokenize, load_candidate_sets
from model.data.prepare import prepare
from model.data.schema import Comment, Corpus, DataError, Video
from model.encoded_split import Encoded
from model.word_ids import PackedFact

SPEC = CandidateSpec(size=8, max_truths=2, n_popular=2, n_plausible=2)


def small_encoded() -> Encoded:
    z = np.zeros
    return Encoded(
        ["v0", "v1"],
        np.array([3, 9], np.int32),
        z((2, 3, 4), np.float32),
        z((2, 3), bool),
        z((2, 3, 5), np.int32),
        z((2, 6), np.int32),
        z((2, 6), np.int16),
        z((2, 6), np.int8),
        z(2, np.int64),
        z(2, bool),
        np.arange(21, dtype=np.int32).reshape(3, 7),
        np.array([0, 0, 1], np.int32),
        [[PackedFact("阿甘正传", "导演", "泽米吉斯", "阿甘正传导演")], []],
        [["好看"], []],
        10,
        ["泽米吉斯"],
        [["阿甘正传"], []],
        [[], [], []],
    )


@pytest.mark.parametrize("damage", ["npz-truncated", "npz-flipped", "json-cut", "json-records"])
def test_a_damaged_encoded_split_is_refused_naming_the_file(tmp_path, damage):
    path = tmp_path / "test-key.npz"
    small_encoded().save(path)
    back = Encoded.load(path)
    assert back.video == ["v0", "v1"] and np.array_equal(back.targets, small_encoded().targets)
    assert back.facts == small_encoded().facts  # the facts as facts again, not dicts
    meta = path.with_suffix(".json")
    if damage.startswith("npz"):
        data = bytearray(path.read_bytes())
        if damage == "npz-truncated":
            data = data[: len(data) // 2]
        else:
            data[len(data) // 3] ^= 0xFF
        path.write_bytes(bytes(data))
        named = path
    elif damage == "json-cut":
        meta.write_bytes(meta.read_bytes()[:-7])
        named = meta
    else:
        meta.write_text(meta.read_text(encoding="utf-8").replace('"v1"', '"v1", "v2"'))
        named = meta
    with pytest.raises(DataError) as refused:
        Encoded.load(path)
    assert str(refused.value).startswith(f"{named}: damaged encoded split")


def corpus() -> Corpus:
    texts = [f"第{i}条弹幕真好看" for i in range(40)]
    videos = {}
    for i, split in enumerate(("train", "train", "dev", "test")):
        comments = [Comment(float(s), texts[(7 * i + s) % len(texts)]) for s in range(0, 60, 3)]
        videos[f"v{i}"] = Video(f"v{i}", f"电影{i}", 60.0, comments, split=split)
    return Corpus("demo", "mem", videos)


@pytest.mark.parametrize("cut", ["inside-character", "line-end"])
def test_a_cut_candidates_file_is_built_again(tmp_path, caplog, cut):
    c, out = corpus(), tmp_path / "prepared"
    fresh = prepare(c, out, spec=SPEC, tokenizer=char_tokenize, progress=False)
    path = out / "candidates" / "test.jsonl"
    data = path.read_bytes()
    if cut == "inside-character":
        at = data.index("弹".encode()) + 1  # the middle of a 3-byte character
        path.write_bytes(data[:at])
        with pytest.raises(DataError, match=rf"{path}:1: not UTF-8 text"):
            load_candidate_sets(path)
    else:
        at = data.index(b"\n") + 1  # whole lines: only the manifest's size tells
        path.write_bytes(data[:at])
    with caplog.at_level(logging.WARNING):
        again = prepare(c, out, spec=SPEC, tokenizer=char_tokenize, progress=False)
    assert again.candidates == fresh.candidates and path.read_bytes() == data
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(str(path) in w and "building" in w for w in warnings), warnings
