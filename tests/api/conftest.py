"""The API on real small data: the bundled FilmKG sample in the default embedded store (loaded
on first start, as on a fresh install), a 4-film demo corpus and the fast hashing embedder.

One state is built per session (``api_state``) and shared by every app the tests make;
environment variables that configure the API are cleared while it is built, so the tests do
not depend on the caller's shell. ``trained_state`` is the same with a checkpoint trained for
one step; ``live_server`` and ``trained_server`` serve them over HTTP in a thread (for the
browser tests' ``browser``); :func:`serve` runs ``python -m api`` as a real server process.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings, load_settings
from api.state import ApiState, build_state
from common.cli import run
from model.data.demo import DemoConfig, ensure_demo
from tests.api.cdp import Browser, find_chromium
from tests.bolt_server import free_port
from tests.conftest import cli_env

EMBEDDER = "hashing:64"
API_ENV = [
    field.validation_alias for field in Settings.model_fields.values() if field.validation_alias
]


@contextmanager
def api_env(data_dir: Path, **env: str) -> Iterator[pytest.MonkeyPatch]:
    """DANMAKU_DATA at ``data_dir``, every other API variable unset except ``env``."""
    with pytest.MonkeyPatch.context() as mp:
        for name in API_ENV:
            mp.delenv(name, raising=False)
        mp.setenv("DANMAKU_DATA", str(data_dir))
        for name, value in env.items():
            mp.setenv(name, value)
        yield mp


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> Path:
    return ensure_demo(tmp_path_factory.mktemp("api-demo"), DemoConfig(films=4))


@pytest.fixture(scope="session")
def api_data(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("api-data")


@pytest.fixture(scope="session")
def api_state(api_data, demo_corpus) -> Iterator[ApiState]:
    with api_env(api_data):
        state = build_state(load_settings(corpus=str(demo_corpus), embedder=EMBEDDER))
    yield state
    state.close()


@pytest.fixture(scope="session")
def trained_state(tmp_path_factory, api_data, demo_corpus) -> Iterator[ApiState]:
    """The API over a checkpoint trained for one step on the same corpus by model.train."""
    from model import train

    out = tmp_path_factory.mktemp("api-ckpt") / "klvcg"
    argv = ["--corpus", str(demo_corpus), "--format", "demo", "--embedder", EMBEDDER]
    argv += ["--out", str(out), "--max-steps", "1", "--batch-size", "4", "--no-progress"]
    argv += ["--dev-samples", "4", "--eval-samples", "4", "--generation-samples", "0"]
    with api_env(api_data), pytest.raises(SystemExit) as done:
        run(train.main, argv)
    assert done.value.code == 0
    with api_env(api_data, DANMAKU_CHECKPOINT=str(out)):
        state = build_state(load_settings(corpus=str(demo_corpus), embedder=EMBEDDER))
    yield state
    state.close()


@pytest.fixture(scope="session")
def client(api_state) -> Iterator[TestClient]:
    with TestClient(create_app(state=api_state)) as c:
        yield c


def client_with(state: ApiState, **settings) -> TestClient:
    """A client of an app over the shared state with other request settings (key, CORS ...)."""
    return TestClient(create_app(state.settings.model_copy(update=settings), state=state))


@pytest.fixture(scope="session")
def live_server(api_state) -> Iterator[str]:
    """The app served by uvicorn on a loopback port (for the browser)."""
    with serve_in_thread(api_state) as base:
        yield base


@pytest.fixture(scope="session")
def trained_server(trained_state) -> Iterator[str]:
    """The app with a model (``trained_state``) served by uvicorn on a loopback port."""
    with serve_in_thread(trained_state) as base:
        yield base


@contextmanager
def serve_in_thread(state: ApiState, **settings) -> Iterator[str]:
    """An app over ``state`` with other request ``settings`` (key, CORS ...) served by uvicorn
    in a thread; yields its base URL."""
    port = free_port()
    app = create_app(state.settings.model_copy(update=settings), state=state)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser(tmp_path_factory) -> Iterator[Browser]:
    """One headless Chromium page for the browser tests."""
    if find_chromium() is None:
        pytest.fail("the browser tests need Debian's chromium: apt-get install chromium")
    with Browser.start(tmp_path_factory.mktemp("chromium")) as b:
        yield b


@pytest.fixture(scope="session")
def window_with_facts(client, api_state) -> tuple[str, int, dict]:
    """A (video, t) with comments at t whose recall has facts and other-video comments, and
    that recall."""
    for video in api_state.context.corpus.split("test"):
        for t in sorted({c.second for c in video.comments if c.second >= 30}):
            found = client.get("/recall", params={"video": video.id, "t": t}).json()
            if found["facts"] and found["comments"]:
                return video.id, t, found
    raise AssertionError("no window of the demo corpus recalls facts")


def server_env(api_data: Path, **extra: str) -> dict:
    """The environment of a ``python -m api`` process: the caller's, less every API variable,
    with DANMAKU_DATA at ``api_data`` and ``extra``."""
    env = {k: v for k, v in cli_env().items() if k not in API_ENV}
    return {**env, "DANMAKU_DATA": str(api_data), **extra}


@contextmanager
def serve(env: dict, log: Path, start_timeout_s: float = 90) -> Iterator[tuple[str, dict]]:
    """``python -m api`` on a free loopback port with ``env``, its output in ``log``: yields
    the base URL and the first ``/health`` answer; stopped with Ctrl-C, which must exit 0."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        health, deadline = None, time.monotonic() + start_timeout_s
        while health is None:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "python -m api did not start"
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    health = json.load(r)
            except OSError:
                time.sleep(0.2)
        yield base, health
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0, log.read_text()
