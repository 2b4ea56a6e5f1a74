"""Live sessions (``/live``): the WebSocket and the Server-Sent-Events fallback over the
checkpoint trained for one step (``trained_state``), and what bad clients get: malformed
and oversized messages, floods, seeks, a client that never reads, one that leaves
mid-generation, a missing key or model. The policy's arithmetic is tested on the engine
(tests/model/test_live_session.py); here, that the knobs reach it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import anyio
import pytest
import uvicorn
from starlette.websockets import WebSocketDisconnect

from api import live
from api.app import create_app
from api.live import MAX_ERRORS, MAX_MESSAGE_BYTES, OUTBOX, LiveRunner
from model.live_session import COMMENT_BURST
from tests.api.conftest import client_with
from tests.bolt_server import free_port

#: A policy that lets every generation out, so a test waiting for a comment gets one.
OPEN = {"no_repeat": False, "min_gap_s": 0, "max_per_minute": 600}
COMMENT_FIELDS = {"type", "seq", "t", "text", "score", "copied", "facts", "trigger", "latency_ms"}


def until(ws, kind: str, most: int = 500) -> dict:
    """The next message of type ``kind`` (others skipped)."""
    for _ in range(most):
        message = ws.receive_json()
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} message in {most}")


def start(ws, **fields) -> dict:
    ws.send_json({"type": "start", **fields})
    return ws.receive_json()


def stats_when(ws, ready, tries: int = 200) -> dict:
    """Stats once ``ready(stats)`` holds (generations finish in their own time)."""
    for _ in range(tries):
        ws.send_json({"type": "stats"})
        stats = until(ws, "stats")
        if ready(stats):
            return stats
        time.sleep(0.02)
    raise AssertionError(f"stats never ready: {stats}")


def closed_with(ws) -> int:
    with pytest.raises(WebSocketDisconnect) as e:
        until(ws, "never")
    return e.value.code


def play(ws, video, comments: int, first: int = 0) -> None:
    for c in video.comments[first : first + comments]:
        ws.send_json({"type": "position", "t": c.time_s})
        ws.send_json({"type": "comment", "text": c.text, "t": c.time_s})


@pytest.fixture(scope="module")
def app_client(trained_state):
    with client_with(trained_state) as c:
        yield c


@pytest.fixture
def demo0000(trained_state):
    return trained_state.context.corpus.videos["demo0000"]


def test_a_corpus_video_session_gets_comments_with_facts_score_and_latency(app_client, demo0000):
    with app_client.websocket_connect("/live") as ws:
        hello = start(ws, video="demo0000", policy=OPEN)
        assert hello["type"] == "session" and hello["video"] == "demo0000"
        assert hello["title"] == demo0000.title and hello["duration_s"] == demo0000.duration_s
        assert hello["policy"] == {
            "max_per_minute": 600,
            "min_gap_s": 0.0,
            "min_score": None,
            "quiet_after_seek_s": 3.0,
            "no_repeat": False,
            "beam": 5,
        }
        play(ws, demo0000, 20)
        comment = until(ws, "comment")
        assert set(comment) == COMMENT_FIELDS
        assert comment["seq"] == 1 and comment["trigger"] == "comment" and comment["text"]
        assert isinstance(comment["score"], float) and 0 <= comment["copied"] <= 1
        assert 0 < comment["latency_ms"] < 10_000
        assert 0 < comment["t"] <= int(demo0000.comments[19].time_s) + 1
        assert comment["facts"], "the copy path names the facts it copied from"
        masses = [f["mass"] for f in comment["facts"]]
        assert masses == sorted(masses, reverse=True) and len(masses) <= 5
        assert all(set(f) == {"head", "relation", "tail", "mass"} for f in comment["facts"])
        ws.send_json({"type": "stop"})
        final = until(ws, "stats")
        assert final["received"] == 20 and final["emitted"] >= 1 and final["errors"] == 0
        assert closed_with(ws) == 1000


def test_an_ad_hoc_video_by_title(app_client):
    with app_client.websocket_connect("/live") as ws:
        hello = start(ws, title="阿甘正传", duration_s=600, policy=OPEN)
        assert (hello["video"], hello["title"], hello["duration_s"]) == (
            "阿甘正传",
            "阿甘正传",
            600.0,
        )
        ws.send_json({"type": "frames", "t": 10, "features": [0.1] * hello["frame_dim"]})
        ws.send_json({"type": "position", "t": 10})
        ws.send_json({"type": "comment", "text": "阿甘跑得真快"})
        comment = until(ws, "comment")
        assert comment["t"] == 11
        assert any("阿甘正传" in f["head"] for f in comment["facts"])
        ws.send_json({"type": "frames", "t": 10, "features": [0.1] * 3})
        error = until(ws, "error")
        assert error["code"] == "bad_frames" and str(hello["frame_dim"]) in error["detail"]
        ws.send_json({"type": "position", "t": 601})
        assert until(ws, "error")["code"] == "bad_message"


def test_policy_knobs_reach_the_session(app_client):
    with app_client.websocket_connect("/live") as ws:
        start(ws, video="demo0000", policy={**OPEN, "max_per_minute": 1})
        ws.send_json({"type": "position", "t": 100})
        ws.send_json({"type": "comment", "text": "第一条"})
        assert until(ws, "comment")["t"] == 101
        for t in range(101, 106):  # the same minute: held back by the rate
            ws.send_json({"type": "position", "t": t})
            ws.send_json({"type": "comment", "text": f"第{t}秒"})
        stats = stats_when(ws, lambda s: s["received"] == 6)
        assert stats["dropped"]["rate"] == 5 and stats["emitted"] == 1
        # a threshold no beam reaches: generated, not emitted
        ws.send_json({"type": "policy", "max_per_minute": 600, "min_score": 0.0})
        assert until(ws, "policy")["policy"]["min_score"] == 0.0
        ws.send_json({"type": "comment", "text": "再来"})
        stats_when(ws, lambda s: s["dropped"].get("score", 0) == 1)
        ws.send_json({"type": "policy", "min_score": None, "beam": 11})  # all or none
        assert until(ws, "error")["code"] == "bad_policy"
        # a seek back: the quiet period holds the next trigger back
        ws.send_json({"type": "position", "t": 50})
        ws.send_json({"type": "comment", "text": "倒回来了"})
        stats = stats_when(ws, lambda s: s["seeks"] == 1)
        assert stats["dropped"]["quiet"] == 1 and stats["emitted"] == 1


def test_out_of_order_positions_and_seeks_backwards(app_client):
    with app_client.websocket_connect("/live") as ws:
        start(ws, video="demo0000", policy={"max_per_minute": 0})
        for t, text in ((40, "早"), (45, "中"), (50, "晚")):
            ws.send_json({"type": "position", "t": t})
            ws.send_json({"type": "comment", "text": text})
        ws.send_json({"type": "position", "t": 49.5})  # jitter
        stats = stats_when(ws, lambda s: True)
        assert (stats["position"], stats["seeks"], stats["window_comments"]) == (50, 0, 3)
        ws.send_json({"type": "position", "t": 44})  # back: a seek
        stats = stats_when(ws, lambda s: True)
        assert (stats["position"], stats["seeks"], stats["window_comments"]) == (44, 1, 1)
        assert stats["dropped"]["seek"] == 2


def test_malformed_json_is_an_error_and_the_session_goes_on(app_client):
    with app_client.websocket_connect("/live") as ws:
        start(ws, video="demo0000")
        ws.send_text("{oops")
        ws.send_text('{"type": "position", "t": NaN}')
        ws.send_bytes(b"\xff\xfe")
        ws.send_text("[" * 5000 + "]" * 5000)
        ws.send_json({"type": "position", "t": 3, "postion": 4})
        codes = [until(ws, "error")["code"] for _ in range(5)]
        assert codes == ["bad_json"] * 4 + ["bad_message"]
        stats = stats_when(ws, lambda s: True)
        assert stats["errors"] == 5 and stats["position"] == 0


def test_too_many_bad_messages_close_1008(app_client):
    with app_client.websocket_connect("/live") as ws:
        start(ws, video="demo0000")
        for _ in range(MAX_ERRORS):
            ws.send_text("not json")
        errors = [until(ws, "error") for _ in range(MAX_ERRORS)]
        assert {e["code"] for e in errors} == {"bad_json"}
        assert closed_with(ws) == 1008


def test_an_oversized_message_closes_1009(app_client):
    with app_client.websocket_connect("/live") as ws:
        start(ws, video="demo0000")
        ws.send_text(json.dumps({"type": "comment", "text": "长" * MAX_MESSAGE_BYTES}))
        error = until(ws, "error")
        assert error["code"] == "too_big" and str(MAX_MESSAGE_BYTES) in error["detail"]
        assert closed_with(ws) == 1009


def test_a_flood_of_comments_is_rate_limited_and_counted(app_client):
    with app_client.websocket_connect("/live") as ws:
        start(ws, video="demo0000", policy={"max_per_minute": 0})
        began = time.monotonic()
        for i in range(3 * COMMENT_BURST):
            ws.send_json({"type": "comment", "text": f"刷屏{i}"})
        ws.send_json({"type": "stop"})
        notices = []
        while (message := ws.receive_json())["type"] != "stats":
            notices.append(message)
        seconds = time.monotonic() - began
        flooded = message["dropped"]["flood"]
        assert message["received"] == 3 * COMMENT_BURST
        assert flooded >= 2 * COMMENT_BURST - 50 * (seconds + 1)
        assert message["window_comments"] == 3 * COMMENT_BURST - flooded
        assert 1 <= len(notices) <= seconds + 1
        assert {n["code"] for n in notices} == {"flood"}


def test_the_api_key_is_checked_first(trained_state):
    with client_with(trained_state, api_key="s3cret") as c:
        for url, headers in (("/live", {}), ("/live?key=wrong", {})):
            with c.websocket_connect(url, headers=headers) as ws:
                assert closed_with(ws) == 4401
        with c.websocket_connect("/live?key=s3cret") as ws:
            assert start(ws, video="demo0000")["type"] == "session"
        with c.websocket_connect("/live", headers={"X-API-Key": "s3cret"}) as ws:
            assert start(ws, video="demo0000")["type"] == "session"
        assert (
            c.post("/live/sessions", json={"type": "start", "video": "demo0000"}).status_code == 401
        )
        opened = c.post("/live/sessions?key=s3cret", json={"type": "start", "video": "demo0000"})
        assert opened.status_code == 200
        sid = opened.json()["session"]
        assert c.delete(f"/live/sessions/{sid}").status_code == 401
        assert c.delete(f"/live/sessions/{sid}", headers={"X-API-Key": "s3cret"}).status_code == 200


def test_without_a_model_the_session_closes_4503(client):
    with client.websocket_connect("/live") as ws:
        error = ws.receive_json()
        assert error["type"] == "error" and error["code"] == "no_model"
        assert closed_with(ws) == 4503
    r = client.post("/live/sessions", json={"type": "start", "video": "demo0000"})
    assert r.status_code == 503 and r.json()["code"] == "no_model"


def test_a_bad_start_then_an_unknown_video_closes_4404(app_client):
    with app_client.websocket_connect("/live") as ws:
        ws.send_json({"type": "position", "t": 3})
        assert "start" in until(ws, "error")["detail"]
        assert start(ws, video="demo0000", policy={"beam": 0})["code"] == "bad_policy"
        error = start(ws, video="nope")
        assert error["code"] == "unknown_video" and "'nope'" in error["detail"]
        assert closed_with(ws) == 4404


def test_sessions_are_counted_and_a_silent_connection_is_closed(trained_state, monkeypatch):
    from api import live_transport

    monkeypatch.setattr(live_transport, "START_WAIT_S", 0.2)
    with client_with(trained_state, live_max_sessions=1) as c:
        with c.websocket_connect("/live") as first:
            assert start(first, video="demo0000")["type"] == "session"
            with c.websocket_connect("/live") as second:
                assert start(second, video="demo0000")["code"] == "busy"
                assert closed_with(second) == 1013
            opened = c.post("/live/sessions", json={"type": "start", "video": "demo0000"})
            assert opened.status_code == 503 and opened.json()["code"] == "busy"
        with c.websocket_connect("/live") as silent:
            assert until(silent, "error")["detail"] == "no start message came"
            assert closed_with(silent) == 1008


def test_a_disconnect_mid_generation_frees_the_session(app_client, demo0000):
    sessions = app_client.app.state.live.runners
    with app_client.websocket_connect("/live") as ws:
        start(ws, video="demo0000", policy=OPEN)
        play(ws, demo0000, 30)  # and leave while they are being answered
    deadline = time.monotonic() + 5
    while sessions and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not sessions
    with app_client.websocket_connect("/live") as ws:
        start(ws, video="demo0000", policy=OPEN)
        play(ws, demo0000, 1)
        assert until(ws, "comment")["seq"] == 1


def test_two_sessions_do_not_affect_each_other(app_client, demo0000):
    with (
        app_client.websocket_connect("/live") as bad,
        app_client.websocket_connect("/live") as good,
    ):
        start(bad, video="demo0000")
        start(good, title="阿甘正传", policy=OPEN)
        for _ in range(MAX_ERRORS):
            bad.send_text("{")
        play(good, demo0000, 3)
        assert closed_with(bad) == 1008
        assert until(good, "comment")["seq"] == 1
        stats = stats_when(good, lambda s: s["received"] == 3)
        assert stats["errors"] == 0 and "flood" not in stats["dropped"]


def test_a_client_that_never_reads_is_bounded_then_closed(trained_state, monkeypatch):
    """The runner's queue keeps the newest messages, losing bot comments first, and a
    client whose queue stays full is closed 1008."""
    from model.live_messages import Start
    from model.live_session import LiveSession

    monkeypatch.setattr(live, "SLOW_CLIENT_S", 0.2)
    monkeypatch.setattr(live, "WATCH_EVERY_S", 0.05)

    async def never_read() -> LiveRunner:
        session = LiveSession.start("s", trained_state.generator, Start("demo0000", None, None, {}))
        runner = LiveRunner(session, trained_state, trained_state.settings)
        runner.put({"type": "stats"})
        for seq in range(1, 3 * OUTBOX + 1):
            runner.put({"type": "comment", "seq": seq}, time.monotonic())
        with anyio.fail_after(5):
            await runner.watch()
        return runner

    runner = anyio.run(never_read)
    assert len(runner.outbox) == OUTBOX
    assert runner.outbox[0][0]["type"] == "stats"  # kept: comments go first
    assert [m["seq"] for m, _ in list(runner.outbox)[1:]] == list(
        range(2 * OUTBOX + 2, 3 * OUTBOX + 1)
    )
    assert runner.session.dropped["queue"] == 2 * OUTBOX + 1
    assert runner.closing.code == 1008 and "does not read" in runner.closing.reason


# -- Server-Sent Events ---------------------------------------------------------------------
def events(c, sid: str, kinds: set[str], most_s: float = 10) -> list[dict]:
    """The session's events until one of ``kinds`` (keepalives keep the read from hanging)."""
    got, deadline = [], time.monotonic() + most_s
    with c.stream("GET", f"/live/sessions/{sid}/events") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                got.append(json.loads(line[len("data: ") :]))
                if got[-1]["type"] in kinds:
                    return got
            assert time.monotonic() < deadline, f"no {kinds} event: {got}"
    return got


