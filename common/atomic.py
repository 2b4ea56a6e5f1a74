"""Atomic file writes: write to a temporary name in the target's directory, then
``os.replace`` it over the target, so a reader sees the old file or the new one, never half
of one, and an interrupted write leaves the target as it was.

The temporary name is per process and per call (``.<name>.<pid>.<random>.tmp``): two
processes writing the same file at once (two trainings building one cold cache) each rename
their own complete file, the last one wins, and neither removes the other's temporary file.
Every atomic write of the project goes through :func:`atomic_path` (the form for writers
that want a path: ``faiss.write_index``) or :func:`atomic_open` (a file object:
``torch.save``, ``np.save``/``np.savez``, which would append ``.npz`` to a path), and
:func:`write_text`, :func:`write_bytes` and :func:`write_json` on top of them.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def temporary_name(path: Path) -> Path:
    """A hidden name beside ``path``, unique to this process and this call."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (parent folders created); when the block ends
    without an exception the temporary file replaces ``path``. It is removed in any case."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """:func:`atomic_path` as an open file (``"wb"`` or ``"w"``); closed before the rename."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes a whole file: mode 'w' or 'wb', not {mode!r}")
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as f:
        yield f


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)


def write_json(path: str | Path, obj: Any, *, indent: int | None = None) -> None:
    """``obj`` as UTF-8 JSON (non-ASCII characters kept as they are)."""
    write_text(path, json.dumps(obj, ensure_ascii=False, indent=indent))
