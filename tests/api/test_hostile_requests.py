"""Requests a hostile or careless client sends: numbers JSON cannot write, booleans for
numbers, bodies without the key, and bursts of generations that run past the time limit."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from api.deadline import DeadlinePassed, run_until
from tests.api.conftest import EMBEDDER, client_with, serve, server_env

JSON = {"content-type": "application/json"}


def strict_json(text: str) -> object:
    """``text`` parsed as standard JSON: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"the answer holds {constant}, which is not JSON: {text}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    ("body", "field", "echoed"),
    [
        ('{"video": "demo0000", "t": NaN}', "t", "NaN"),
        ('{"video": "demo0000", "t": 1e400}', "t", "Infinity"),
        ('{"video": "demo0000", "t": -1e400}', "t", "-Infinity"),
        ('{"video": "demo0000", "t": 3, "beam": -Infinity}', "beam", "-Infinity"),
        ('{"video": NaN, "t": 3}', "video", "NaN"),
        ('{"video": [Infinity, {"x": NaN}], "t": 3}', "video", ["Infinity", {"x": "NaN"}]),
        ('{"video": "demo0000", "t": 3, "temperature": NaN}', "temperature", "NaN"),
    ],
)
def test_non_finite_numbers_are_422_in_valid_json(client, body, field, echoed):
    r = client.post("/generate", content=body, headers=JSON)
    assert r.status_code == 422, r.text
    errors = strict_json(r.text)["detail"]
    assert [e["loc"][-1] for e in errors] == [field]
    assert errors[0]["input"] == echoed


@pytest.mark.parametrize(
    "url",
    [
        "/recall?video=demo0000&t=nan",
        "/recall?video=demo0000&t=1e400",
        "/videos/demo0000/comments?start=nan",
        "/videos/demo0000/comments?end=inf",
        "/videos/demo0000/comments?start=-1e400",
        "/entities?prefix=a&limit=nan",
    ],
)
def test_non_finite_query_numbers_are_422_in_valid_json(client, url):
    r = client.get(url)
    assert r.status_code == 422, r.text
    assert strict_json(r.text)["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"video": "demo0000", "t": True}, "t"),
        ({"video": "demo0000", "t": False}, "t"),
        ({"video": "demo0000", "t": 30, "beam": True}, "beam"),
        ({"video": "demo0000", "t": "30"}, "t"),
        ({"video": "demo0000", "t": 30.5}, "t"),
    ],
)
def test_booleans_and_strings_are_not_numbers(client, body, field):
    r = client.post("/generate", json=body)
    assert r.status_code == 422, r.text
    assert [e["loc"][-1] for e in r.json()["detail"]] == [field]


def test_an_integral_json_number_is_still_an_integer(client):
    # valid: it gets past validation to the model check (no model here: 503)
    r = client.post("/generate", json={"video": "demo0000", "t": 30.0, "beam": 2.0})
    assert r.status_code == 503, r.text


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"video": "demo0000", "t": NaN}',
        b'{"video": "demo0000", "t": true}',
        b'{"t": 3}',
        b"[]",
        b"",
        b"\xff\xfe",
    ],
)
def test_the_key_is_checked_before_the_body(api_state, body):
    with client_with(api_state, api_key="s3cret") as c:
        r = c.post("/generate", content=body, headers=JSON)
        assert r.status_code == 401, r.text
        assert r.json()["detail"] == "this endpoint needs the API key in the X-API-Key header"
        wrong = c.post("/generate", content=body, headers={**JSON, "X-API-Key": "wrong"})
        assert wrong.status_code == 401
        # with the key, the body is read and refused as before
        keyed = c.post("/generate", content=body, headers={**JSON, "X-API-Key": "s3cret"})
        assert keyed.status_code in (400, 422), keyed.text


def test_a_generation_past_its_deadline_stops_inside_the_model(trained_state):
    """The generator's model checks the request's deadline at each module call: work that
    starts in time but runs past it stops there instead of running on unseen."""
    generator = trained_state.generator
    video = trained_state.context.corpus.videos["demo0000"]
    t = next(c.second for c in video.comments if c.second > 20)
    calls = []

    def late_generation():
        time.sleep(0.3)  # the deadline passes while the work is under way
        calls.append("started")
        return generator.generate(video.id, t, beam=3)

    with pytest.raises(DeadlinePassed):
        run_until(time.monotonic() + 0.1, late_generation)
    assert calls == ["started"]
    # outside a request, and within its deadline, the model works as before
    assert generator.generate(video.id, t, beam=3).comments
    assert run_until(time.monotonic() + 60, lambda: generator.generate(video.id, t, 3)).comments


def _post(url: str, body: bytes) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=JSON, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _get(url: str) -> tuple[int, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    return status, time.monotonic() - started


#: The server's time limit in the burst test. The burst is at least BURST generations and
#: enough of them to take four times the limit one after another (timed on the server first:
#: how fast one is depends on the machine and on API_MODEL_THREADS), so most time out, while a
#: recall takes far less than the limit.
LIMIT_S = 1.0
BURST = 60


def test_a_burst_of_timed_out_generations_does_not_delay_recall(
    trained_state, api_data, demo_corpus, tmp_path
):
    """A real server: BURST generations at once, most past the time limit (504), then /recall
    answers within the limit. Timed-out generations used to run on, one after another, holding
    the lock recall needs, so /recall timed out for seconds after the burst."""
    video = trained_state.context.corpus.videos["demo0000"]
    t = next(c.second for c in video.comments if c.second > 20)
    env = server_env(
        api_data,
        DANMAKU_CORPUS=str(demo_corpus),
        DANMAKU_EMBEDDER=EMBEDDER,
        DANMAKU_CHECKPOINT=str(trained_state.settings.checkpoint),
        API_TIMEOUT_S=str(LIMIT_S),
    )
    log = tmp_path / "api.log"
    with serve(env, log) as (base, health):
        assert health["model"]["ok"], health
        recall_url = f"{base}/recall?video={video.id}&t={t}"
        assert _get(recall_url)[0] == 200
        body = json.dumps({"video": video.id, "t": t, "beam": 10}).encode()
        one = []
        for _ in range(3):
            started = time.monotonic()
            assert _post(f"{base}/generate", body)[0] == 200
            one.append(time.monotonic() - started)
        n = min(400, max(BURST, math.ceil(4 * LIMIT_S / sorted(one)[1])))
        with ThreadPoolExecutor(n) as pool:
            burst = list(pool.map(lambda _: _post(f"{base}/generate", body), range(n)))
        statuses = [status for status, _ in burst]
        assert set(statuses) <= {200, 504} and statuses.count(504) > n // 2, statuses
        status, took = _get(recall_url)
        assert status == 200 and took < LIMIT_S, (status, took)
        # a non-finite number in the body is a 422, on a real server too
        status, text = _post(f"{base}/generate", b'{"video": "demo0000", "t": NaN}')
        assert status == 422 and strict_json(text)
    output = log.read_text()
    assert "Traceback" not in output and "Exception" not in output, output
