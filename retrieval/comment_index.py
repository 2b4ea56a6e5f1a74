"""FAISS index of the training comments of other videos (DESIGN.md §4; KLVCG §IV-B, "AC").

KLVCG feeds the model comments that other videos' viewers wrote about the same things; this
module finds them. Every training comment is an entry ``(text, video, second)``; each distinct
text is embedded once (:mod:`retrieval.embedders`) and its unit vector added under the entry's
id to a ``faiss.IndexIDMap`` searched by inner product (= cosine): an exact ``IndexFlatIP``
below ``ivf_threshold`` entries, an ``IndexIVFFlat`` above it.

Ids are assigned so that each video's entries form one contiguous range ``[lo, hi)``; a search
leaves out the query's own video with ``faiss.SearchParameters(sel=IDSelectorNot(
IDSelectorRange(lo, hi)))`` (``SearchParametersIVF`` for IVF), so exclusion happens inside the
scan and never costs over-fetching. Ties are broken by id, so results are deterministic.

IVF ``nprobe`` defaults to the smallest power of two that reaches recall@10 >= 0.95 against
exact search on a seeded sample of the indexed vectors (:func:`calibrate_nprobe`).

On disk (:meth:`CommentIndex.save`), one directory, each file written atomically:

- ``index.faiss``: ``faiss.write_index`` of the ``IndexIDMap``.
- ``idmap.npz`` (no pickles): ``videos`` (str, V), ``starts`` (int64, V+1: video i owns ids
  ``starts[i]..starts[i+1]-1``), ``times`` (int32, N: second of each entry), ``text_ids``
  (int32, N: index of each entry's distinct text), ``text_offsets`` (int64, M+1) and
  ``text_blob`` (uint8: the distinct texts, UTF-8, concatenated).
- ``manifest.json``, written last: format version, embedder name and dim, entry/video/text
  counts, index type, nlist, nprobe, seed, the SHA-256 fingerprint of the entries (video,
  second, text, in input order) and the size and SHA-256 of the two files above.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kg.errors import UserError
from retrieval.embedders import Embedder, atomic_path, l2_normalise

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST, INDEX_FILE, IDMAP_FILE = "manifest.json", "index.faiss", "idmap.npz"
IVF_THRESHOLD = 200_000
CALIBRATION_TARGET = 0.95


class CommentIndexError(UserError):
    """A comment index that cannot be built or loaded (missing, corrupt, other embedder)."""


class StaleIndexError(CommentIndexError):
    """A saved index built from other inputs than the caller's."""


@dataclass(frozen=True)
class Hit:
    text: str
    video: str
    t: int  # second of the comment in its video
    score: float  # cosine similarity to the query


def entries_from_corpus(corpus: Any, split: str | None = "train") -> Iterator[tuple[str, str, int]]:
    """``(text, video id, second)`` of every comment of the ``split`` videos (None: all)."""
    videos = corpus.split(split) if split is not None else list(corpus)
    if not videos:
        log.warning(
            "%s: no videos in split %r: the comment index will be empty", corpus.path, split
        )
    for video in videos:
        for comment in video.comments:
            yield comment.text, video.id, comment.second


@dataclass
class _Table:
    """The id map: entry ids are positions; video i owns ``starts[i]:starts[i+1]``."""

    videos: list[str]
    starts: np.ndarray
    times: np.ndarray
    text_ids: np.ndarray
    texts: list[str]
    fingerprint: str


