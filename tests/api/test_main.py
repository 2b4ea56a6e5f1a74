"""``python -m api``: starts uvicorn on the given port with settings from the environment;
a bad setting is one line on stderr and exit status 2."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

from tests.api.conftest import API_ENV, EMBEDDER
from tests.bolt_server import free_port
from tests.conftest import cli_env


def env_for(api_data, **extra) -> dict:
    env = {k: v for k, v in cli_env().items() if k not in API_ENV}
    return {**env, "DANMAKU_DATA": str(api_data), **extra}


def test_serves_on_the_given_port(api_data, demo_corpus, api_state):
    port = free_port()
    env = env_for(api_data, DANMAKU_CORPUS=str(demo_corpus), DANMAKU_EMBEDDER=EMBEDDER)
    proc = subprocess.Popen(
        [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health, deadline = None, time.monotonic() + 90
        while health is None:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "python -m api did not start"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    health = json.load(r)
            except OSError:
                time.sleep(0.2)
        assert health["store"]["ok"] and health["index"]["ok"]
        assert f"{api_state.store_counts['triples']} triples" in health["store"]["detail"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/videos?limit=1") as r:
            assert json.load(r)["items"][0]["id"] == min(api_state.context.corpus.videos)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_bad_settings_are_one_line_and_exit_2(api_data, tmp_path):
    for env, args, expected in [
        ({"DANMAKU_STORE": "mongo"}, [], "DANMAKU_STORE"),
        ({}, ["--corpus", str(tmp_path / "missing"), "--format", "movielc"], "missing"),
        ({}, ["--db", str(tmp_path / "nodb")], "nodb"),
    ]:
        res = subprocess.run(
            [sys.executable, "-m", "api", *args],
            env=env_for(api_data, **env),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 2, res.stderr
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and expected in errors[0], res.stderr
        assert "Traceback" not in res.stderr
