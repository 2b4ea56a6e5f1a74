"""Comment files as common downloaders save them, recognised from their content and read into
:class:`~model.data.schema.Comment` lists; the comments of one video may come in several files
(Bilibili's protobuf segments). Formats (docs/data-contracts.md, section "Comment files"):

==================== ===========================================================================
``bilibili-xml``     Bilibili's XML comment file, both layouts (:mod:`model.data.bilibili_files`)
``bilibili-protobuf`` Bilibili's protobuf segments ``seg.so`` (:mod:`model.data.bilibili_files`)
``ass``              danmaku2ass / biliass ASS scripts (:mod:`model.data.subtitle_files`)
``twitch-downloader`` TwitchDownloader's chat JSON (:mod:`model.data.chat_files`)
``chat-downloader``  chat-downloader's JSON array (:mod:`model.data.chat_files`)
``youtube-live-chat`` yt-dlp's ``*.live_chat.json`` lines (:mod:`model.data.chat_files`)
==================== ===========================================================================

Detection looks at the first 64 KiB of the content (a ``.gz`` file unpacked), never at the
name: an XML document whose root is ``<i>``; a script starting ``[Script Info]``; JSON whose
first line is a YouTube ``replayChatItemAction``, an object with ``content_offset_seconds`` or
starting with ``"FileInfo"`` (TwitchDownloader), an array of objects with ``message_type`` and
``time_in_seconds`` or ``message_id`` (chat-downloader); else the whole file decoding as a
``DmSegMobileReply`` with at least one ``DanmakuElem`` content. An empty file is an empty
protobuf segment when it is named ``*.so`` or ``*.bin`` (there is no content to tell).

Every format then shares these checks: a comment is kept with its text stripped of surrounding
white space; counted as skipped are an empty text, a negative time (before the video starts),
and a comment whose id (Bilibili's dmid, a chat message id) repeats one already read from the
same video. Skips are aggregated per file and reason (:class:`Skip`), never dropped silently.
Comments are sorted by time (file order among equal times); ``likes`` is None: none of these
formats carries like counts.

The writers :func:`write_ass` and :func:`write_bilibili_xml` and the subtitle reader
:func:`read_subtitles` are re-exported from their modules.
"""

from __future__ import annotations

import gzip
import math
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from model.data.bilibili_files import (
    looks_like_protobuf,
    read_protobuf,
    read_xml,
    write_bilibili_xml,
)
from model.data.chat_files import (
    load_json,
    read_chat_downloader,
    read_twitch_downloader,
    read_youtube_live_chat,
    sniff_json,
)
from model.data.fileio import RawComment, SkipFn, read_bytes
from model.data.schema import Comment, DataError
from model.data.subtitle_files import looks_like_ass, read_ass, read_subtitles, write_ass

__all__ = [
    "COMMENT_FORMATS",
    "CommentFile",
    "Skip",
    "detect_format",
    "read_comment_file",
    "read_comment_files",
    "read_subtitles",
    "write_ass",
    "write_bilibili_xml",
]

COMMENT_FORMATS = (
    "bilibili-xml",
    "bilibili-protobuf",
    "ass",
    "twitch-downloader",
    "chat-downloader",
    "youtube-live-chat",
)
READERS: dict[str, Callable[[Path, bytes, SkipFn], list[RawComment]]] = {
    "bilibili-xml": read_xml,
    "bilibili-protobuf": read_protobuf,
    "ass": read_ass,
    "twitch-downloader": read_twitch_downloader,
    "chat-downloader": read_chat_downloader,
    "youtube-live-chat": read_youtube_live_chat,
}
HEAD_BYTES = 64 * 1024
SEGMENT_SUFFIXES = (".so", ".bin")
_GZIP = b"\x1f\x8b"
_XML_ROOT = re.compile(r"(?:<\?.*?\?>\s*|<!--.*?-->\s*)*<i[\s/>]", re.S)


@dataclass(frozen=True)
class Skip:
    """Records of one file not kept for one reason: ``reason`` names it and, where the format
    has places, the first one (``"mode 7 (positioned): not plain text (first at line 12)"``)."""

    file: str
    reason: str
    count: int = 1


@dataclass
class CommentFile:
    """The comments of one video, read from one file or several of one format."""

    path: Path
    format: str  # one of COMMENT_FORMATS
    comments: list[Comment]  # sorted by time
    skipped: list[Skip]


class _Tally:
    """Skips of one file, counted per reason, each with its first place."""

    def __init__(self, file: Path) -> None:
        self.file = str(file)
        self.counts: dict[str, list] = {}

    def add(self, reason: str, where: str | None = None) -> None:
        entry = self.counts.setdefault(reason, [0, where])
        entry[0] += 1

    def skips(self) -> list[Skip]:
        out = []
        for reason, (count, where) in self.counts.items():
            if where is not None:
                reason = f"{reason} ({'first at ' if count > 1 else ''}{where})"
            out.append(Skip(self.file, reason, count))
        return out


def _unpack(path: Path, data: bytes) -> bytes:
    if not data.startswith(_GZIP):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: a gzip file that does not unpack: {e}") from None


