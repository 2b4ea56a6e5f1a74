"""``POST /generate`` without a model, behind an API key, and with a broken checkpoint.

Generation with a trained checkpoint is tested with the model (tests/model)."""

from __future__ import annotations

import pytest

from api.generation import NOT_CONFIGURED
from api.settings import load_settings
from api.state import build_state
from tests.api.conftest import EMBEDDER, api_env, client_with

BODY = {"video": "demo0000", "t": 30, "beam": 3}


def test_without_a_checkpoint_generate_is_503_and_health_says_why(client):
    r = client.post("/generate", json=BODY)
    assert r.status_code == 503
    assert r.json()["detail"] == f"no model to generate with: {NOT_CONFIGURED}"
    health = client.get("/health").json()
    assert health["model"] == {"ok": False, "detail": NOT_CONFIGURED}
    assert health["status"] == "degraded"


def test_api_key_guards_generate(api_state):
    with client_with(api_state, api_key="s3cret") as c:
        missing = c.post("/generate", json=BODY)
        assert missing.status_code == 401 and "X-API-Key" in missing.json()["detail"]
        assert c.post("/generate", json=BODY, headers={"X-API-Key": "wrong"}).status_code == 401
        # the right key gets through to the model check
        assert c.post("/generate", json=BODY, headers={"X-API-Key": "s3cret"}).status_code == 503
        # reading stays open
        assert c.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BODY, "beam": 0}, "beam"),
        ({**BODY, "beam": 11}, "beam"),
        ({**BODY, "t": -1}, "t"),
        ({"video": "demo0000"}, "t"),
        ({**BODY, "video": ""}, "video"),
        ({**BODY, "temperature": 2}, "temperature"),
    ],
)
def test_bad_bodies_are_422(client, body, field):
    r = client.post("/generate", json=body)
    assert r.status_code == 422
    assert [e["loc"][-1] for e in r.json()["detail"]] == [field]


def test_body_size_is_limited(client, api_state):
    big = {**BODY, "video": "x" * (api_state.settings.max_body_bytes + 1)}
    assert client.post("/generate", json=big).status_code == 413
    assert (
        client.post(
            "/generate", content=b"{", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )


def test_a_broken_checkpoint_does_not_stop_the_api(tmp_path, api_data, demo_corpus):
    broken = tmp_path / "ckpt"
    broken.mkdir()
    (broken / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with api_env(api_data, DANMAKU_CHECKPOINT=str(broken)):
        state = build_state(load_settings(corpus=str(demo_corpus), embedder=EMBEDDER))
    try:
        assert state.generator is None and not state.model.ok
        assert str(broken) in state.model.detail
        with client_with(state) as c:
            r = c.post("/generate", json=BODY)
            assert r.status_code == 503 and str(broken) in r.json()["detail"]
            assert c.get("/health").json()["model"]["ok"] is False
    finally:
        state.close()
