"""Bilibili danmaku files as downloaders save them: the XML comment file in its two layouts
and the protobuf segments of the newer API, read into :class:`~model.data.fileio.RawComment`
records for :mod:`model.data.comment_files`; and a writer of the first XML layout.

XML, layout 1 (``comment.bilibili.com/<cid>.xml``, ``api.bilibili.com/x/v1/dm/list.so``;
bilibili-API-collect, docs/danmaku/danmaku_xml.md)::

    <?xml version="1.0" encoding="UTF-8"?>
    <i><chatserver>chat.bilibili.com</chatserver><chatid>CID</chatid><mission>0</mission>
       <maxlimit>N</maxlimit><state>0</state><real_name>0</real_name><source>k-v</source>
       <d p="TIME,MODE,SIZE,COLOR,CTIME,POOL,MIDHASH,DMID[,WEIGHT]">text</d> ... </i>

``TIME`` is seconds into the video (a float), ``MODE`` 1-3 scrolling, 4 bottom, 5 top,
6 reverse, 7 positioned ("advanced"), 8 scripted code, 9 BAS; ``DMID`` the comment's id.
Live recorders (BililiveRecorder, blrec) write the same ``p`` (``CTIME`` in milliseconds, a
``DMID`` of 0 when they have none) with ``user``/``uid`` attributes, and ``<gift>``, ``<sc>``
(super chat), ``<guard>`` and ``<toast>`` elements beside the ``<d>`` ones.

XML, layout 2 (version "2.0", the cache of Bilibili's Windows client: danmaku2ass issue #49,
read by its ``ReadCommentsBilibili2``)::

    <?xml version="2.0" encoding="UTF-8"?><i><oid>CID</oid>
       <d p="DMID,0,PROGRESS,MODE,SIZE,COLOR,CTIME,POOL,MIDHASH">text</d> ... </i>

``PROGRESS`` is milliseconds. The layout is decided once per file: layout 2 when the XML
declaration says ``version="2.0"``, else when the first ``p`` of 7 or more fields has a field 1
that is no mode (1-9) and a field 3 that is one (layout 1 has the mode in field 1, layout 2 a 0
there and the mode in field 3); otherwise layout 1.

Reading either layout: control characters (U+0000-U+001F but tab and newlines, U+007F), which
Bilibili's files contain and its own player deletes before parsing, are deleted; a file that is
still not well-formed XML is a :class:`DataError` naming its line. A document type or entity
declaration is refused. The text is the element's text as the XML parser unescapes it. A
``DMID`` of 0 or none leaves the comment without an id. Kept: modes 1-6; counted as skipped:
modes 7, 8 and 9 (no plain text), other modes, a ``p`` without a number for the time or the
mode, and every child of ``<i>`` that is neither ``<d>`` nor a metadata element.

Protobuf segments (``api.bilibili.com/x/v2/dm/web/seg.so?type=1&oid=CID&segment_index=N``,
one per 6 minutes of video, saved as ``.so`` or ``.bin``; bilibili-API-collect,
grpc_api/bilibili/community/service/dm/v1/dm.proto and docs/danmaku/danmaku_proto.md)::

    message DmSegMobileReply { repeated DanmakuElem elems = 1; ... }
    message DanmakuElem { int64 id = 1; int32 progress = 2; int32 mode = 3;
        int32 fontsize = 4; uint32 color = 5; string midHash = 6; string content = 7;
        int64 ctime = 8; int32 weight = 9; string action = 10; int32 pool = 11;
        string idStr = 12; int32 attr = 13; ... }

``progress`` is milliseconds. The wire format is decoded here (varints, length-delimited and
fixed-size fields; unknown fields skipped by their wire type); ``id`` (else ``idStr``) is the
comment's id. A segment whose framing is broken (a truncated file) is a :class:`DataError`; an
element that does not decode, or whose content is not UTF-8, is counted as skipped. An empty
segment holds no comments.
"""

from __future__ import annotations

import codecs
import math
import re
from pathlib import Path
from xml.parsers import expat
from xml.sax.saxutils import escape

from common.atomic import write_text
from model.data.fileio import RawComment, SkipFn
from model.data.schema import Comment, DataError

#: the modes of plain text (scrolling, bottom, top, reverse) and the reason the others are not
TEXT_MODES = frozenset(range(1, 7))
NOT_TEXT_MODES = {
    7: "mode 7 (positioned): not plain text",
    8: "mode 8 (scripted code): not plain text",
    9: "mode 9 (BAS): not plain text",
}
#: children of <i> that describe the file, not comments
METADATA = frozenset(
    {"chatserver", "chatid", "mission", "maxlimit", "state", "real_name", "source", "oid", "ds"}
)
#: (time field, scale to seconds, mode field, id field) of each XML layout
LAYOUTS = {1: (0, 1.0, 1, 7), 2: (2, 0.001, 3, 0)}
_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_ENCODING_TEXT = re.compile(r"""encoding\s*=\s*["'][A-Za-z0-9._-]+["']""")
_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 13)) + b"\x7f"
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def read_xml(path: Path, data: bytes, skip: SkipFn) -> list[RawComment]:
    """The ``<d>`` comments of a Bilibili XML file (either layout), in file order."""
    return _XmlReader(path, skip).read(data)


