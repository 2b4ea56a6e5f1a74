"""MovieLC read from its ``processed_data/`` folder (the path KLVCG's own code takes) as well as
from the release directory, and frame features pickled with plain ``pickle`` (loaded from a
trusted location only)."""

from __future__ import annotations

import json
import pickle
import shutil

import numpy as np
import pytest

from model.data.fileio import PickledFeatures
from model.data.livebot import read_livebot
from model.data.movielc import read_movielc, write_movielc
from model.data.schema import Comment, Corpus, DataError, Video
from tests.model.format_data import livebot_dir


def release(root):
    """A MovieLC release: meta.json, comment/, division/, processed_data/ with setup records
    and features pickled by plain ``pickle.dump`` (numpy arrays)."""
    videos = {
        f"m{i}": Video(
            f"m{i}", f"电影{i}", 30.0, [Comment(2.0, "好看"), Comment(5.0, "泪目")], split=s
        )
        for i, s in enumerate(("train", "dev", "test"))
    }
    write_movielc(Corpus("movielc", "", videos), root)
    setup = root / "processed_data" / "setup"
    setup.mkdir()
    test = {"video": "m2", "time": 5, "context": {}, "candidate": {"泪 目": 1, "好 看": 2}}
    train = {"video": "m0", "time": 2, "context": {}, "comment": "好 看"}
    (setup / "train-all.json").write_text(json.dumps(train, ensure_ascii=False), encoding="utf-8")
    (setup / "test-all.json").write_text(json.dumps(test, ensure_ascii=False), encoding="utf-8")
    frames = {
        f"m{i}": {s: np.full(8, i + s, dtype=np.float32) for s in range(30)} for i in range(3)
    }
    with open(root / "processed_data" / "movie101.pkl", "wb") as f:
        pickle.dump(frames, f)
    return root


def summary(corpus: Corpus) -> dict:
    return {
        v.id: (v.title, v.split, v.duration_s, [(c.time_s, c.text) for c in v.comments])
        for v in corpus
    }


def test_the_processed_folder_reads_like_its_release_directory(tmp_path):
    root = release(tmp_path / "movielc")
    whole = read_movielc(root)
    processed = read_movielc(root / "processed_data")
    assert processed.path == str(root)  # meta.json, comment/, division/ found in the parent
    assert summary(processed) == summary(whole)
    assert summary(whole)["m1"] == ("电影1", "dev", 30.0, [(2.0, "好看"), (5.0, "泪目")])
    assert processed.candidates == whole.candidates and ("m2", 5) in whole.candidates
    assert processed.features.get("m2", 3).tolist() == [5.0] * 8  # the plain pickle loads


def test_the_processed_folder_alone_reads_from_its_records(tmp_path):
    root = release(tmp_path / "movielc")
    alone = tmp_path / "copy" / "processed_data"
    shutil.copytree(root / "processed_data", alone)
    corpus = read_movielc(alone)
    assert corpus.path == str(alone)
    assert summary(corpus) == {
        "m0": ("m0", "train", 30.0, [(2.0, "好看")]),
        "m1": ("m1", None, 30.0, []),
        "m2": ("m2", "test", 30.0, [(5.0, "泪目")]),
    }
    assert [(c.text, c.label) for c in corpus.candidates[("m2", 5)]] == [("泪目", 1), ("好看", 2)]
    (alone / "setup" / "train-all.json").unlink()
    (alone / "setup" / "test-all.json").unlink()
    (alone / "setup").rmdir()
    with pytest.raises(DataError, match="neither comment/ nor processed_data/setup"):
        read_movielc(alone)


def test_a_plain_pickle_loads_only_from_a_trusted_location(tmp_path):
    path = release(tmp_path / "movielc") / "processed_data" / "movie101.pkl"
    trusted = PickledFeatures(path, trusted=True)
    assert trusted.dim == 8 and trusted.get("m0", 4).tolist() == [4.0] * 8
    untrusted = PickledFeatures(path, trusted=False)
    with pytest.raises(DataError) as e:
        untrusted.get("m0", 4)
    message = str(e.value)
    assert message.startswith(f"{path}: a plain pickle (pickle.dump), not a torch.save file")
    assert "can run code" in message and "untrusted location" in message
    # LiveBot's res18.pkl holds tensors and is read untrusted: a plain pickle is refused
    livebot = livebot_dir(tmp_path / "lb")
    with open(livebot / "res18.pkl", "wb") as f:
        pickle.dump({1: {0: np.zeros(512, dtype=np.float32)}}, f)
    with pytest.raises(DataError, match=r"res18\.pkl: a plain pickle"):
        read_livebot(livebot).features.get("1", 0)