def _head(path: Path) -> bytes:
    """The first :data:`HEAD_BYTES` of the content (unpacked from gzip); b"" when a gzip file
    does not unpack."""
    try:
        with path.open("rb") as f:
            head = f.read(HEAD_BYTES)
        if head.startswith(_GZIP):
            with gzip.open(path, "rb") as f:
                head = f.read(HEAD_BYTES)
    except FileNotFoundError:
        raise DataError(f"{path}: missing") from None
    except (EOFError, zlib.error, gzip.BadGzipFile):
        return b""
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    return head


def _head_text(head: bytes) -> str:
    """The start of the text (UTF-8, or UTF-16 after its BOM), BOM and white space removed."""
    utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
    text = head[: len(head) // 2 * 2].decode("utf-16", "replace") if utf16 else None
    text = head.decode("utf-8", "replace") if text is None else text
    return text.lstrip("\ufeff \t\r\n")


def _sniff(path: Path, head: bytes, whole: Callable[[], bytes]) -> str | None:
    if not head.strip():
        empty = not whole()
        return "bilibili-protobuf" if empty and path.suffix.lower() in SEGMENT_SUFFIXES else None
    text = _head_text(head)
    if _XML_ROOT.match(text):
        return "bilibili-xml"
    if looks_like_ass(text):
        return "ass"
    found = sniff_json(text)
    if found is not None:
        return found
    return "bilibili-protobuf" if looks_like_protobuf(whole()) else None


def detect_format(path: str | Path) -> str | None:
    """The format of the comment file at ``path`` (one of :data:`COMMENT_FORMATS`) from its
    content, or None when it is no comment file these readers know. A missing or unreadable
    file is a :class:`DataError`."""
    path = Path(path)
    cache: list[bytes] = []

    def whole() -> bytes:
        if not cache:
            try:
                cache.append(_unpack(path, read_bytes(path)))
            except DataError:
                cache.append(b"")
        return cache[0]

    return _sniff(path, _head(path), whole)


def _ignore(_reason: str, _where: str | None = None) -> None:
    """A skip callback for parsing only to find the error."""


def _unknown(path: Path, data: bytes) -> DataError:
    """Why ``data`` is no comment file: the parse error of the format it resembles."""
    text = _head_text(data[:HEAD_BYTES])
    if not data.strip():
        return DataError(f"{path}: empty file")
    if text.startswith("<"):
        read_xml(path, data, _ignore)  # raises for XML that is not well-formed or not <i>
        return DataError(f"{path}: XML of no known comment layout")
    if text.startswith(("{", "[")):
        load_json(path, data)  # raises for invalid JSON
        return DataError(
            f'{path}: JSON of no known chat layout (TwitchDownloader {{"comments": [...]}}, '
            "chat-downloader [{message_type, time_in_seconds, ...}], yt-dlp live_chat lines)"
        )
    try:
        data[:HEAD_BYTES].decode("utf-8")
        binary = False
    except UnicodeDecodeError as e:
        binary = e.start < HEAD_BYTES - 4  # not a character cut at the end of the head
    if binary or path.suffix.lower() in SEGMENT_SUFFIXES:
        read_protobuf(path, data, _ignore)  # raises for a broken (truncated) segment
        return DataError(f"{path}: protobuf without DanmakuElem contents: no Bilibili segment")
    return DataError(f"{path}: not a comment file of a known format ({', '.join(COMMENT_FORMATS)})")


def read_comment_file(path: str | Path) -> CommentFile:
    """The comments of one comment file. A file of no known format, or one that does not
    decode or parse as its format, is a :class:`DataError` naming it (and the line where the
    format has lines); a bad record inside a good file is a :class:`Skip`."""
    return read_comment_files([path])


def read_comment_files(paths: Sequence[str | Path]) -> CommentFile:
    """The comments of one video kept in several files of one format (Bilibili's segments
    ``1.so``, ``2.so``, ...): merged, ids de-duplicated across the files, sorted by time;
    ``path`` and ``format`` are the first file's. Files of two formats are a
    :class:`DataError`."""
    if not paths:
        raise DataError("read_comment_files: no files given")
    first_format: str | None = None
    comments: list[Comment] = []
    skipped: list[Skip] = []
    seen: set[str] = set()
    for path in map(Path, paths):
        data = _unpack(path, read_bytes(path))
        fmt = _sniff(path, data[:HEAD_BYTES], lambda data=data: data)
        if fmt is None:
            raise _unknown(path, data)
        if first_format is None:
            first_format = fmt
        elif fmt != first_format:
            raise DataError(
                f"{path}: {fmt}, but {paths[0]} is {first_format}: "
                "the comment files of one video must be of one format"
            )
        tally = _Tally(path)
        for raw in READERS[fmt](path, data, tally.add):
            kept = _check(raw, seen, tally)
            if kept is not None:
                comments.append(kept)
        skipped += tally.skips()
    comments.sort(key=lambda c: c.time_s)
    return CommentFile(Path(paths[0]), first_format, comments, skipped)


def _check(raw: RawComment, seen: set[str], tally: _Tally) -> Comment | None:
    text = raw.text.strip()
    if not math.isfinite(raw.time_s):
        tally.add("time: not a finite number", raw.where)
    elif raw.time_s < 0:
        tally.add("negative time (before the video starts)", raw.where)
    elif not text:
        tally.add("empty text", raw.where)
    elif raw.key is not None and raw.key in seen:
        tally.add("duplicate id", raw.where)
    else:
        if raw.key is not None:
            seen.add(raw.key)
        return Comment(raw.time_s, text)
    return None
