"""Demo corpus generation time and sample-building throughput.

Usage: ``python bench/corpus.py [--films 48] [--seed 0]``

Generates the demo corpus into a fresh temporary directory (timing generation and writing),
reads it back, then builds every sample of every split (frames, context, targets, period) and
reports samples per second. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model.data.demo import DemoConfig, ensure_demo  # noqa: E402
from model.data.movielc import read_movielc  # noqa: E402
from model.data.samples import build_samples  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--films", type=int, default=DemoConfig.films)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="sample-building passes")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = ensure_demo(Path(tmp) / "demo", DemoConfig(films=args.films, seed=args.seed))
        generate_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        corpus = read_movielc(out)
        read_s = time.perf_counter() - t0
        rates, n = [], 0
        for _ in range(args.repeats):  # the first pass also loads the features file
            t0 = time.perf_counter()
            n = sum(1 for _ in build_samples(corpus))
            rates.append(n / (time.perf_counter() - t0))
    figures = {
        "videos": len(corpus.videos),
        "comments": corpus.n_comments,
        "demo_generate_s": round(generate_s, 2),
        "demo_read_s": round(read_s, 2),
        "samples": n,
        "samples_per_s": round(max(rates)),
    }
    for k, v in figures.items():
        print(f"{k:<18} {v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