def _collect(entries: Iterable[tuple[str, str, int]]) -> _Table:
    """Group entries by video (first-seen order, stable inside a video), intern the texts."""
    by_video: dict[str, list[tuple[int, int]]] = {}
    text_id: dict[str, int] = {}
    digest, skipped = hashlib.sha256(), 0
    for n, entry in enumerate(entries):
        try:
            text, video, t = entry
            t = int(t)
        except (TypeError, ValueError) as e:
            raise CommentIndexError(
                f"entry {n}: expected (text, video, second), got {entry!r}"
            ) from e
        digest.update(f"{video}\x1f{t}\x1f{text}\x1e".encode())
        if not text.strip():
            skipped += 1
            continue
        by_video.setdefault(video, []).append((text_id.setdefault(text, len(text_id)), t))
    if skipped:
        log.info("skipped %d empty comments", skipped)
    rows = [row for group in by_video.values() for row in group]
    sizes = np.array([len(g) for g in by_video.values()], dtype=np.int64)
    return _Table(
        videos=list(by_video),
        starts=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        times=np.array([t for _, t in rows], dtype=np.int32),
        text_ids=np.array([i for i, _ in rows], dtype=np.int32),
        texts=list(text_id),
        fingerprint=digest.hexdigest(),
    )


def default_nlist(n_entries: int, n_vectors: int) -> int:
    """~4 sqrt(n) lists, but at least 39 distinct training vectors per list (faiss' minimum)."""
    return max(1, min(round(4 * math.sqrt(n_entries)), n_vectors // 39))


def build_faiss_index(
    vectors: np.ndarray,
    text_ids: np.ndarray,
    *,
    ivf_threshold: int = IVF_THRESHOLD,
    nlist: int | None = None,
    seed: int = 0,
    train_per_list: int = 64,
):
    """``IndexIDMap`` holding ``vectors[text_ids[i]]`` under id i (flat IP, or IVF-flat IP when
    there are ``ivf_threshold`` entries or more, trained on a seeded sample of ``vectors``)."""
    import faiss

    n, dim = len(text_ids), vectors.shape[1]
    if n < ivf_threshold:
        base = faiss.IndexFlatIP(dim)
    else:
        nlist = nlist or default_nlist(n, len(vectors))
        base = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        base.cp.seed = seed
        rng = np.random.default_rng(seed)
        size = min(len(vectors), train_per_list * nlist)
        sample = vectors[np.sort(rng.choice(len(vectors), size=size, replace=False))]
        log.info("training IVF: %d lists on %d vectors", nlist, size)
        base.train(np.ascontiguousarray(sample, dtype=np.float32))
    index = faiss.IndexIDMap(base)
    for start in range(0, n, 1 << 16):
        ids = np.arange(start, min(n, start + (1 << 16)), dtype=np.int64)
        index.add_with_ids(np.ascontiguousarray(vectors[text_ids[ids]], dtype=np.float32), ids)
    return index


def _is_ivf(index) -> bool:
    import faiss

    return isinstance(faiss.downcast_index(index.index), faiss.IndexIVF)


def search_index(
    index,
    queries: np.ndarray,
    k: int,
    exclude: tuple[int, int] | None = None,
    nprobe: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw faiss search ``(scores, ids)`` leaving out ids ``exclude = [lo, hi)``; ids are -1
    where fewer than ``k`` were found."""
    import faiss

    sel = faiss.IDSelectorNot(faiss.IDSelectorRange(*exclude)) if exclude else None
    if _is_ivf(index):
        params = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe or 1)
    else:
        params = faiss.SearchParameters(sel=sel) if sel else None
    k = min(k, index.ntotal)
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)


def calibrate_nprobe(
    index,
    vectors: np.ndarray,
    counts: np.ndarray,
    *,
    k: int = 10,
    target: float = CALIBRATION_TARGET,
    n_queries: int = 256,
    seed: int = 0,
) -> int:
    """Smallest power-of-two nprobe whose recall@k against exact search reaches ``target``.

    Queries are a seeded sample of ``vectors`` (the distinct vectors; ``counts`` = entries per
    vector). Recall counts a hit when its score reaches the exact k-th best score, which is
    robust to the ties that repeated texts create.
    """
    import faiss

    nlist = faiss.downcast_index(index.index).nlist
    rng = np.random.default_rng(seed)
    queries = vectors[rng.choice(len(vectors), size=min(n_queries, len(vectors)), replace=False)]
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    kk = min(k, index.ntotal)
    # The exact kk-th best entry score: among the kk best distinct vectors, where the running
    # count of their entries reaches kk.
    top_scores, top = faiss.knn(
        queries,
        np.ascontiguousarray(vectors, dtype=np.float32),
        min(kk, len(vectors)),
        metric=faiss.METRIC_INNER_PRODUCT,
    )
    pos = (np.cumsum(counts[top], axis=1) < kk).sum(axis=1)
    kth = top_scores[np.arange(len(queries)), pos]
    nprobe = 1
    while True:
        found, _ = search_index(index, queries, k, nprobe=nprobe)
        recall = float(np.mean(found >= kth[:, None] - 1e-5))
        if recall >= target or nprobe >= nlist:
            log.info(
                "IVF nprobe %d of %d lists: calibration recall@%d %.3f", nprobe, nlist, k, recall
            )
            return min(nprobe, nlist)
        nprobe *= 2


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class CommentIndex:
    """Other videos' comments, searchable by meaning. Build with :meth:`build`, or :meth:`load`
    a saved one; query with :meth:`search`."""

    def __init__(self, index, table: _Table, embedder: Embedder, manifest: dict) -> None:
        self.index, self.table, self.embedder, self.manifest = index, table, embedder, manifest
        self._video_no = {v: i for i, v in enumerate(table.videos)}

    @classmethod
    def build(
        cls,
        entries: Iterable[tuple[str, str, int]],
        embedder: Embedder,
        ivf_threshold: int = IVF_THRESHOLD,
        nlist: int | None = None,
        seed: int = 0,
        nprobe: int | None = None,
    ) -> CommentIndex:
        """Index ``(text, video, second)`` entries; ``nprobe=None`` calibrates it (IVF only)."""
        table = _collect(entries)
        if not table.texts:
            raise CommentIndexError("no comments to index")
        vectors = l2_normalise(embedder.embed(table.texts))
        if vectors.shape != (len(table.texts), embedder.dim):
            raise CommentIndexError(f"{embedder.name} returned shape {vectors.shape}")
        index = build_faiss_index(
            vectors, table.text_ids, ivf_threshold=ivf_threshold, nlist=nlist, seed=seed
        )
        ivf = _is_ivf(index)
        if ivf and nprobe is None:
            counts = np.bincount(table.text_ids, minlength=len(table.texts))
            nprobe = calibrate_nprobe(index, vectors, counts, seed=seed)
        manifest = {
            "format": FORMAT_VERSION,
            "embedder": {"name": embedder.name, "dim": embedder.dim},
            "entries": len(table.text_ids),
            "videos": len(table.videos),
            "texts": len(table.texts),
            "index_type": "ivf" if ivf else "flat",
            "nlist": int(index.index.nlist) if ivf else None,
            "nprobe": int(nprobe) if ivf else None,
            "ivf_threshold": ivf_threshold,
            "seed": seed,
            "fingerprint": table.fingerprint,
        }
        log.info(
            "comment index: %d entries, %d videos, %d distinct texts, %s",
            manifest["entries"],
            manifest["videos"],
            manifest["texts"],
            manifest["index_type"],
        )
        return cls(index, table, embedder, manifest)

    def __len__(self) -> int:
        return len(self.table.text_ids)

    @property
    def index_type(self) -> str:
        return self.manifest["index_type"]

    @property
    def nprobe(self) -> int | None:
        return self.manifest["nprobe"]

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if self.index_type != "ivf":
            raise CommentIndexError("nprobe applies to an IVF index only")
        self.manifest["nprobe"] = max(1, min(int(value), self.manifest["nlist"]))

    @property
    def videos(self) -> list[str]:
        return list(self.table.videos)

    def video_range(self, video: str) -> tuple[int, int] | None:
        """The ids ``[lo, hi)`` of ``video``'s entries, None for a video not in the index."""
        i = self._video_no.get(video)
        return None if i is None else (int(self.table.starts[i]), int(self.table.starts[i + 1]))

    def _hit(self, entry: int, score: float) -> Hit:
        video = int(np.searchsorted(self.table.starts, entry, side="right")) - 1
        text = self.table.texts[self.table.text_ids[entry]]
        return Hit(text, self.table.videos[video], int(self.table.times[entry]), float(score))

    def search(
        self,
        queries: Sequence[str] | np.ndarray,
        k: int = 10,
        exclude_video: str | Sequence[str | None] | None = None,
        *,
        distinct: bool = False,
        nprobe: int | None = None,
    ) -> list[list[Hit]]:
        """The ``k`` best entries per query (texts, or vectors of shape ``(q, dim)``), best first.

        ``exclude_video``: a video id left out of every query's results, or one per query.
        ``distinct``: collapse entries with the same text (danmaku repeat a lot) to the best one.
        ``nprobe``: IVF lists to scan (default: the calibrated value).
        """
        vectors = self._query_vectors(queries)
        if isinstance(exclude_video, str) or exclude_video is None:
            excludes: Sequence[str | None] = [exclude_video] * len(vectors)
        elif len(exclude_video) != len(vectors):
            raise CommentIndexError(
                f"exclude_video: {len(exclude_video)} videos for {len(vectors)} queries"
            )
        else:
            excludes = exclude_video
        groups: dict[str | None, list[int]] = {}
        for row, video in enumerate(excludes):
            groups.setdefault(video, []).append(row)
        results: list[list[Hit]] = [[] for _ in range(len(vectors))]
        for video, rows in groups.items():
            exclude = self.video_range(video) if video is not None else None
            found = self._search_rows(vectors[rows], k, exclude, distinct, nprobe or self.nprobe)
            for row, hits in zip(rows, found, strict=True):
                results[row] = hits
        return results

    def _query_vectors(self, queries: Sequence[str] | np.ndarray) -> np.ndarray:
        if isinstance(queries, np.ndarray):
            vectors = np.atleast_2d(queries)
            if vectors.ndim != 2 or vectors.shape[1] != self.embedder.dim:
                raise CommentIndexError(
                    f"query vectors of shape {queries.shape}, expected (q, {self.embedder.dim})"
                )
            return l2_normalise(vectors)
        if isinstance(queries, str):
            queries = [queries]
        return l2_normalise(self.embedder.embed(list(queries)))

    def _search_rows(self, vectors, k, exclude, distinct, nprobe) -> list[list[Hit]]:
        out: list[list[Hit]] = [[] for _ in range(len(vectors))]
        todo, fetch = list(range(len(vectors))), 4 * k if distinct else k
        while todo and k > 0:
            fetch = min(fetch, len(self))
            scores, ids = search_index(self.index, vectors[todo], fetch, exclude, nprobe)
            again = []
            for row, row_scores, row_ids in zip(todo, scores, ids, strict=True):
                out[row] = self._hits(row_scores, row_ids, k, distinct)
                exhausted = fetch >= len(self) or (row_ids < 0).any()
                if distinct and len(out[row]) < k and not exhausted:
                    again.append(row)
            todo, fetch = again, fetch * 4
        return out

    def _hits(self, scores: np.ndarray, ids: np.ndarray, k: int, distinct: bool) -> list[Hit]:
        keep = ids >= 0
        scores, ids = scores[keep], ids[keep]
        hits: list[Hit] = []
        seen: set[str] = set()
        for j in np.lexsort((ids, -scores)):  # best score first, ties by id
            hit = self._hit(int(ids[j]), scores[j])
            if distinct:
                if hit.text in seen:
                    continue
                seen.add(hit.text)
            hits.append(hit)
            if len(hits) == k:
                break
        return hits

    def save(self, directory: str | Path) -> Path:
        """Write index, id map and (last) manifest into ``directory``, each atomically."""
        import faiss

        directory = Path(directory)
        blobs = [t.encode("utf-8") for t in self.table.texts]
        offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in blobs], out=offsets[1:])
        with atomic_path(directory / IDMAP_FILE) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                videos=np.array(self.table.videos, dtype=str),
                starts=self.table.starts,
                times=self.table.times,
                text_ids=self.table.text_ids,
                text_offsets=offsets,
                text_blob=np.frombuffer(b"".join(blobs), dtype=np.uint8),
            )
        with atomic_path(directory / INDEX_FILE) as tmp:
            faiss.write_index(self.index, str(tmp))
        files = {
            name: {"bytes": (directory / name).stat().st_size, "sha256": _sha256(directory / name)}
            for name in (INDEX_FILE, IDMAP_FILE)
        }
        with atomic_path(directory / MANIFEST) as tmp:
            tmp.write_text(json.dumps({**self.manifest, "files": files}, indent=2) + "\n")
        return directory

    @classmethod
    def load(
        cls, directory: str | Path, embedder: Embedder, expect_fingerprint: str | None = None
    ) -> CommentIndex:
        """Load a saved index, refusing one built with another embedder, a missing or corrupt
        file, or (given ``expect_fingerprint``) one built from other entries."""
        import faiss

        directory = Path(directory)
        manifest = _read_manifest(directory)
        built = manifest["embedder"]
        if built != {"name": embedder.name, "dim": embedder.dim}:
            raise CommentIndexError(
                f"{directory}: built with embedder {built['name']} ({built['dim']}-d), not "
                f"{embedder.name} ({embedder.dim}-d): rebuild it or use {built['name']}"
            )
        if expect_fingerprint is not None and manifest["fingerprint"] != expect_fingerprint:
            raise StaleIndexError(f"{directory}: built from other comments: rebuild it")
        for name in (INDEX_FILE, IDMAP_FILE):
            _check_file(directory / name, manifest["files"][name])
        try:
            index = faiss.read_index(str(directory / INDEX_FILE))
        except RuntimeError as e:
            raise CommentIndexError(f"{directory / INDEX_FILE}: unreadable ({e})") from e
        table = _read_idmap(directory / IDMAP_FILE, manifest["fingerprint"])
        if index.ntotal != len(table.text_ids) or index.ntotal != manifest["entries"]:
            raise CommentIndexError(f"{directory}: index and id map disagree on the entry count")
        return cls(index, table, embedder, {k: v for k, v in manifest.items() if k != "files"})