def test_sse_round_trip(app_client, demo0000):
    sessions = app_client.app.state.live
    sessions.keepalive_s = 0.1
    r = app_client.post(
        "/live/sessions", json={"type": "start", "video": "demo0000", "policy": OPEN}
    )
    assert r.status_code == 200
    hello = r.json()
    assert hello["type"] == "session" and hello["video"] == "demo0000"
    sid = hello["session"]
    url = f"/live/sessions/{sid}/messages"
    batch = []
    for c in demo0000.comments[:5]:
        batch += [{"type": "position", "t": c.time_s}, {"type": "comment", "text": c.text}]
    assert app_client.post(url, json=batch).json() == {"accepted": 10}
    comment = events(app_client, sid, {"comment"})[-1]
    assert set(comment) == COMMENT_FIELDS and comment["seq"] == 1
    assert app_client.post(url, json={"type": "stats"}).json() == {"accepted": 1}
    assert events(app_client, sid, {"stats"})[-1]["received"] == 5
    # a reader attached when the session ends gets its final stats and how it ended
    read: list[dict] = []
    reader = threading.Thread(target=lambda: read.extend(events(app_client, sid, {"closed"})))
    reader.start()
    deadline = time.monotonic() + 5
    while not sessions.runners[sid].reading:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert app_client.get(f"/live/sessions/{sid}/events").status_code == 409  # one reader
    final = app_client.delete(f"/live/sessions/{sid}").json()
    reader.join(timeout=10)
    assert final["type"] == "stats" and final["received"] == 5
    assert read[-2] == final and read[-1] == {"type": "closed", "code": 1000, "reason": "stopped"}
    assert app_client.post(url, json={"type": "stats"}).status_code == 404
    assert app_client.get(f"/live/sessions/{sid}/events").status_code == 404


