"""``recall(store, linker, index, video, t) -> Knowledge``: the one recall every caller uses.

KLVCG §IV-B: for the context window [t-l, t+l] of a video, the KG facts of the entities its
comments are about (:mod:`retrieval.linker`) and comments of *other* videos about the same
things (the paper's "AC", :mod:`retrieval.comment_index`). Training, evaluation and the API
all call :func:`recall`; there is no other retrieval path
(docs/architecture.md, section "Retrieval").

The window is the comments of [t-l, t+l] except second t itself (those are the targets); the
video's comments before the window are its history (the topic entities;
:func:`retrieval.window.window_of`). The AC query is the mean embedding of the entity names and
video keywords the window's comments contain (KLVCG's released code matches other videos'
comments on the video's TF-IDF words, by token overlap).

    python -m retrieval.recall [--corpus PATH --format FMT] [--db DIR | --store neo4j]
                               (--video ID --t SECONDS | --windows FILE) [--json]

A package only so that the command (``__main__``) is a module of its own: it builds the
corpus, the linker and the index (:mod:`retrieval.context`), which recall is handed instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from kg.store import GraphStore
from model.data.schema import Comment, Video
from retrieval.comment_index import CommentIndex, Hit
from retrieval.linker import Linker, RecalledFact, pack_text
from retrieval.window import window_of

DEFAULT_K_COMMENTS = 5


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
        video.check_time(t)
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
