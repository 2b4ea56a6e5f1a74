"""The API over the Neo4j store (a real Bolt server: ArcadeDB, or NEO4J_URI) answers as it
does over the embedded store, both holding the bundled FilmKG sample."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import load_settings
from api.state import build_state
from kg.loader import load
from kg.settings import BUNDLED_FILMKG
from tests.api.conftest import EMBEDDER, api_env
from tests.conftest import _neo4j_store

pytestmark = pytest.mark.neo4j


@pytest.fixture(scope="module")
def neo4j_client(bolt_env, api_data, demo_corpus):
    store = _neo4j_store(bolt_env)  # emptied
    try:
        load(store, "filmkg", BUNDLED_FILMKG, progress=False)
    finally:
        store.close()
    with api_env(api_data, DANMAKU_STORE="neo4j", **bolt_env):
        state = build_state(load_settings(corpus=str(demo_corpus), embedder=EMBEDDER))
    try:
        with TestClient(create_app(state=state)) as c:
            yield c
    finally:
        state.close()


def test_health_names_the_neo4j_store(neo4j_client):
    health = neo4j_client.get("/health").json()
    assert health["store"]["ok"] and "Neo4jStore" in health["store"]["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/entities/阿甘正传",
        "/entities/汤姆·汉克斯",
        "/entities/没有这个实体",
        "/entities/没有这个实体/facts",
    ],
)
def test_same_answers_as_the_embedded_store(neo4j_client, client, path):
    a, b = neo4j_client.get(path), client.get(path)
    assert (a.status_code, a.json()) == (b.status_code, b.json())


def test_same_search_facts_and_neighbours(neo4j_client, client):
    def items(c, path, **params):
        return c.get(path, params=params).json()["items"]

    assert items(neo4j_client, "/entities", prefix="阿") == items(client, "/entities", prefix="阿")
    for path, params in [
        ("/entities/阿甘正传/facts", {"limit": 500}),
        ("/entities/阿甘正传/facts", {"limit": 500, "relation": "主演"}),
        ("/entities/汤姆·汉克斯/neighbors", {"hops": 2, "limit": 500}),
    ]:
        got = items(neo4j_client, path, **params)
        assert got and sorted(map(str, got)) == sorted(map(str, items(client, path, **params)))


def test_same_recall(neo4j_client, client, window_with_facts):
    vid, t, answer = window_with_facts
    got = neo4j_client.get("/recall", params={"video": vid, "t": t}).json()
    assert got["facts"] == answer["facts"]