def _int(field: str) -> int | None:
    try:
        return int(field)
    except ValueError:
        return None


class _XmlReader:
    """Expat callbacks: each ``<d>`` directly under ``<i>`` becomes a record."""

    def __init__(self, path: Path, skip: SkipFn) -> None:
        self.path, self.skip = path, skip
        self.records: list[RawComment] = []
        self.depth = 0
        self.version2 = False
        self.layout: int | None = None
        self.open_d: tuple[int, str | None] | None = None  # line and p of the <d> being read
        self.text: list[str] = []
        self.lines_before = 0

    def read(self, data: bytes) -> list[RawComment]:
        data = self._utf8(data)
        body = data.lstrip()  # a declaration after blank lines is not well-formed
        self.lines_before = data[: len(data) - len(body)].count(b"\n")
        parser = expat.ParserCreate()
        parser.XmlDeclHandler = self._declaration
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._characters
        parser.StartDoctypeDeclHandler = self._refuse
        parser.EntityDeclHandler = self._refuse
        self.parser = parser
        try:
            parser.Parse(body.translate(None, _CONTROL), True)
        except expat.ExpatError as e:
            message = expat.errors.messages[e.code]
            line = e.lineno + self.lines_before
            raise DataError(f"{self.path}:{line}: not well-formed XML: {message}") from None
        return self.records

    def _utf8(self, data: bytes) -> bytes:
        """``data`` in UTF-8 without a BOM (expat reads no multi-byte encoding but UTF-8 and
        UTF-16; the deleted control bytes would break UTF-16)."""
        if data.startswith(b"\xef\xbb\xbf"):
            return data[3:]
        declared = _ENCODING.search(data[:200].split(b">", 1)[0])
        encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8"
        encoding = declared.group(1).decode() if declared and encoding != "utf-16" else encoding
        try:
            if codecs.lookup(encoding).name == "utf-8":
                return data
            text = data.decode(encoding)
        except LookupError:
            raise DataError(f"{self.path}: XML in an unknown encoding {encoding!r}") from None
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise DataError(f"{self.path}:{line}: not {encoding} text ({e.reason})") from None
        text = text.lstrip("\ufeff")
        head, rest = text[:200], text[200:]
        return (_ENCODING_TEXT.sub('encoding="UTF-8"', head, count=1) + rest).encode("utf-8")

    def _line(self) -> int:
        return self.parser.CurrentLineNumber + self.lines_before

    def _refuse(self, *_args: object) -> None:
        raise DataError(f"{self.path}:{self._line()}: a DTD or entity declaration: refused")

    def _declaration(self, version: str | None, _encoding: object, _standalone: int) -> None:
        self.version2 = version == "2.0"

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        if self.depth == 1 and name != "i":
            raise DataError(f"{self.path}:{self._line()}: root <{name}>: not Bilibili's <i>")
        if self.depth != 2:
            return
        if name == "d":
            self.open_d, self.text = (self._line(), attrs.get("p")), []
        elif name not in METADATA and not name.startswith("BililiveRecorder"):
            self.skip(f"<{name}> element: not a comment", f"line {self._line()}")

    def _characters(self, data: str) -> None:
        if self.open_d is not None:
            self.text.append(data)

    def _end(self, name: str) -> None:
        if self.depth == 2 and name == "d" and self.open_d is not None:
            line, p = self.open_d
            self.open_d = None
            self._record(f"line {line}", p, "".join(self.text))
        self.depth -= 1

    def _record(self, where: str, p: str | None, text: str) -> None:
        if p is None:
            return self.skip("<d> without a p attribute", where)
        fields = p.split(",")
        time_at, scale, mode_at, id_at = LAYOUTS[self._layout(fields)]
        try:
            time_s = float(fields[time_at]) * scale
        except (IndexError, ValueError):
            time_s = math.nan
        if not math.isfinite(time_s):
            return self.skip(f"p field {time_at} (time): not a number", where)
        mode = _int(fields[mode_at]) if len(fields) > mode_at else None
        if mode is None:
            return self.skip(f"p field {mode_at} (mode): not an integer", where)
        if mode not in TEXT_MODES:
            return self.skip(NOT_TEXT_MODES.get(mode, f"mode {mode}: not a Bilibili mode"), where)
        key = fields[id_at].strip() if len(fields) > id_at else ""
        self.records.append(RawComment(time_s, text, None if key in ("", "0") else key, where))

    def _layout(self, fields: list[str]) -> int:
        if self.layout is None and (self.version2 or len(fields) >= 4):
            shape2 = len(fields) >= 7 and _int(fields[1]) not in range(1, 10)
            shape2 = shape2 and _int(fields[3]) in range(1, 10)
            self.layout = 2 if self.version2 or shape2 else 1
        return self.layout or 1


