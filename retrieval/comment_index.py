"""FAISS index of the training comments of other videos (KLVCG's "AC" knowledge).

Design: docs/architecture.md, section "Retrieval"; the paper: "Knowledge Enhanced Model for
Live Video Comment Generation" (Chen et al.), section IV-B "Knowledge enhancing".

Every training comment is an entry ``(text, video, second)``; each distinct text is embedded
once (:mod:`retrieval.embedders`), as danmaku repeat a lot, and its unit vector added under the
entry's id to a ``faiss.IndexIDMap`` searched by inner product (= cosine): exact
``IndexFlatIP`` below ``ivf_threshold`` entries, ``IndexIVFFlat`` above, its ``nprobe``
calibrated at build time to recall@10 >= 0.95 against exact search (:func:`calibrate_nprobe`).

Each video's entries get one contiguous id range ``[lo, hi)``, so a search leaves out the
query's own video inside the scan with ``SearchParameters(sel=IDSelectorNot(IDSelectorRange(lo,
hi)))`` (``SearchParametersIVF`` for IVF): no over-fetching. Ties are broken by id. Where
faiss has a GPU, the index is built there and searched on a GPU copy made at the first search
(:mod:`retrieval.faiss_ops`), which drops the excluded range itself; the distinct-text search
of a flat index is a matrix product over the distinct texts on the CPU either way.

A saved index (:meth:`CommentIndex.save`) is one directory of files, each written atomically,
the manifest last; the manifest records the embedder, a fingerprint of the entries and a
checksum of each other file, so an index damaged or built from other inputs is refused (the
files and their checks: :mod:`retrieval.index_format`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.data.schema import Corpus
from retrieval.embedding import Embedder, l2_normalise
from retrieval.faiss_ops import (
    IVF_THRESHOLD,
    build_faiss_index,
    calibrate_nprobe,
    ivf_of,
    search_index,
    to_device,
)
from retrieval.index_format import (
    FORMAT_VERSION,
    CommentIndexError,
    EntryTable,
    StaleIndexError,
    read_index,
    read_manifest,
    write_index,
)

log = logging.getLogger(__name__)

Entry = tuple[str, str, int]  # (text, video id, second)


@dataclass(frozen=True)
class Hit:
    text: str
    video: str
    t: int  # second of the comment in its video
    score: float  # cosine similarity to the query


def entries_from_corpus(corpus: Corpus, split: str | None = "train") -> Iterator[Entry]:
    """``(text, video id, second)`` of every comment of each video's part in ``split`` (None:
    all comments): for a video split by time, only the comments of that split's ranges
    (``Corpus.split``)."""
    videos = corpus.split(split) if split is not None else list(corpus)
    if not videos:
        log.warning("%s: no videos in split %r to index", corpus.path, split)
    for video in videos:
        for comment in video.comments:
            yield comment.text, video.id, comment.second


def _checked(entries: Iterable[Entry]) -> Iterator[Entry]:
    for n, entry in enumerate(entries):
        try:
            text, video, t = entry
            ok = isinstance(text, str) and isinstance(video, str) and t == int(t)
        except (TypeError, ValueError) as e:
            raise CommentIndexError(f"entry {n}: not (text, video, second): {entry!r}") from e
        if not ok:
            raise CommentIndexError(f"entry {n}: not (text, video, second): {entry!r}")
        yield text, video, int(t)


def _entry_bytes(text: str, video: str, t: int) -> bytes:
    return f"{video}\x1f{t}\x1f{text}\x1e".encode()


def entries_fingerprint(entries: Iterable[Entry]) -> str:
    """The fingerprint a :meth:`CommentIndex.build` of ``entries`` records: pass it to
    :meth:`CommentIndex.load` (``expect_fingerprint``) to refuse an index built from others."""
    digest = hashlib.sha256()
    for entry in _checked(entries):
        digest.update(_entry_bytes(*entry))
    return digest.hexdigest()


def _collect(entries: Iterable[Entry]) -> EntryTable:
    """Group entries by video (first-seen order, stable inside a video), intern the texts."""
    by_video: dict[str, list[tuple[int, int]]] = {}
    text_id: dict[str, int] = {}
    digest, skipped = hashlib.sha256(), 0
    for text, video, t in _checked(entries):
        digest.update(_entry_bytes(text, video, t))
        if not text.strip():
            skipped += 1
            continue
        by_video.setdefault(video, []).append((text_id.setdefault(text, len(text_id)), t))
    if skipped:
        log.info("skipped %d empty comments", skipped)
    rows = np.array([r for g in by_video.values() for r in g], dtype=np.int64).reshape(-1, 2)
    starts = np.cumsum([0] + [len(g) for g in by_video.values()], dtype=np.int64)
    times, text_ids = rows[:, 1].astype(np.int32), rows[:, 0].astype(np.int32)
    return EntryTable(list(by_video), starts, times, text_ids, list(text_id), digest.hexdigest())


class CommentIndex:
    """Other videos' comments, searchable by meaning. Build with :meth:`build`, or :meth:`load`
    a saved one; query with :meth:`search`."""

    def __init__(
        self, index, table: EntryTable, embedder: Embedder, manifest: dict, device=None
    ) -> None:
        self.index, self.table, self.embedder, self.manifest = index, table, embedder, manifest
        self._video_no = {v: i for i, v in enumerate(table.videos)}
        self._by_text = None  # lazily: distinct-text vectors for the flat fast path
        self._device = device  # lazily: the copy searches run on (faiss_ops.to_device)

    @property
    def device_index(self):
        """The index's copy that searches run on: on the GPU where faiss has one, else the
        index itself (made at the first search)."""
        if self._device is None:
            self._device = to_device(self.index)
        return self._device

    @classmethod
    def build(
        cls,
        entries: Iterable[Entry],
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
        ivf, device = ivf_of(index), None
        if ivf is not None and nprobe is None:
            counts = np.bincount(table.text_ids, minlength=len(table.texts))
            device = to_device(index)
            nprobe = calibrate_nprobe(index, vectors, counts, seed=seed, device=device)
        manifest = {
            "format": FORMAT_VERSION,
            "embedder": {"name": embedder.name, "dim": embedder.dim},
            "entries": len(table.text_ids),
            "videos": len(table.videos),
            "texts": len(table.texts),
            "index_type": "flat" if ivf is None else "ivf",
            "nlist": None if ivf is None else int(ivf.nlist),
            "nprobe": None if ivf is None else int(nprobe),
            "ivf_threshold": ivf_threshold,
            "seed": seed,
            "fingerprint": table.fingerprint,
        }
        log.info("comment index: %s", {k: manifest[k] for k in ("entries", "texts", "index_type")})
        return cls(index, table, embedder, manifest, device)

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
        one = exclude_video is None or isinstance(exclude_video, str)
        excludes = [exclude_video] * len(vectors) if one else list(exclude_video)
        if len(excludes) != len(vectors):
            raise CommentIndexError(f"{len(excludes)} exclude_video for {len(vectors)} queries")
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
        if not isinstance(queries, np.ndarray):
            queries = self.embedder.embed([queries] if isinstance(queries, str) else list(queries))
        vectors = np.atleast_2d(queries)
        if vectors.ndim != 2 or vectors.shape[1] != self.embedder.dim:
            raise CommentIndexError(f"query vectors of shape {vectors.shape}, not (q, dim)")
        return l2_normalise(vectors)

    def _text_vectors(self):
        """Unit vectors of the distinct texts, and each text's entry ids: ``(vectors, order,
        bounds)``; text j's entries are ``order[bounds[j]:bounds[j+1]]`` (ascending)."""
        if self._by_text is None:
            import faiss

            order = np.argsort(self.table.text_ids, kind="stable")
            bounds = np.searchsorted(
                self.table.text_ids[order], np.arange(len(self.table.texts) + 1)
            )
            base = faiss.downcast_index(self.index.index)  # flat: internal position == id
            vectors = base.reconstruct_batch(order[bounds[:-1]].astype(np.int64))
            self._by_text = (vectors, order, bounds)
        return self._by_text

    def _search_distinct_flat(self, vectors, k, exclude) -> list[list[Hit]]:
        """Exact distinct-text search by one matrix product over the *distinct* texts, far
        fewer than the entries as danmaku repeat (figures in docs/results-kg-store.md). Same
        hits as the entry-level search, and faster than faiss's flat scan with an id
        selector."""
        text_vectors, order, bounds = self._text_vectors()
        scores = vectors @ text_vectors.T  # (q, texts)
        lo, hi = exclude if exclude else (0, 0)
        out = []
        for row in scores:
            ranked = np.lexsort((np.arange(len(row)), -row))  # best first
            found: list[tuple[float, int]] = []  # (score, entry) per text, ties kept
            for j in ranked:
                if len(found) >= k and row[j] < found[k - 1][0]:
                    break  # past the k-th score: only ties of it could still enter
                entries = order[bounds[j] : bounds[j + 1]]
                eligible = entries[(entries < lo) | (entries >= hi)]
                if len(eligible):
                    found.append((float(row[j]), int(eligible.min())))
            found.sort(key=lambda se: (-se[0], se[1]))  # ties by entry id, as faiss's path
            hits = [self._hit(entry, score) for score, entry in found[:k]]
            out.append(hits)
        return out

    def _search_rows(self, vectors, k, exclude, distinct, nprobe) -> list[list[Hit]]:
        if distinct and ivf_of(self.index) is None:
            return self._search_distinct_flat(vectors, k, exclude)
        out: list[list[Hit]] = [[] for _ in range(len(vectors))]
        todo, fetch = list(range(len(vectors))), 4 * k if distinct else k
        while todo and k > 0:
            fetch = min(fetch, len(self))
            scores, ids = search_index(
                self.index, vectors[todo], fetch, exclude, nprobe, device=self.device_index
            )
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
            if not (distinct and hit.text in seen):
                hits.append(hit)
                seen.add(hit.text)
            if len(hits) == k:
                break
        return hits

    def save(self, directory: str | Path) -> Path:
        """Write the index into ``directory`` (the files: :mod:`retrieval.index_format`)."""
        directory = Path(directory)
        write_index(directory, self.index, self.table, self.manifest)
        return directory

    @classmethod
    def load(
        cls, directory: str | Path, embedder: Embedder, expect_fingerprint: str | None = None
    ) -> CommentIndex:
        """Load a saved index, refusing one built with another embedder, a missing or corrupt
        file, or (given ``expect_fingerprint``) one built from other entries."""
        directory = Path(directory)
        manifest = read_manifest(directory)
        built = manifest["embedder"]
        if built != {"name": embedder.name, "dim": embedder.dim}:
            raise CommentIndexError(
                f"{directory}: built with embedder {built['name']} ({built['dim']}-d), not "
                f"{embedder.name} ({embedder.dim}-d): rebuild it or use {built['name']}"
            )
        if expect_fingerprint is not None and manifest["fingerprint"] != expect_fingerprint:
            raise StaleIndexError(f"{directory}: built from other comments: rebuild it")
        index, table = read_index(directory, manifest)
        return cls(index, table, embedder, {k: v for k, v in manifest.items() if k != "files"})
