"""Fixtures for the model tests: the default demo corpus, generated once per session."""

from __future__ import annotations

import contextlib
import io

import pytest

from common.cli import run
from model.data.demo import DemoConfig, ensure_demo
from model.data.movielc import read_movielc


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    return ensure_demo(tmp_path_factory.mktemp("demo") / "corpus", DemoConfig())


@pytest.fixture(scope="session")
def demo(demo_dir):
    return read_movielc(demo_dir)


METRICS = ("r1", "r5", "r10", "mr", "mrr")


# the train CLI tests: a small demo corpus and a data directory of their own per module
def call(main, argv, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        run(main, argv)
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    mp = pytest.MonkeyPatch()
    mp.setenv("DANMAKU_DATA", str(root / "data"))
    corpus = ensure_demo(root / "corpus", DemoConfig(films=4))
    common = ["--corpus", str(corpus), "--format", "demo", "--embedder", "hashing:32"]
    common += ["--no-progress", "--device", "cpu"]
    yield {"root": root, "corpus": corpus, "common": common}
    mp.undo()


def train_quietly(argv: list[str]) -> str:
    """``model.train`` with ``argv`` in this process, its stdout kept (module-scope fixtures
    have no capsys); it must succeed."""
    from model import train

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit) as exit_:
        run(train.main, argv)
    assert exit_.value.code == 0
    return buf.getvalue()
