"""``python -m api``: starts uvicorn on the given port with settings from the environment;
a bad setting is one line on stderr and exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

from tests.api.conftest import EMBEDDER, serve, server_env


def test_serves_on_the_given_port(api_data, demo_corpus, api_state, tmp_path):
    env = server_env(api_data, DANMAKU_CORPUS=str(demo_corpus), DANMAKU_EMBEDDER=EMBEDDER)
    with serve(env, tmp_path / "api.log") as (base, health):
        assert health["store"]["ok"] and health["index"]["ok"]
        assert f"{api_state.store_counts['triples']} triples" in health["store"]["detail"]
        with urllib.request.urlopen(f"{base}/videos?limit=1") as r:
            assert json.load(r)["items"][0]["id"] == min(api_state.context.corpus.videos)


def test_bad_settings_are_one_line_and_exit_2(api_data, tmp_path):
    for env, args, expected in [
        ({"DANMAKU_STORE": "mongo"}, [], "DANMAKU_STORE"),
        ({}, ["--corpus", str(tmp_path / "missing"), "--format", "movielc"], "missing"),
        ({}, ["--db", str(tmp_path / "nodb")], "nodb"),
        # an empty key would leave POST /generate open: refused, not read as "no key"
        ({"API_KEY": ""}, [], "API_KEY"),
    ]:
        res = subprocess.run(
            [sys.executable, "-m", "api", *args],
            env=server_env(api_data, **env),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 2, res.stderr
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and expected in errors[0], res.stderr
        assert "Traceback" not in res.stderr
