"""Recall throughput of ``python -m retrieval.recall --windows`` over the demo corpus.

Usage: ``python bench/recall_windows.py [--windows 2000] [--embedder usem3]``

Writes the windows (every test-split second with a comment, in order, up to ``--windows``),
runs the CLI once cold (builds the keyword sets and the FAISS index of the training
comments into a fresh ``DANMAKU_DATA``) and once warm (loads them), and reports end-to-end
windows/s of the warm run (process start to exit) and of its recall loop alone. Prints a
table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model.data.demo import ensure_demo  # noqa: E402
from model.data.movielc import read_movielc  # noqa: E402


def run_cli(windows: Path, env: dict, embedder: str) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "retrieval.recall",
            "--windows",
            str(windows),
            "--embedder",
            embedder,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    m = re.search(r"(\d+) windows in ([\d.]+) s", res.stderr)
    lines = res.stdout.strip().splitlines()
    return wall, float(m.group(2)), len(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--windows", type=int, default=2000)
    ap.add_argument("--embedder", default="usem3")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, DANMAKU_DATA=tmp)
        corpus = read_movielc(ensure_demo(Path(tmp) / "corpus" / "demo"))
        seconds = sorted({(v.id, c.second) for v in corpus.split("test") for c in v.comments})
        path = Path(tmp) / "windows.jsonl"
        path.write_text(
            "".join(json.dumps({"video": v, "t": t}) + "\n" for v, t in seconds[: args.windows])
        )
        cold_wall, _, _ = run_cli(path, env, args.embedder)
        wall, loop, n = run_cli(path, env, args.embedder)
    figures = {
        "windows": n,
        "embedder": args.embedder,
        "cold_run_s": round(cold_wall, 2),
        "warm_run_s": round(wall, 2),
        "windows_per_s": round(n / wall, 1),
        "recall_loop_windows_per_s": round(n / loop, 1),
    }
    for k, v in figures.items():
        print(f"{k:<26} {v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
