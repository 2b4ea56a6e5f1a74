"""Shared plumbing of the released-format readers: streaming JSON, field checks that name
the file, the record and the field, and frame features (``np.save`` arrays, pickles of
``torch.save``, and plain pickles from trusted locations).

Formats: docs/data-contracts.md, section "Corpora".

Every reader reports a bad record as one :class:`~model.data.schema.DataError` line such as
``/data/livebot/train-context.json:17: field 'time': expected a number, got "abc"``; a JSON
array element is located as ``file: record 17 (line 230)``.
"""

from __future__ import annotations

import io
import json
import logging
import math
import pickle
import pickletools
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from common.json_stream import CHUNK_CHARS, JsonStream
from model.data.schema import DataError

log = logging.getLogger(__name__)

#: Split names as the datasets spell them -> the canonical ``Video.split`` value.
SPLIT_ALIASES = {"train": "train", "dev": "dev", "val": "dev", "valid": "dev", "test": "test"}


def require_dir(path: str | Path, what: str) -> Path:
    root = Path(path)
    if not root.exists():
        raise DataError(f"{root}: no such directory (expected {what})")
    if not root.is_dir():
        raise DataError(f"{root}: not a directory (expected {what})")
    return root


def describe(value: Any) -> str:
    """A short JSON rendering of a bad value for an error message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def bad(loc: str, field: str, expected: str, value: Any) -> DataError:
    return DataError(f"{loc}: field {field!r}: expected {expected}, got {describe(value)}")


def as_record(value: Any, loc: str) -> dict:
    if not isinstance(value, dict):
        raise DataError(f"{loc}: expected a JSON object, got {describe(value)}")
    return value


def _present(rec: dict, field: str, loc: str) -> Any:
    if field not in rec:
        raise DataError(f"{loc}: field {field!r}: missing")
    return rec[field]


def number(rec: dict, field: str, loc: str, minimum: float | None = 0.0) -> float:
    """A finite JSON number (not a bool), at least ``minimum`` when given."""
    value = _present(rec, field, loc)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok:
        raise bad(loc, field, "a number", value)
    if minimum is not None and value < minimum:
        raise bad(loc, field, f"a number >= {minimum:g}", value)
    return float(value)


def count(rec: dict, field: str, loc: str) -> int:
    """A non-negative integer (an integral float such as ``3.0`` is accepted)."""
    value = _present(rec, field, loc)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise bad(loc, field, "a non-negative integer", value)
    if value < 0:
        raise bad(loc, field, "a non-negative integer", value)
    return int(value)


def text(rec: dict, field: str, loc: str, default: str | None = None) -> str:
    if field not in rec and default is not None:
        return default
    value = _present(rec, field, loc)
    if value is None and default is not None:
        return default
    if not isinstance(value, str):
        raise bad(loc, field, "a string", value)
    return value


def ident(rec: dict, field: str, loc: str) -> str:
    """An id given as a string or an integer, as a non-empty string."""
    value = _present(rec, field, loc)
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        raise bad(loc, field, "an id (string or integer)", value)
    return str(value).strip()


def as_second(value: Any) -> int | None:
    """``value`` as a whole second, or None when it is not one (a features lookup never
    raises for a bad second: that second simply has no feature)."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


def join_words(words: str) -> str:
    """Space-separated jieba words (LiveBot, MovieLC records) back to the comment text: their
    preprocessing removed the spaces of a comment before segmenting it."""
    return "".join(words.split())


def text_list(rec: dict, field: str, loc: str) -> list[str]:
    value = _present(rec, field, loc)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(loc, field, "a list of strings", value)
    return value


def load_json(path: Path) -> Any:
    """One whole JSON document (small files: indexes, per-video comment files)."""
    try:
        with path.open(encoding="utf-8-sig") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: missing") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def iter_json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` of each non-blank line of a JSON-lines file, streamed."""
    try:
        with path.open(encoding="utf-8-sig") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield lineno, json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{lineno}: invalid JSON: {e.msg}") from None
    except FileNotFoundError:
        raise DataError(f"{path}: missing") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason})") from None


def iter_json_array(path: Path, chunk_chars: int = CHUNK_CHARS) -> Iterator[tuple[int, int, Any]]:
    """``(index, line, value)`` of each element of a file holding one JSON array, streamed:
    the file is read ``chunk_chars`` at a time, never whole."""
    try:
        with path.open(encoding="utf-8-sig") as f:
            yield from _array_elements(
                JsonStream(f, path, chunk_chars=chunk_chars, error=DataError)
            )
    except FileNotFoundError:
        raise DataError(f"{path}: missing") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason})") from None


def _array_elements(s: JsonStream) -> Iterator[tuple[int, int, Any]]:
    if s.take() != "[":
        raise s.error("expected a JSON array of records")
    index = 0
    if s.peek() == "]":
        s.take()
    else:
        while True:
            value, line = s.value()
            yield index, line, value
            index += 1
            c = s.take()
            if c == "]":
                break
            if c == "":
                raise s.error("the JSON array ends early")
            if c != ",":
                raise s.error("expected ',' or ']' after a record")
    if not s.at_end():
        raise s.error("unexpected data after the JSON array")


