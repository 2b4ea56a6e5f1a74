"""A streaming reader of one JSON text file: values decoded one at a time, with line numbers.

For files too large to hold whole (a full KdConv knowledge base, a corpus of one JSON array):
the file is read a chunk at a time and each value is decoded by :class:`json.JSONDecoder`'s
``raw_decode`` (C speed) from the buffer; the caller walks the structure around the values
(``{`` ``:`` ``,`` ``]`` ...) with :meth:`JsonStream.peek`, :meth:`JsonStream.take` and
:meth:`JsonStream.expect`. Errors name the file and the line: each caller gives the error
type of its layer (``error``), so that the reader needs nothing from above ``common``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

CHUNK_CHARS = 1 << 20
_BLANKS = re.compile(r"[ \t\n\r]*")  # JSON's whitespace


class JsonStreamError(ValueError):
    """The default ``error`` of a :class:`JsonStream`."""


class JsonStream:
    """Incremental reader of the text file ``f``, named ``source`` in error messages.

    ``line`` is the line of the current position (1 at the start). Errors are
    ``error("<source>:<line>: <reason>")``.
    """

    def __init__(
        self,
        f: IO[str],
        source: str | Path,
        *,
        chunk_chars: int = CHUNK_CHARS,
        error: Callable[[str], Exception] = JsonStreamError,
    ) -> None:
        if chunk_chars < 1:
            raise ValueError(f"chunk_chars must be at least 1, got {chunk_chars}")
        self.f, self.source, self.chunk_chars, self._error = f, source, chunk_chars, error
        self.buf, self.pos, self.line, self.eof = "", 0, 1, False
        self.decoder = json.JSONDecoder()

    def error(self, reason: str, line: int | None = None) -> Exception:
        """The error to raise for ``reason`` at ``line`` (default: the current line)."""
        return self._error(f"{self.source}:{self.line if line is None else line}: {reason}")

    def _fill(self) -> bool:
        """Read one more chunk (the text before the position is dropped); false at the end."""
        if self.eof:
            return False
        chunk = self.f.read(self.chunk_chars)
        if not chunk:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def _advance(self, new_pos: int) -> None:
        self.line += self.buf.count("\n", self.pos, new_pos)
        self.pos = new_pos

    def peek(self) -> str:
        """The next character that is not whitespace ('' at the end), the whitespace before
        it consumed."""
        while True:
            self._advance(_BLANKS.match(self.buf, self.pos).end())
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def take(self) -> str:
        """:meth:`peek`, and consume that character ('' at the end, which consumes nothing)."""
        char = self.peek()
        if char:
            self.pos += 1  # not a newline: the line stays
        return char

    def expect(self, char: str) -> None:
        """Consume ``char``, the next character that is not whitespace, or raise."""
        got = self.peek()
        if got != char:
            raise self.error(f"expected {char!r}, got {got or 'end of file'!r}")
        if got:
            self.pos += 1

    def at_end(self) -> bool:
        """Whether only whitespace is left."""
        return self.peek() == ""

    def value(self) -> tuple[Any, int]:
        """The next JSON value and the line it starts on."""
        self.peek()
        start = self.line
        while True:  # decode; on a value cut by the chunk's end, read more and retry
            try:
                obj, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                if self._fill():
                    continue
                line = self.line + self.buf.count("\n", self.pos, e.pos)
                raise self.error(f"invalid JSON: {e.msg}", line) from None
            # A number or literal cut by the chunk's end decodes short: make sure it ended.
            if end == len(self.buf) and self._fill():
                continue
            self._advance(end)
            return obj, start