def test_sse_bad_messages_are_4xx_and_counted(app_client):
    r = app_client.post("/live/sessions", json={"type": "start", "video": "nope"})
    assert r.status_code == 404 and r.json()["code"] == "unknown_video"
    r = app_client.post(
        "/live/sessions", content=b"{", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["code"] == "bad_json"
    sid = app_client.post("/live/sessions", json={"type": "start", "video": "demo0000"}).json()[
        "session"
    ]
    url = f"/live/sessions/{sid}/messages"
    r = app_client.post(url, json=[{"type": "position", "t": 5}, {"type": "position", "t": "x"}])
    assert r.status_code == 422
    assert r.json() == {
        "detail": "message 1: t must be a number, not str",
        "code": "bad_message",
        "accepted": 1,
    }
    # bodies above the API's 16 KiB are fine up to 64 KiB (frame features are long)
    assert app_client.post(url, json=[{"type": "comment", "text": "好" * 100}] * 50).json() == {
        "accepted": 50
    }
    big = [{"type": "comment", "text": "长" * 400}] * 100
    assert app_client.post(url, json=big).status_code == 413
    for _ in range(MAX_ERRORS - 1):
        app_client.post(url, content=b"nope")
    assert app_client.post(url, json={"type": "stats"}).status_code == 404  # closed: 1008


def test_an_sse_session_that_nobody_reads_is_bounded_and_then_freed(app_client):
    sessions = app_client.app.state.live
    sid = app_client.post("/live/sessions", json={"type": "start", "video": "demo0000"}).json()[
        "session"
    ]
    url = f"/live/sessions/{sid}/messages"
    for _ in range(3):
        assert app_client.post(url, json=[{"type": "stats"}] * OUTBOX).status_code == 200
    runner = sessions.runners[sid]
    assert len(runner.outbox) == OUTBOX and runner.session.dropped["queue"] == 2 * OUTBOX
    sessions.idle_s = 0.2
    try:
        deadline = time.monotonic() + 5
        while sid in sessions.runners and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sid not in sessions.runners
    finally:
        sessions.idle_s = 60.0
    assert app_client.post(url, json={"type": "stats"}).status_code == 404


# -- a real server ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def served(trained_state) -> Iterator[str]:
    """The app with an API key, served by uvicorn on a loopback port."""
    settings = trained_state.settings.model_copy(update={"api_key": "k"})
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, state=trained_state),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"ws://127.0.0.1:{port}/live"
    server.should_exit = True
    thread.join(timeout=10)


def test_over_a_real_websocket(served, demo0000):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(served + "?key=wrong") as ws, pytest.raises(ConnectionClosed) as e:
        ws.recv(timeout=5)
    assert e.value.rcvd.code == 4401
    with connect(served, additional_headers={"X-API-Key": "k"}) as ws:
        ws.send(json.dumps({"type": "start", "video": "demo0000", "policy": OPEN}))
        assert json.loads(ws.recv(timeout=5))["type"] == "session"
        for c in demo0000.comments[:3]:
            ws.send(json.dumps({"type": "comment", "text": c.text, "t": c.time_s}))
        while (message := json.loads(ws.recv(timeout=10)))["type"] != "comment":
            pass
        assert message["latency_ms"] > 0
        ws.send(json.dumps({"type": "stop"}))
        with pytest.raises(ConnectionClosed) as e:
            while True:
                ws.recv(timeout=5)
        assert e.value.rcvd.code == 1000
