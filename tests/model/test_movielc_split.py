"""A MovieLC corpus without a usable split (no ``division/``, an empty one, or one naming
none of its videos) is one error line at read time naming the directory and what is missing,
not an empty split that ``model.train`` trips over later."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from model.data.movielc import read_movielc, write_movielc
from model.data.schema import Comment, Corpus, DataError, Video
from tests.conftest import cli_env


def corpus_dir(tmp_path):
    videos = {
        f"m{i}": Video(f"m{i}", "电影", 30.0, [Comment(2.0, "好看")], split=split)
        for i, split in enumerate(("train", "dev", "test"))
    }
    return write_movielc(Corpus("movielc", "", videos), tmp_path / "mlc")


def test_a_corpus_with_its_division_reads_with_its_split(tmp_path):
    corpus = read_movielc(corpus_dir(tmp_path))
    assert {v.id: v.split for v in corpus} == {"m0": "train", "m1": "dev", "m2": "test"}


def test_a_corpus_without_a_usable_split_is_refused_naming_what_is_missing(tmp_path):
    root = corpus_dir(tmp_path)
    division = root / "division"
    for f in division.iterdir():
        f.write_text(json.dumps({"video": "elsewhere"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="no usable split: division/ names none of its videos"):
        read_movielc(root)
    for f in division.iterdir():
        f.unlink()
    with pytest.raises(DataError, match="division/ has none of train.json, val.json, test.json"):
        read_movielc(root)
    division.rmdir()
    with pytest.raises(DataError) as e:
        read_movielc(root)
    message = str(e.value)
    assert message.startswith(f"{root}: no usable split: division/ is missing")
    assert "add division/" in message and "\n" not in message


@pytest.mark.parametrize("command", ["model.train", "model.data.stats"])
def test_the_commands_print_one_line_and_exit_2(tmp_path, command):
    root = corpus_dir(tmp_path)
    for f in (root / "division").iterdir():
        f.unlink()
    (root / "division").rmdir()
    args = ["--format", "movielc", str(root)] if command == "model.data.stats" else []
    if command == "model.train":
        args = ["--corpus", str(root), "--format", "movielc", "--embedder", "hashing:32"]
        args += ["--no-progress", "--device", "cpu", "--db", str(tmp_path / "kg")]
    res = subprocess.run(
        [sys.executable, "-m", command, *args],
        capture_output=True,
        text=True,
        env=cli_env(DANMAKU_DATA=str(tmp_path / "data")),
        timeout=300,
    )
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    errors = [x for x in res.stderr.splitlines() if x.startswith("error: ")]
    assert len(errors) == 1
    assert errors[0].startswith(f"error: {root}: no usable split: division/ is missing")
