"""``POST /generate`` with a (briefly) trained checkpoint, without a model, behind an API key,
and with a broken checkpoint."""

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


def test_generate_answers_comments_and_the_facts_they_copied(trained_state):
    video = trained_state.context.corpus.videos["demo0000"]
    t = next(c.second for c in video.comments if c.second > 20)
    with client_with(trained_state) as c:
        assert c.get("/health").json()["model"]["ok"] is True
        r = c.post("/generate", json={"video": "demo0000", "t": t, "beam": 3})
        assert r.status_code == 200
        body = r.json()
        assert body["video"] == "demo0000" and body["t"] == t
        assert 1 <= len(body["comments"]) <= 3 and all(x["text"] for x in body["comments"])
        weights = [f["weight"] for f in body["facts"]]
        assert weights == sorted(weights, reverse=True)
        # the default model has the copy path: facts are ranked by their copy mass in the best
        # comment, every comment says what of it was copied and from which fact
        assert body["facts_by"] == "copy"
        assert 0 <= sum(weights) <= 1 + 1e-3
        for comment in body["comments"]:
            shares = [w["copied"] for w in comment["words"]]
            assert all(0 <= x <= 1 + 1e-4 for x in shares)
            assert comment["copied"] == pytest.approx(sum(shares) / len(shares), abs=1e-3)
            assert "".join(w["text"] for w in comment["words"]).replace(" ", "") == comment[
                "text"
            ].replace(" ", "")
        best = {f["fact"]: f["mass"] for f in body["comments"][0]["facts"]}
        assert {f["index"]: f["weight"] for f in body["facts"] if f["weight"]} == best
        # the facts are the ones recall gives for the same window, indexed in its order
        recalled = c.get("/recall", params={"video": "demo0000", "t": t}).json()["facts"]
        key = lambda f: (f["head"], f["relation"], f["tail"])  # noqa: E731
        assert {f["index"]: key(f) for f in body["facts"]} == dict(enumerate(map(key, recalled)))
        assert c.post("/generate", json={"video": "nope", "t": 3, "beam": 3}).status_code == 404
        # the edges of the video, as /recall takes them; past its end: 422 on t
        end = int(video.duration_s)
        for edge in (0, end):
            r = c.post("/generate", json={"video": "demo0000", "t": edge, "beam": 2})
            assert r.status_code == 200, (edge, r.text)
        r = c.post("/generate", json={"video": "demo0000", "t": end + 1, "beam": 2})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "t"


def test_a_checkpoint_of_another_backbone_is_served(tmp_path, api_data, demo_corpus):
    """The API takes any backbone's checkpoint: LiveChat's TTE (no facts read: none listed)."""
    from common.cli import run
    from model import train

    out = tmp_path / "tte"
    argv = ["--backbone", "tte", "--corpus", str(demo_corpus), "--format", "demo"]
    argv += ["--embedder", EMBEDDER, "--out", str(out), "--max-steps", "1", "--batch-size", "4"]
    argv += ["--no-progress", "--dev-samples", "4", "--eval-samples", "4"]
    argv += ["--generation-samples", "0"]
    with api_env(api_data), pytest.raises(SystemExit) as done:
        run(train.main, argv)
    assert done.value.code == 0
    with api_env(api_data, DANMAKU_CHECKPOINT=str(out)):
        state = build_state(load_settings(corpus=str(demo_corpus), embedder=EMBEDDER))
    try:
        assert state.model.ok, state.model.detail
        with client_with(state) as c:
            r = c.post("/generate", json=BODY)
            assert r.status_code == 200, r.text
            body = r.json()
            assert 1 <= len(body["comments"]) <= 3 and all(x["text"] for x in body["comments"])
            assert body["facts"] == []
            assert all(x["copied"] is None for x in body["comments"])
    finally:
        state.close()