def _read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    if not path.is_file():
        raise CommentIndexError(f"{path}: no comment index here (manifest missing): build it first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest["format"] != FORMAT_VERSION:
            raise CommentIndexError(
                f"{path}: format {manifest['format']}, this code reads {FORMAT_VERSION}: rebuild it"
            )
        for key in ("embedder", "entries", "index_type", "nprobe", "fingerprint", "files"):
            manifest[key]  # noqa: B018 - presence check
        for name in (INDEX_FILE, IDMAP_FILE):
            manifest["files"][name]["sha256"]  # noqa: B018
    except (ValueError, KeyError, TypeError) as e:
        raise CommentIndexError(f"{path}: corrupt manifest ({type(e).__name__}: {e})") from e
    return manifest


def _check_file(path: Path, expected: dict) -> None:
    if not path.is_file():
        raise CommentIndexError(f"{path}: missing: rebuild the index")
    if path.stat().st_size != expected["bytes"] or _sha256(path) != expected["sha256"]:
        raise CommentIndexError(f"{path}: corrupt (size or checksum differs from the manifest)")


def _read_idmap(path: Path, fingerprint: str) -> _Table:
    try:
        with np.load(path, allow_pickle=False) as z:
            blob, offsets = z["text_blob"].tobytes(), z["text_offsets"]
            texts = [
                blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:], strict=True)
            ]
            return _Table(
                videos=[str(v) for v in z["videos"]],
                starts=z["starts"],
                times=z["times"],
                text_ids=z["text_ids"],
                texts=texts,
                fingerprint=fingerprint,
            )
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as e:
        raise CommentIndexError(f"{path}: unreadable id map ({e})") from e
