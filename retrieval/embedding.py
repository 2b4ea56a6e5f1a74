"""What an embedder is: the :class:`Embedder` interface, and the base every backend shares.

An embedder has a ``name``, a ``dim`` and ``embed(texts) -> (n, dim)`` float32 with L2-normalised
rows. :class:`BatchedEmbedder` (the base of the backends of :mod:`retrieval.embedder_backends`)
embeds each distinct text once, in batches, with a tqdm bar for long runs: danmaku repeat a
lot. Apart from the backends and the factory (:mod:`retrieval.embedders`) so that the comment
index, which only embeds, depends on neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from common.errors import UserError


class EmbedderError(UserError):
    """An embedder that cannot be made or used: bad spec, missing package or model."""


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, L2-normalised rows."""


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def dedup(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Distinct texts in first-seen order, and for each input the index of its distinct text."""
    first: dict[str, int] = {}
    inverse = np.fromiter(
        (first.setdefault(t, len(first)) for t in texts), dtype=np.int64, count=len(texts)
    )
    return list(first), inverse


class BatchedEmbedder:
    """Base class: de-duplication, batching, normalisation and a progress bar.

    Subclasses set ``name`` and ``dim`` and implement :meth:`_embed_batch`.
    """

    name: str
    dim: int

    def __init__(self, batch_size: int = 256, progress_min: int = 10_000) -> None:
        if batch_size < 1:
            raise EmbedderError(f"batch size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.progress_min = progress_min  # show a bar from this many distinct texts up

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed(
        self, texts: Sequence[str], progress: bool | None = None, unique: bool = True
    ) -> np.ndarray:
        """Embed each distinct text once and scatter the rows back to ``texts``' order
        (``unique=False`` embeds every text as given: for benchmarks)."""
        from tqdm.auto import tqdm

        if unique:
            distinct, inverse = dedup(texts)
        else:
            distinct, inverse = list(texts), np.arange(len(texts))
        out = np.empty((len(distinct), self.dim), dtype=np.float32)
        show = len(distinct) >= self.progress_min if progress is None else progress
        with tqdm(total=len(distinct), disable=not show, unit="text", desc=self.name) as bar:
            for start in range(0, len(distinct), self.batch_size):
                batch = distinct[start : start + self.batch_size]
                vecs = np.asarray(self._embed_batch(batch), dtype=np.float32)
                if vecs.shape != (len(batch), self.dim):
                    raise EmbedderError(
                        f"{self.name}: expected shape {(len(batch), self.dim)}, got {vecs.shape}"
                    )
                out[start : start + len(batch)] = l2_normalise(vecs)
                bar.update(len(batch))
        return out[inverse]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
