"""Subtitle files through pysubs2: subtitles (``.srt``, ``.ass``/``.ssa``, ``.vtt``) as
:class:`~model.data.schema.Segment` lines, danmaku ASS files as comments, and a danmaku ASS
writer.

A danmaku ASS file is what danmaku2ass (m13253/danmaku2ass) and biliass (yutto-dev/biliass)
make of a comment file: an ordinary Advanced SubStation Alpha script, ``[Script Info]``
(``PlayResX``/``PlayResY``), ``[V4+ Styles]`` (one style), ``[Events]`` with one ``Dialogue``
per comment::

    Dialogue: 2,0:00:12.34,0:00:20.34,Danmaku2ASS,,0000,0000,0000,,{\\move(1920, 36, -200, 36)}text

Read as comments, a ``Dialogue`` gives its start (centiseconds) and its text; ``Comment``
events and drawings (``\\p1``) are counted as skipped. Text is the event's text with the
override blocks (``{...}``) removed, ``\\N``, ``\\n`` and ``\\h`` read as a space, and the
escaped braces ``\\{`` ``\\}`` as braces. Subtitles are read the same way, each line a
``Segment(start, end, text)``, sorted by start, then end.

:func:`write_ass` writes a playable overlay in danmaku2ass's layout: every comment scrolls
right to left across the screen for ``duration_s`` seconds (``\\move`` from the right edge
until its tail leaves on the left) in one row of the screen; a comment goes to the first row
where it neither overlaps the previous comment at its start nor catches it up before that one
leaves (the widths estimated from the characters: full width for East Asian wide ones), else to
the row whose last comment started earliest. The font is "Microsoft YaHei" (CJK-capable), white
with a dark outline, slightly transparent.
"""

from __future__ import annotations

import math
import re
import unicodedata
import warnings
from pathlib import Path

import pysubs2

from common.atomic import write_text
from model.data.fileio import RawComment, SkipFn, decode_text, read_bytes
from model.data.schema import Comment, DataError, Segment

SUBTITLE_FORMATS = ("srt", "ass", "ssa", "vtt")
FONT = "Microsoft YaHei"
#: an override block, or an escape outside one (\N \n \h \{ \}, and the writer's "\\" + ZWSP)
_ASS_TOKEN = re.compile(r"\{[^}]*\}|\\([Nnh{}]|\u200b)")
_ASS_HEAD = re.compile(r"\[Script Info\]", re.I)
_STYLE_FORMAT = (
    "Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, "
    "Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, "
    "Shadow, Alignment, MarginL, MarginR, MarginV, Encoding"
)


def looks_like_ass(head: str) -> bool:
    """Whether text starting with ``head`` (BOM and leading white space removed) is an
    SSA/ASS script."""
    return _ASS_HEAD.match(head) is not None


def plain_text(ass_text: str) -> str:
    """The visible text of an ASS event's text, on one line, stripped."""

    def token(m: re.Match) -> str:
        escaped = m.group(1)
        if escaped is None:
            return ""  # an override block
        return {"{": "{", "}": "}", "\u200b": "\\"}.get(escaped, " ")

    return _ASS_TOKEN.sub(token, ass_text).strip()


def _parse(path: Path, text: str, format_: str | None) -> pysubs2.SSAFile:
    try:
        with warnings.catch_warnings():  # a style field it cannot parse: pysubs2's default
            warnings.simplefilter("ignore", RuntimeWarning)
            subs = pysubs2.SSAFile.from_string(text, format_=format_)
    except Exception as e:  # pysubs2 raises many types for a damaged file
        raise DataError(f"{path}: cannot read as subtitles: {e}") from None
    if subs.format not in SUBTITLE_FORMATS:
        names = ", ".join(SUBTITLE_FORMATS)
        raise DataError(f"{path}: subtitles in pysubs2's {subs.format!r}, not one of {names}")
    return subs


def read_ass(path: Path, data: bytes, skip: SkipFn) -> list[RawComment]:
    """The comments of a danmaku ASS file, in file order."""
    records = []
    for n, event in enumerate(_parse(path, decode_text(path, data), None)):
        where = f"event {n}"
        if event.is_comment:
            skip("Comment event: not shown", where)
        elif event.is_drawing:
            skip("drawing (\\p): not text", where)
        else:
            records.append(RawComment(event.start / 1000, plain_text(event.text), None, where))
    return records


