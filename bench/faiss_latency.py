"""Query latency and recall of the comment index's FAISS layer: exact flat vs IVF.

Usage: ``python bench/faiss_latency.py [--n 1000000] [--dim 512] [--queries 1000]
[--data random|clustered]``

Builds both index kinds with :func:`retrieval.faiss_ops.build_faiss_index` (the code
:class:`~retrieval.comment_index.CommentIndex` uses) over ``n`` unit vectors, then times
single-query searches (k=10, one query per call, as recall does per sample): p50/p99 in ms,
without and with a same-video exclusion range. IVF recall@10 is measured against the flat
index on fresh queries, at the calibrated default nprobe and over an nprobe sweep.

``--data random`` (default) draws i.i.d. Gaussian directions: the worst case for IVF, since
there is no cluster structure to exploit. ``--data clustered`` puts the vectors around
``n/1000`` centres, closer to what sentence embeddings look like. Prints a table, then one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from retrieval.faiss_ops import (  # noqa: E402
    build_faiss_index,
    calibrate_nprobe,
    search_index,
)


def unit_vectors(rng: np.random.Generator, n: int, dim: int, centres: np.ndarray | None):
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 1 << 16):
        stop = min(n, start + (1 << 16))
        x = rng.standard_normal((stop - start, dim), dtype=np.float32)
        if centres is not None:  # centre + noise of about the same norm as the centre
            x = x / np.sqrt(dim) * 0.8 + centres[rng.integers(0, len(centres), stop - start)]
        out[start:stop] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def latencies_ms(index, queries: np.ndarray, k: int, nprobe=None, exclude=None) -> np.ndarray:
    times = np.empty(len(queries))
    for i in range(len(queries)):
        t0 = time.perf_counter()
        search_index(index, queries[i : i + 1], k, exclude=exclude, nprobe=nprobe)
        times[i] = (time.perf_counter() - t0) * 1e3
    return times


def recall(index, queries: np.ndarray, truth: np.ndarray, k: int, nprobe: int) -> float:
    _, ids = search_index(index, queries, k, nprobe=nprobe)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, truth, strict=True)]))


def pct(ms: np.ndarray) -> dict:
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def check_memory(n: int, dim: int) -> None:
    import psutil

    need = 3.3 * n * dim * 4  # the vectors, the flat copy, the IVF copy, slack
    have = psutil.virtual_memory().available
    print(
        f"memory: need ~{need / 2**30:.1f} GiB, available {have / 2**30:.1f} GiB", file=sys.stderr
    )
    if need > have:
        sys.exit(f"error: not enough memory for --n {n} --dim {dim}")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--data", choices=("random", "clustered"), default="random")
    ap.add_argument("--sweep", default="16,64,256,1024", help="extra nprobe values to measure")
    ap.add_argument("--sweep-queries", type=int, default=200, help="single queries per sweep row")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def build(args: argparse.Namespace, vectors: np.ndarray, queries: np.ndarray) -> dict:
    """Both indexes, the exact top-k of ``queries``, the calibrated nprobe, and timings."""
    import faiss

    ids = np.arange(args.n, dtype=np.int64)
    out, t0 = {}, time.perf_counter()
    out["flat"] = build_faiss_index(vectors, ids, ivf_threshold=args.n + 1)
    out["flat_build_s"], t0 = time.perf_counter() - t0, time.perf_counter()
    _, out["truth"] = search_index(out["flat"], queries, args.k)
    out["flat_batch_s"], t0 = time.perf_counter() - t0, time.perf_counter()
    out["ivf"] = build_faiss_index(vectors, ids, ivf_threshold=0, seed=args.seed)
    out["ivf_build_s"], t0 = time.perf_counter() - t0, time.perf_counter()
    counts = np.ones(args.n, dtype=np.int64)
    out["nprobe"] = calibrate_nprobe(out["ivf"], vectors, counts, seed=args.seed)
    out["calibrate_s"] = time.perf_counter() - t0
    out["nlist"] = faiss.downcast_index(out["ivf"].index).nlist
    return out


def measure(args: argparse.Namespace, b: dict, queries: np.ndarray) -> tuple[dict, list]:
    video = (args.n // 2, args.n // 2 + max(1, args.n // 1000))  # one "video" of n/1000 ids
    sub, k, nprobe = queries[: args.sweep_queries], args.k, b["nprobe"]
    rows = {
        "flat": pct(latencies_ms(b["flat"], queries, k)),
        "flat_excluding_video": pct(latencies_ms(b["flat"], sub, k, exclude=video)),
        "ivf": {
            **pct(latencies_ms(b["ivf"], queries, k, nprobe)),
            "nprobe": nprobe,
            "recall_at_10": round(recall(b["ivf"], queries, b["truth"], k, nprobe), 4),
        },
        "ivf_excluding_video": {
            **pct(latencies_ms(b["ivf"], sub, k, nprobe, exclude=video)),
            "nprobe": nprobe,
        },
    }
    sweep = []
    for p in sorted({int(x) for x in args.sweep.split(",") if x} - {nprobe}):
        if p <= b["nlist"]:
            r = round(recall(b["ivf"], queries, b["truth"], k, p), 4)
            sweep.append({"nprobe": p, **pct(latencies_ms(b["ivf"], sub, k, p)), "recall_at_10": r})
    return rows, sweep


def report(args: argparse.Namespace, b: dict, rows: dict, sweep: list) -> None:
    import faiss

    threads = faiss.omp_get_max_threads()
    print(
        f"\n{args.n} x {args.dim} {args.data}, k={args.k}, one query per search, {threads} threads"
    )
    print(f"{'index':<24}{'nprobe':>8}{'p50 ms':>10}{'p99 ms':>10}{'recall@10':>11}")
    table = list(rows.items()) + [("ivf (sweep)", row) for row in sweep]
    for name, row in table:
        print(
            f"{name:<24}{row.get('nprobe', '-')!s:>8}{row['p50_ms']:>10.3f}{row['p99_ms']:>10.3f}"
            f"{row.get('recall_at_10', '-')!s:>11}"
        )
    timings = ("flat_build_s", "ivf_build_s", "calibrate_s", "flat_batch_s")
    print(", ".join(f"{t} {b[t]:.1f}" for t in timings) + f"  (nlist {b['nlist']})")
    figures = {
        "n": args.n,
        "dim": args.dim,
        "data": args.data,
        "queries": args.queries,
        "k": args.k,
        "threads": threads,
        "nlist": b["nlist"],
        **{t: round(b[t], 2) for t in timings},
        **rows,
        "ivf_sweep": sweep,
    }
    print(json.dumps(figures))


def main() -> None:
    args = parse_args()
    check_memory(args.n, args.dim)
    rng = np.random.default_rng(args.seed)
    centres = None
    if args.data == "clustered":
        centres = unit_vectors(rng, max(1, args.n // 1000), args.dim, None)
    t0 = time.perf_counter()
    vectors = unit_vectors(rng, args.n, args.dim, centres)
    queries = unit_vectors(rng, args.queries, args.dim, centres)
    print(f"data in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    built = build(args, vectors, queries)
    print(f"built: nlist {built['nlist']}, nprobe {built['nprobe']}", file=sys.stderr)
    rows, sweep = measure(args, built, queries)
    report(args, built, rows, sweep)


if __name__ == "__main__":
    main()