def read_bytes(path: Path) -> bytes:
    """A whole file; a :class:`DataError` when it is missing or unreadable."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: missing") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None


def decode_text(path: Path, data: bytes) -> str:
    """``data`` as text: UTF-8 (a BOM dropped), or UTF-16 when a UTF-16 BOM says so."""
    try:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text ({e.reason} at byte {e.start})") from None


class RawComment(NamedTuple):
    """A comment as a comment file holds it, before the checks every format shares
    (:mod:`model.data.comment_files`): ``key`` is its id in the file (None when it has none),
    ``where`` its place for a message (``line 12``, ``element 3``)."""

    time_s: float
    text: str
    key: str | None
    where: str


#: ``skip(reason, where)``: count one record a comment-file reader does not keep.
SkipFn = Callable[[str, "str | None"], None]


def load_frames(path: Path) -> np.ndarray:
    """A ``(seconds, dim)`` array of frame features saved by ``np.save`` (Twitch clips, iQIYI),
    read without pickles; a :class:`DataError` when it is unreadable or not 2-d."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read frame features: {e}") from None
    if arr.ndim != 2:
        raise DataError(f"{path}: expected a (seconds, dim) array, got shape {arr.shape}")
    return arr


class PickledFeatures:
    """Frame features ``{video: {second: vector}}`` saved with ``torch.save`` (LiveBot's
    ``res18.pkl``, VideoIC's ``image.pkl``) or with plain ``pickle.dump`` (how some copies of
    MovieLC's ``movie101.pkl`` come), loaded on first use, not when the corpus is read.

    ``trusted=False`` loads with torch's default ``weights_only`` unpickler (tensors, dicts);
    ``trusted=True`` with ``weights_only=False``, which can run code from the file: the readers
    ask for it only for a file inside the directory the user named. A plain pickle (neither
    torch's zip format nor its legacy header) can run code just the same, so it is read with
    ``pickle.load`` when ``trusted``, and refused otherwise. ``aliases`` maps a video id
    to a second key to try (VideoIC: aid -> cid). :meth:`get` returns None for a missing video
    or second and never raises for them; an unreadable file is a :class:`DataError`.
    """

    def __init__(self, path: Path, trusted: bool, aliases: Mapping[str, str] | None = None) -> None:
        self.path, self.trusted = path, trusted
        self.aliases = dict(aliases or {})
        self._table: dict[str, dict] | None = None
        self._dim = 0
        self._warned = False

    @property
    def dim(self) -> int:
        self._load()
        return self._dim

    def get(self, video_id: str, second: int) -> np.ndarray | None:
        frames = self._load().get(str(video_id))
        if frames is None and str(video_id) in self.aliases:
            frames = self._table.get(self.aliases[str(video_id)])
        s = as_second(second)
        if s is None:
            return None
        vec = None if frames is None else frames.get(s, frames.get(str(s)))
        if vec is None:
            return None
        if hasattr(vec, "detach"):  # a torch tensor (LiveBot); VideoIC holds numpy arrays
            vec = vec.detach().numpy()
        arr = np.asarray(vec, dtype=np.float32).reshape(-1)
        if arr.shape[0] != self._dim:
            if not self._warned:
                log.warning(
                    "%s: vectors of %d values among %d-d ones", self.path, arr.size, self._dim
                )
                self._warned = True
            return None
        return arr

    def _load(self) -> dict[str, dict]:
        if self._table is None:
            self._table = self._read()
        return self._table

    def _read(self) -> dict[str, dict]:
        try:
            with warnings.catch_warnings():  # numpy 1.x pickles name numpy.core (deprecated)
                warnings.simplefilter("ignore", DeprecationWarning)
                raw = self._unpickle()
        except FileNotFoundError:
            raise DataError(f"{self.path}: missing") from None
        except DataError:
            raise
        except Exception as e:  # torch and pickle raise many types for a corrupt or foreign file
            raise DataError(f"{self.path}: cannot load frame features: {_first_line(e)}") from None
        if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
            raise DataError(f"{self.path}: expected {{video: {{second: vector}}}}")
        table = {str(k): v for k, v in raw.items()}
        first = next((v for frames in table.values() for v in frames.values()), None)
        self._dim = 0 if first is None else int(np.asarray(first).size)
        return table

    def _unpickle(self) -> object:
        import torch

        if not _plain_pickle(self.path):
            return torch.load(self.path, map_location="cpu", weights_only=not self.trusted)
        if not self.trusted:
            raise DataError(
                f"{self.path}: a plain pickle (pickle.dump), not a torch.save file: unpickling"
                " it can run code from the file, and the reader takes this file from an"
                " untrusted location (only feature files inside the corpus directory you name"
                " are unpickled, for the formats that need it), so it is not loaded; save the"
                " features with torch.save as tensors"
            )
        with self.path.open("rb") as f:
            return pickle.load(f)  # trusted: a file inside the directory the user named


#: How a ``torch.save`` file begins: a zip archive, or (the legacy format) a protocol-2 pickle
#: of torch's magic number 0x1950a86a20f9469cfc6c.
TORCH_HEADERS = (
    b"PK\x03\x04",
    b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little"),
)
#: The first opcode of a pickled dict: PROTO (protocol 2 and later), EMPTY_DICT (protocol 1),
#: MARK (protocol 0, ``(dp0``).
PICKLE_STARTS = ("PROTO", "EMPTY_DICT", "MARK")


def _plain_pickle(path: Path) -> bool:
    """Whether ``path`` is a pickle that ``torch.save`` did not write (a missing file raises
    FileNotFoundError; a file that is neither is left to torch.load, which names the problem)."""
    with path.open("rb") as f:
        head = f.read(64)
    if head.startswith(TORCH_HEADERS):
        return False
    try:
        first = next(pickletools.genops(io.BytesIO(head)))[0].name
    except (ValueError, StopIteration):  # not an opcode, or cut inside the first one
        return False
    return first in PICKLE_STARTS


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"
