"""Streaming parsers for the knowledge-graph sources (DESIGN.md section 2).

Every parser yields :class:`Triple` or :class:`BadRow` items in file order, with the file and
line of each, in constant memory (Ownthink is 140,919,781 lines). Bad rows are yielded, never
dropped: the loader counts and reports them and stops on them only with ``--strict``.

- Ownthink: ``ownthink_v2.csv``, header ``实体,属性,值``. Values hold commas, quotes and
  newlines, so rows are parsed with :mod:`csv` (KLVCG's scripts ``split(',')`` and silently
  lose such rows).
- FilmKG: the KdConv ``kb_film.json`` schema ``{head: [[head, relation, tail], ...]}``, read
  one head at a time so a full KB never needs to fit in memory.
- RDF through rdflib: N-Triples line by line (streaming, a bad line is a bad row), Turtle and
  JSON-LD parsed whole (rdflib's parsers for them are not incremental).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from urllib.parse import unquote

from kg.triples import BadRow, KGError, Triple

KG_KINDS = ("filmkg", "ownthink", "rdf")
OWNTHINK_HEADER = ["实体", "属性", "值"]
RDF_FORMATS = {
    ".nt": "nt",
    ".ntriples": "nt",
    ".ttl": "turtle",
    ".turtle": "turtle",
    ".jsonld": "json-ld",
    ".json-ld": "json-ld",
}
#: Namespace of the IRIs the project writes on RDF export (see kg.rdf); read back losslessly.
ENTITY_NS = "urn:danmaku-kg:entity:"
RELATION_NS = "urn:danmaku-kg:relation:"

Record = Triple | BadRow
_SURROGATE = re.compile("[\udc80-\udcff]")  # undecodable bytes, as surrogateescape reads them
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # no UTF-8 can store one
_JSON_CHUNK = 1 << 20

# csv refuses fields over 128 KiB by default; Ownthink descriptions can be long.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise KGError(f"{path}: no such file")
    if not path.is_file():
        raise KGError(f"{path}: not a regular file")


def _triple_or_bad(head: str, relation: str, tail: str, source: str, line: int) -> Record:
    head, relation, tail = head.strip(), relation.strip(), tail.strip()
    if not head:
        return BadRow(source, line, "empty head")
    if not relation:
        return BadRow(source, line, "empty relation")
    if not tail:
        return BadRow(source, line, "empty tail")
    if _LONE_SURROGATE.search(head + relation + tail):  # a lone "\ud800" escape (JSON, RDF)
        return BadRow(source, line, "not valid Unicode (a lone surrogate)")
    return Triple(head, relation, tail, source, line)


def _undecodable(*fields: str) -> bool:
    return any(_SURROGATE.search(f) for f in fields)


class _CheckedText:
    """A text stream over a binary file that notes whether any undecodable byte was seen.

    Decoding is strict (C speed) until the first chunk that is not valid UTF-8; from then on
    it falls back to ``surrogateescape`` and rows are checked one by one. Valid files (the
    normal case) thus pay nothing for the check.
    """

    def __init__(self, raw, chunk: int = 1 << 20) -> None:
        self.raw, self.chunk, self.dirty = raw, chunk, False
        self.carry, self.first = b"", True

    def chunks(self) -> Iterator[str]:
        while True:
            data = self.raw.read(self.chunk)
            if not data:
                if self.carry:
                    yield self._decode(self.carry)
                return
            data = self.carry + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # a line longer than the chunk: keep reading
                self.carry = data
                continue
            self.carry = data[cut:]
            yield self._decode(data[:cut])

    def _decode(self, data: bytes) -> str:
        if self.first:
            data, self.first = data.removeprefix(b"\xef\xbb\xbf"), False  # a UTF-8 BOM
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            self.dirty = True
            return data.decode("utf-8", "surrogateescape")

    def lines(self) -> Iterator[str]:
        """Lines as ``open(newline='')`` would give them (csv needs untranslated newlines)."""
        return chain.from_iterable(io.StringIO(t, newline="") for t in self.chunks())


def read_ownthink(path: str | Path) -> Iterator[Record]:
    """Rows of an Ownthink CSV (``实体,属性,值``; the header line is optional)."""
    path = Path(path)
    _check_file(path)
    source = str(path)
    with path.open("rb") as raw:
        text = _CheckedText(raw)
        reader = csv.reader(text.lines())
        last_line = 0
        try:
            for row in reader:
                line, last_line = last_line + 1, reader.line_num
                if len(row) != 3:
                    if not row or row == [""]:
                        continue  # a blank line carries no data
                    yield BadRow(source, line, f"expected 3 columns (实体,属性,值), got {len(row)}")
                elif text.dirty and _undecodable(*row):
                    yield BadRow(source, line, "undecodable bytes (not UTF-8)")
                elif line == 1 and [c.strip() for c in row] == OWNTHINK_HEADER:
                    continue
                else:  # _triple_or_bad inlined: this is the hot loop of a 140 M-row load
                    head, relation, tail = row[0].strip(), row[1].strip(), row[2].strip()
                    if head and relation and tail:
                        yield Triple(head, relation, tail, source, line)
                    else:
                        yield _triple_or_bad(head, relation, tail, source, line)
        except csv.Error as e:
            yield BadRow(source, last_line + 1, f"CSV syntax: {e}")


class _JsonStream:
    """Incremental reader of one JSON file: values decoded one at a time with line numbers."""

    def __init__(self, f, source: str) -> None:
        self.f, self.source = f, source
        self.buf, self.pos, self.line, self.eof = "", 0, 1, False
        self.decoder = json.JSONDecoder()

    def _fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.f.read(_JSON_CHUNK)
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
        """The next non-space character ('' at end of file)."""
        while True:
            i = self.pos
            while i < len(self.buf) and self.buf[i] in " \t\r\n":
                i += 1
            self._advance(i)
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def expect(self, char: str) -> None:
        got = self.peek()
        if got != char:
            raise KGError(
                f"{self.source}:{self.line}: expected {char!r}, got {got or 'end of file'!r}"
            )
        self._advance(self.pos + 1)

    def value(self) -> tuple[object, int]:
        """The next JSON value and the line it starts on."""
        self.peek()
        start = self.line
        while True:  # decode; on a value cut by the chunk edge, read more and retry
            try:
                obj, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                if self._fill():
                    continue
                line = self.line + self.buf.count("\n", self.pos, e.pos)
                raise KGError(f"{self.source}:{line}: invalid JSON: {e.msg}") from None
            # A number or literal cut by the chunk edge decodes short: make sure it ended.
            if end == len(self.buf) and self._fill():
                continue
            self._advance(end)
            return obj, start


def read_filmkg(path: str | Path) -> Iterator[Record]:
    """Triples of a KdConv ``kb_*.json`` file: ``{head: [[head, relation, tail], ...]}``."""
    path = Path(path)
    _check_file(path)
    source = str(path)
    with path.open(encoding="utf-8-sig", errors="surrogateescape") as f:
        js = _JsonStream(f, source)
        js.expect("{")
        if js.peek() == "}":
            return
        while True:
            key, key_line = js.value()
            if not isinstance(key, str):
                raise KGError(f"{source}:{key_line}: expected a head name (string key)")
            js.expect(":")
            rows, line = js.value()
            yield from _filmkg_rows(key, rows, source, line)
            sep = js.peek()
            js.expect(sep if sep in ",}" else ",")
            if sep == "}":
                break
        if js.peek():
            raise KGError(f"{source}:{js.line}: unexpected data after the top-level object")


def _filmkg_rows(key: str, rows: object, source: str, line: int) -> Iterator[Record]:
    if not isinstance(rows, list):
        yield BadRow(source, line, f"head {key!r}: expected a list of [head, relation, tail]")
        return
    for i, row in enumerate(rows):
        where = f"head {key!r} row {i}"
        if not isinstance(row, list) or len(row) != 3:
            n = len(row) if isinstance(row, list) else type(row).__name__
            yield BadRow(source, line, f"{where}: expected [head, relation, tail], got {n}")
        elif not all(isinstance(c, str) for c in row):
            yield BadRow(source, line, f"{where}: head, relation and tail must be strings")
        elif _undecodable(*row):
            yield BadRow(source, line, f"{where}: undecodable bytes (not UTF-8)")
        else:
            rec = _triple_or_bad(row[0], row[1], row[2], source, line)
            yield BadRow(source, line, f"{where}: {rec.reason}") if isinstance(rec, BadRow) else rec


def rdf_format(path: Path) -> str:
    fmt = RDF_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(RDF_FORMATS))
        raise KGError(f"{path}: unknown RDF format {path.suffix!r} (known: {known})")
    return fmt


def term_name(term) -> str:
    """A readable name for an RDF term: our own IRIs decode losslessly, others to a local name."""
    from rdflib import BNode, Literal

    if isinstance(term, Literal):
        return str(term)
    if isinstance(term, BNode):
        return f"_:{term}"
    iri = str(term)
    for ns in (ENTITY_NS, RELATION_NS):
        if iri.startswith(ns):
            return unquote(iri[len(ns) :])
    local = re.split(r"[#/]", iri.rstrip("/#"))[-1]
    return unquote(local) or iri


def read_rdf(path: str | Path) -> Iterator[Record]:
    """Triples of an RDF file (N-Triples streamed line by line; Turtle and JSON-LD whole)."""
    path = Path(path)
    _check_file(path)
    fmt = rdf_format(path)
    return _read_ntriples(path) if fmt == "nt" else _read_rdf_graph(path, fmt)


def _read_ntriples(path: Path) -> Iterator[Record]:
    from rdflib.plugins.parsers.ntriples import W3CNTriplesParser

    source = str(path)
    found: list[tuple] = []

    class _Sink:
        def triple(self, s, p, o):
            found.append((s, p, o))

    parser = W3CNTriplesParser(_Sink())
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield BadRow(source, line_no, "undecodable bytes (not UTF-8)")
                continue
            if not text.strip() or text.lstrip().startswith("#"):
                continue
            try:
                parser.parsestring(text)
            except Exception as e:  # rdflib raises ParseError and ValueError subclasses
                yield BadRow(source, line_no, f"N-Triples syntax: {e}")
                continue
            for s, p, o in found:
                yield _triple_or_bad(term_name(s), term_name(p), term_name(o), source, line_no)
            found.clear()


def _read_rdf_graph(path: Path, fmt: str) -> Iterator[Record]:
    import rdflib

    graph = rdflib.Graph()
    try:
        graph.parse(path, format=fmt)
    except Exception as e:  # rdflib's parsers raise many types; all mean "bad file"
        raise KGError(f"{path}: cannot parse as {fmt}: {e}") from None
    source = str(path)
    for i, (s, p, o) in enumerate(sorted(graph), 1):
        yield _triple_or_bad(term_name(s), term_name(p), term_name(o), source, i)


def read_source(kind: str, path: str | Path) -> Iterator[Record]:
    """Dispatch on the ``--kg`` kind."""
    readers = {"filmkg": read_filmkg, "ownthink": read_ownthink, "rdf": read_rdf}
    check_source(kind, path)  # the readers are generators: check now, not at the first row
    return readers[kind](path)


def check_source(kind: str, path: str | Path) -> None:
    """A clear error for an unknown kind, a missing file or an unknown RDF format."""
    if kind not in KG_KINDS:
        raise KGError(f"unknown KG kind {kind!r} (known: {', '.join(KG_KINDS)})")
    _check_file(Path(path))
    if kind == "rdf":
        rdf_format(Path(path))
