"""``python -m api`` as a child process on a free loopback port, for the clients that replay
against it (``python -m model.live``, ``bench/live_latency.py``).

The model layer must not import the API (docs/architecture.md, section "Layers"), so it runs
the server the way a user does, as a command, and talks to it over the network only. The
server is given the settings as its own options (:class:`ServerOptions`), its output goes to
a log file, and it is ready when ``GET /health`` says the model is loaded. A server that
exits while starting is reported with its ``error:`` line (a bad setting, exit status 2) or
the tail of its log; one that is up without a model is reported with ``/health``'s reason.
It is stopped with Ctrl-C (SIGINT), as uvicorn expects, then killed if it hangs.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, fields
from pathlib import Path

from common.errors import UserError

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
#: A first start bootstraps the KG store, the demo corpus and the comment index.
START_TIMEOUT_S = 900.0
STOP_TIMEOUT_S = 30.0
LOG_TAIL_CHARS = 3000


class ServerError(UserError):
    """The API process did not start, or started without a model."""


@dataclass(frozen=True)
class ServerOptions:
    """``python -m api``'s options (None: the server's default, from its environment)."""

    checkpoint: str | None = None
    corpus: str | None = None
    format: str | None = None
    embedder: str | None = None
    device: str | None = None
    kg: str | None = None
    store: str | None = None
    db: str | None = None
    neo4j_uri: str | None = None
    neo4j_user: str | None = None
    neo4j_password: str | None = None
    neo4j_database: str | None = None

    def argv(self) -> list[str]:
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out += [f"--{f.name.replace('_', '-')}", str(value)]
        return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, timeout_s: float = 5.0) -> dict:
    """GET ``url`` and its JSON body (an error status's body too: ``/health`` answers 503)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        with e:
            return json.load(e)


class ApiProcess:
    """A running ``python -m api``: its base URL (``http://127.0.0.1:PORT``), pid and log."""

    def __init__(
        self,
        options: ServerOptions,
        log_path: Path,
        env: dict[str, str] | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        argv = [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(self.port)]
        env = dict(os.environ if env is None else env)
        # the working directory stays the caller's (``data/`` is relative to it); the
        # project is importable from anywhere
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        with log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                argv + options.argv(), env=env, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            self.health = self._wait_ready(start_timeout_s)
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise ServerError(self._exit_reason())
            try:
                health = get_json(f"{self.url}/health", timeout_s=5.0)
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    raise ServerError(
                        f"python -m api did not answer /health in {timeout_s:g} s "
                        f"(log: {self.log_path})"
                    ) from None
                time.sleep(0.2)
                continue
            model = health.get("model") or {}
            if not model.get("ok"):
                raise ServerError(f"the API has no model: {model.get('detail', health)}")
            return health

    def _exit_reason(self) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        errors = [line for line in text.splitlines() if line.startswith("error: ")]
        if errors:
            return f"python -m api: {errors[-1].removeprefix('error: ')}"
        return f"python -m api exited with status {self.proc.returncode}:\n{text[-LOG_TAIL_CHARS:]}"

    def stop(self) -> int | None:
        """Ctrl-C, then a kill if it has not exited in :data:`STOP_TIMEOUT_S`; its status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("python -m api (pid %d) ignored Ctrl-C: killed", self.pid)
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> ApiProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
