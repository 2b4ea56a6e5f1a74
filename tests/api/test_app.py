"""The app as a whole: health, docs, the inspector page, CORS, time limits."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.api.conftest import EMBEDDER, api_env, client_with


def test_health_reports_each_part(client, api_state):
    r = client.get("/health")
    assert r.status_code == 200
    health = r.json()
    assert health["store"]["ok"] and "EmbeddedStore" in health["store"]["detail"]
    assert f"{api_state.store_counts['triples']} triples" in health["store"]["detail"]
    assert api_state.store_counts["triples"] > 3000, "the bundled FilmKG sample was loaded"
    assert health["index"]["ok"] and EMBEDDER in health["index"]["detail"]


def test_the_app_builds_its_state_at_start_up_and_closes_it(api_data, demo_corpus):
    with api_env(api_data, DANMAKU_CORPUS=str(demo_corpus), DANMAKU_EMBEDDER=EMBEDDER):
        app = create_app()
        with TestClient(app) as c:
            assert c.get("/health").json()["store"]["ok"]
            assert c.get("/entities/阿甘正传").status_code == 200
            store = app.state.api.store
    with pytest.raises(sqlite3.ProgrammingError):
        store.stats()


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == {
        "/health",
        "/entities",
        "/entities/{name}",
        "/entities/{name}/facts",
        "/entities/{name}/neighbors",
        "/videos",
        "/videos/{video_id}/keywords",
        "/videos/{video_id}/comments",
        "/recall",
        "/generate",
        "/live/sessions",
        "/live/sessions/{session_id}/messages",
        "/live/sessions/{session_id}/events",
        "/live/sessions/{session_id}",
    }
    assert set(paths["/generate"]["post"]["responses"]) >= {"200", "401", "404", "422", "503"}


def test_inspector_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="video-select"' in page.text and "/static/app.js" in page.text
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "/recall?video=" in js.text
    css = client.get("/static/style.css").text
    assert "Noto Sans CJK SC" in css and "WenQuanYi Micro Hei" in css
    assert client.get("/static/nothing.js").status_code == 404


def test_cors_is_off_by_default_and_on_for_named_origins(client, api_state):
    origin = {"Origin": "http://example.test"}
    assert "access-control-allow-origin" not in client.get("/health", headers=origin).headers
    with client_with(api_state, cors_origins="http://example.test") as c:
        allowed = c.get("/health", headers=origin)
        assert allowed.headers["access-control-allow-origin"] == "http://example.test"
        other = c.get("/health", headers={"Origin": "http://elsewhere.test"})
        assert "access-control-allow-origin" not in other.headers


def test_requests_past_the_time_limit_are_504(api_state, window_with_facts):
    vid, t, _ = window_with_facts
    with client_with(api_state, timeout_s=1e-6) as c:
        r = c.get("/recall", params={"video": vid, "t": t})
        assert r.status_code == 504 and "API_TIMEOUT_S" in r.json()["detail"]
        assert c.get("/entities/阿甘正传/facts").status_code == 504