def read_subtitles(path: str | Path) -> list[Segment]:
    """The lines of a subtitle file (SRT, ASS/SSA, WebVTT; the format from the content), their
    override tags removed, sorted; comment events, drawings and empty lines left out."""
    path = Path(path)
    subs = _parse(path, decode_text(path, read_bytes(path)), None)
    segments = []
    for event in subs:
        text = plain_text(event.text)
        if text and not event.is_comment and not event.is_drawing:
            segments.append(Segment(event.start / 1000, event.end / 1000, text))
    segments.sort(key=lambda s: (s.start_s, s.end_s))
    return segments


def _timestamp(seconds: float) -> str:
    cs = round(seconds * 100)
    return f"{cs // 360000}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def _escape(text: str) -> str:
    text = text.replace("\\", "\\\u200b").replace("{", "\\{").replace("}", "\\}")
    return re.sub(r"\r\n|\r|\n", r"\\N", text)


def _width(text: str, font_size: int) -> float:
    wide = sum(unicodedata.east_asian_width(ch) in "WF" for ch in text)
    return (wide + 0.55 * (len(text) - wide)) * font_size


def _row(rows: list[tuple[float, float] | None], t: float, w: float, width: int, d: float) -> int:
    """The row for a comment of width ``w`` entering at ``t``; ``rows`` holds each row's last
    comment as (start, width)."""
    for i, last in enumerate(rows):
        if last is None:
            return i
        t0, w0 = last
        entered = t0 + d * w0 / (width + w0)  # its tail has left the right edge
        caught = t + d * width / (width + w) < t0 + d  # we reach the left edge before it leaves
        if t >= entered and not caught:
            return i
    return min(range(len(rows)), key=lambda i: rows[i][0])


def write_ass(
    comments: list[Comment],
    path: str | Path,
    *,
    width: int = 1920,
    height: int = 1080,
    duration_s: float = 8.0,
) -> None:
    """``comments`` as a scrolling danmaku overlay for a ``width`` x ``height`` video, each on
    screen for ``duration_s`` seconds (written atomically, UTF-8 with a BOM as danmaku2ass
    writes it). Times below 0 or not finite are a :class:`ValueError`."""
    font_size = max(12, round(height / 22))
    row_height = font_size + max(2, font_size // 8)
    rows: list[tuple[float, float] | None] = [None] * max(1, height // row_height)
    lines = [
        "[Script Info]",
        "; Danmaku overlay written by model.data.subtitle_files.write_ass",
        "ScriptType: v4.00+",
        f"PlayResX: {width}",
        f"PlayResY: {height}",
        f"Aspect Ratio: {width}:{height}",
        "Collisions: Normal",
        "WrapStyle: 2",
        "ScaledBorderAndShadow: yes",
        "YCbCr Matrix: TV.601",
        "",
        "[V4+ Styles]",
        f"Format: {_STYLE_FORMAT}",
        f"Style: Danmaku, {FONT}, {font_size}, &H33FFFFFF, &H33FFFFFF, &H33000000, &H33000000, "
        f"0, 0, 0, 0, 100, 100, 0.00, 0.00, 1, {max(1, round(font_size / 25))}, 0, 7, 0, 0, 0, 0",
        "",
        "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
    ]
    for c in sorted(comments, key=lambda c: c.time_s):
        if not math.isfinite(c.time_s) or c.time_s < 0:
            raise ValueError(f"write_ass: comment time {c.time_s} is not a time in the video")
        w = _width(c.text, font_size)
        row = _row(rows, c.time_s, w, width, duration_s)
        rows[row] = (c.time_s, w)
        y = row * row_height
        move = f"{{\\move({width}, {y}, {-math.ceil(w)}, {y})}}"
        start, end = _timestamp(c.time_s), _timestamp(c.time_s + duration_s)
        lines.append(f"Dialogue: 2,{start},{end},Danmaku,,0000,0000,0000,,{move}{_escape(c.text)}")
    write_text(path, "\n".join(lines) + "\n", encoding="utf-8-sig")
