"""Fixtures for the model tests: the default demo corpus, generated once per session."""

from __future__ import annotations

import pytest

from model.data.demo import DemoConfig, ensure_demo
from model.data.movielc import read_movielc


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    return ensure_demo(tmp_path_factory.mktemp("demo") / "corpus", DemoConfig())


@pytest.fixture(scope="session")
def demo(demo_dir):
    return read_movielc(demo_dir)