def write_bilibili_xml(comments: list[Comment], path: str | Path) -> None:
    """``comments`` as a layout-1 Bilibili XML file (atomically): mode 1 (scrolling), size 25,
    white, dmid 1, 2, ... in the given order; text XML-escaped, characters XML cannot hold
    dropped. :func:`read_xml` reads it back (times to 10 microseconds)."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<i>",
        "\t<chatserver>chat.bilibili.com</chatserver>",
        "\t<chatid>0</chatid>",
        "\t<mission>0</mission>",
        f"\t<maxlimit>{len(comments)}</maxlimit>",
        "\t<state>0</state>",
        "\t<real_name>0</real_name>",
        "\t<source>k-v</source>",
    ]
    for dmid, c in enumerate(comments, 1):
        text = escape(_XML_INVALID.sub("", c.text))
        lines.append(f'\t<d p="{c.time_s:.5f},1,25,16777215,0,0,0,{dmid}">{text}</d>')
    lines.append("</i>")
    write_text(path, "\n".join(lines) + "\n")


# --- protobuf segments -------------------------------------------------------------------------


class _Malformed(ValueError):
    """Bytes that are not the protobuf wire format."""


#: DanmakuElem fields read: number -> (name, wire type)
ELEM_FIELDS = {
    1: ("id", 0),
    2: ("progress", 0),
    3: ("mode", 0),
    7: ("content", 2),
    12: ("idStr", 2),
}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    start, result, shift = pos, 0, 0
    while True:
        if pos >= len(buf):
            raise _Malformed(f"a varint at byte {start} runs past the end")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Malformed(f"a varint at byte {start} is longer than 10 bytes")


def _fields(buf: bytes, base: int = 0) -> list[tuple[int, int, int | bytes, int]]:
    """``(field number, wire type, value, offset)`` of each field of one message; offsets
    count from the file's start (``base`` is the message's)."""
    out, pos = [], 0
    while pos < len(buf):
        at = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed(f"field number 0 at byte {base + at}")
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire in (1, 2, 5):
            if wire == 2:
                size, pos = _varint(buf, pos)
            else:
                size = 8 if wire == 1 else 4
            if pos + size > len(buf):
                raise _Malformed(f"field {number} at byte {base + at} runs past the end")
            value = buf[pos : pos + size]
            pos += size
        else:
            raise _Malformed(f"wire type {wire} (field {number}) at byte {base + at}")
        out.append((number, wire, value, base + at))
    return out


def _signed(value: int, bits: int) -> int:
    """A varint read as a two's-complement int32/int64 (negatives take 10 bytes)."""
    value &= (1 << 64) - 1
    value = value - (1 << 64) if value >= 1 << 63 else value
    if bits == 32:
        value &= (1 << 32) - 1
        value = value - (1 << 32) if value >= 1 << 31 else value
    return value


def _segment(data: bytes) -> list[tuple[int, bytes]]:
    """``(offset, bytes)`` of each DanmakuElem of a DmSegMobileReply."""
    elems = []
    for number, wire, value, at in _fields(data):
        if number == 1:
            if wire != 2:
                raise _Malformed(f"field 1 (elems) at byte {at} has wire type {wire}, not 2")
            elems.append((at, value))
    return elems


def _elem(buf: bytes, base: int) -> dict[str, int | bytes]:
    elem: dict[str, int | bytes] = {}
    for number, wire, value, at in _fields(buf, base):
        if number in ELEM_FIELDS:
            name, expected = ELEM_FIELDS[number]
            if wire != expected:
                raise _Malformed(f"field {number} ({name}) at byte {at} has wire type {wire}")
            elem[name] = value
    return elem


def looks_like_protobuf(data: bytes) -> bool:
    """Whether ``data`` decodes as a DmSegMobileReply with at least one DanmakuElem content."""
    try:
        elems = _segment(data)
    except _Malformed:
        return False
    for offset, buf in elems:
        try:
            if _elem(buf, offset).get("content"):
                return True
        except _Malformed:
            continue
    return False


def read_protobuf(path: Path, data: bytes, skip: SkipFn) -> list[RawComment]:
    """The comments of one protobuf segment, in file order."""
    try:
        elems = _segment(data)
    except _Malformed as e:
        raise DataError(f"{path}: not a Bilibili protobuf segment: {e}") from None
    records = []
    for n, (offset, buf) in enumerate(elems):
        where = f"element {n} (byte {offset})"
        try:
            elem = _elem(buf, offset)
        except _Malformed as e:
            skip("DanmakuElem that does not decode", f"element {n}: {e}")
            continue
        mode = _signed(int(elem.get("mode", 0)), 32)
        if mode not in TEXT_MODES:
            skip(NOT_TEXT_MODES.get(mode, f"mode {mode}: not a Bilibili mode"), where)
            continue
        try:
            text = bytes(elem.get("content", b"")).decode("utf-8")
        except UnicodeDecodeError:
            skip("content: not UTF-8", where)
            continue
        key = str(_signed(int(elem["id"]), 64)) if elem.get("id") else None
        if key is None and elem.get("idStr"):
            key = bytes(elem["idStr"]).decode("utf-8", "replace").strip() or None
        time_s = _signed(int(elem.get("progress", 0)), 32) / 1000
        records.append(RawComment(time_s, text, key, where))
    return records
