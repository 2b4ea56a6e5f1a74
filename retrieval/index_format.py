"""The on-disk form of a comment index: one directory of files, and the checks that refuse it.

Each file is written atomically, the manifest last, so an interrupted save leaves no manifest
that names files it did not finish:

- ``index.faiss``: ``faiss.write_index`` of the ``IndexIDMap``.
- ``idmap.npz`` (no pickles): ``videos`` (str, V), ``starts`` (int64, V+1: video i owns ids
  ``starts[i]..starts[i+1]-1``), ``times`` (int32, N: second of each entry), ``text_ids``
  (int32, N: index of each entry's distinct text), ``text_offsets`` (int64, M+1) and
  ``text_blob`` (uint8: the distinct texts, UTF-8, concatenated).
- ``manifest.json``: format version, embedder name and dim, entry/video/text counts, index
  type, nlist, nprobe, seed, the SHA-256 fingerprint of the entries (video, second, text, in
  input order) and the size and SHA-256 of the two files above.

An index is derived data: a damaged one (:class:`DamagedIndexError`) or one of an older format
(:class:`StaleIndexError`) is built again by its caller. Apart from building and searching
(:mod:`retrieval.comment_index`) because it is a file format, with its own reasons to change.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.atomic import atomic_open, atomic_path, write_text
from common.errors import UserError

FORMAT_VERSION = 1
MANIFEST, INDEX_FILE, IDMAP_FILE = "manifest.json", "index.faiss", "idmap.npz"
_FILE_KEYS = {"bytes", "sha256"}


class CommentIndexError(UserError):
    """A comment index that cannot be built or loaded (missing, corrupt, other embedder)."""


class StaleIndexError(CommentIndexError):
    """A saved index built from other inputs than the caller's."""


class DamagedIndexError(CommentIndexError):
    """A saved index with a damaged, missing or unreadable file: derived data, so the caller
    that built it (:func:`retrieval.context.cached_index`) builds it again; the message tells
    anyone else how to have it rebuilt."""

    def __init__(self, path: Path, directory: Path, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}: delete {directory} and it is built again on next use")


@dataclass
class EntryTable:
    """The id map: entry ids are positions; video i owns ``starts[i]:starts[i+1]``."""

    videos: list[str]
    starts: np.ndarray
    times: np.ndarray
    text_ids: np.ndarray
    texts: list[str]
    fingerprint: str


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_index(directory: Path, index, table: EntryTable, manifest: dict) -> None:
    """Write ``index`` (a faiss ``IndexIDMap``), its id map ``table`` and (last) ``manifest``
    with the files' sizes and checksums into ``directory``, each atomically."""
    import faiss

    blobs = [t.encode() for t in table.texts]
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in blobs], out=offsets[1:])
    blob = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    with atomic_open(directory / IDMAP_FILE) as f:
        arrays = {k: getattr(table, k) for k in ("starts", "times", "text_ids")}
        videos = np.array(table.videos, dtype=str)
        np.savez(f, videos=videos, text_offsets=offsets, text_blob=blob, **arrays)
    with atomic_path(directory / INDEX_FILE) as tmp:
        faiss.write_index(index, str(tmp))
    files = {
        name: {"bytes": (directory / name).stat().st_size, "sha256": _sha256(directory / name)}
        for name in (INDEX_FILE, IDMAP_FILE)
    }
    write_text(directory / MANIFEST, json.dumps({**manifest, "files": files}, indent=2) + "\n")


def read_index(directory: Path, manifest: dict) -> tuple[object, EntryTable]:
    """The faiss index and id map saved in ``directory`` under ``manifest``
    (:func:`read_manifest`), refusing a missing, corrupt or unreadable file."""
    import faiss

    for name in (INDEX_FILE, IDMAP_FILE):
        _check_file(directory / name, manifest["files"][name])
    try:
        index = faiss.read_index(str(directory / INDEX_FILE))
    except RuntimeError as e:
        raise DamagedIndexError(directory / INDEX_FILE, directory, f"unreadable ({e})") from e
    table = _read_idmap(directory / IDMAP_FILE, manifest["fingerprint"])
    if index.ntotal != len(table.text_ids) or index.ntotal != manifest["entries"]:
        raise DamagedIndexError(
            directory, directory, "index and id map disagree on the entry count"
        )
    return index, table


def read_manifest(directory: Path) -> dict:
    """The manifest of the index saved in ``directory``, its format and fields checked."""
    path = directory / MANIFEST
    if not path.is_file():
        raise CommentIndexError(f"{path}: no comment index here (manifest missing): build it first")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest["format"] != FORMAT_VERSION:
            raise StaleIndexError(
                f"{path}: format {manifest['format']}, this code reads {FORMAT_VERSION}: rebuild it"
            )
        missing = {"embedder", "entries", "index_type", "nlist", "nprobe", "fingerprint"}
        missing -= set(manifest)
        missing |= {f for f in (INDEX_FILE, IDMAP_FILE) if set(manifest["files"][f]) != _FILE_KEYS}
        if missing:
            raise KeyError(", ".join(sorted(missing)))
    except (ValueError, KeyError, TypeError) as e:
        raise DamagedIndexError(
            path, directory, f"corrupt manifest ({type(e).__name__}: {e})"
        ) from e
    return manifest


def _check_file(path: Path, expected: dict) -> None:
    if not path.is_file():
        raise DamagedIndexError(path, path.parent, "missing")
    if path.stat().st_size != expected["bytes"] or _sha256(path) != expected["sha256"]:
        reason = "corrupt (size or checksum differs from the manifest)"
        raise DamagedIndexError(path, path.parent, reason)


def _read_idmap(path: Path, fingerprint: str) -> EntryTable:
    try:
        with np.load(path, allow_pickle=False) as z:
            blob, offsets = z["text_blob"].tobytes(), z["text_offsets"]
            texts = [blob[a:b].decode() for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
            videos = [str(v) for v in z["videos"]]
            return EntryTable(videos, z["starts"], z["times"], z["text_ids"], texts, fingerprint)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise DamagedIndexError(path, path.parent, f"unreadable id map ({e})") from e
