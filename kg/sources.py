"""Streaming parsers for the knowledge-graph sources.

Formats: docs/data-contracts.md, section "Knowledge-graph sources".

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
import re
from collections import deque
from collections.abc import Iterator
from itertools import chain
from pathlib import Path
from urllib.parse import unquote

from common.json_stream import JsonStream
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
_JSON_CHUNK = 1 << 20  # characters read at a time from a FilmKG file
_COLUMNS = "expected 3 columns (实体,属性,值), got {}"  # an Ownthink row's

# Bounds on one Ownthink field. csv holds a field in memory until its closing quote, so an
# unclosed quote would take every following row into one value, to the end of the file.
# Ownthink's values, long descriptions included, stay far below both: a field beyond them is a
# runaway quote (a bad row) rather than a value. csv counts characters, not bytes (a character
# is at most 4 bytes of UTF-8); its limit is process-wide, and csv's default (128 Ki characters)
# is below what descriptions reach.
MAX_FIELD_CHARS = 1 << 23
MAX_FIELD_LINES = 1000
csv.field_size_limit(MAX_FIELD_CHARS)


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


def read_ownthink(path: str | Path) -> Iterator[Record]:
    """Rows of an Ownthink CSV (``实体,属性,值``; the header line is optional).

    A row that spans lines (a quoted value holding newlines) is checked apart, since a quote
    that never closes turns every row after it into one value: it must close before the end
    of the file, within :data:`MAX_FIELD_LINES` lines, and parse under strict quoting. One
    that does not, or a value longer than :data:`MAX_FIELD_CHARS`, is a bad row at its first
    line, and reading starts again on the next line, so that the rows it swallowed load
    (:class:`_OwnthinkRows`).
    """
    return _OwnthinkRows(Path(path)).records()  # a generator: checks the file when first read


class _OwnthinkRows:
    """The records of one Ownthink file, read by a :mod:`csv` reader that starts again after
    a bad row.

    Restarting needs the text from the current row's first line on: the chunks that hold it
    are kept (``kept``), each with the number of its first line. ``base`` counts the lines
    before the current reader's first, ``last_line`` is the last line of the last row read.
    """

    def __init__(self, path: Path) -> None:
        self.path, self.source = path, str(path)
        self.chunks: Iterator[str] = iter(())  # of the file, once open
        self.kept: deque[tuple[int, str]] = deque()  # (first line, text) from the current row's on
        self.end_line = 0  # the blank line a reader is handed after the file's last (0: not yet)
        self.base = self.last_line = 0
        self.reader: csv.Reader | None = None

    def records(self) -> Iterator[Record]:
        _check_file(self.path)
        source = self.source
        with self.path.open("rb") as raw:
            text = _CheckedText(raw)
            self.chunks = text.chunks()
            reader = self._restart(0)
            while reader is not None:
                base = last = self.base  # base changes only with the reader
                try:
                    for row in reader:
                        line = last + 1
                        self.last_line = last = base + reader.line_num  # for _feed
                        if line != last and (why := self._spanning_row_problem(line, last)):
                            yield BadRow(source, line, why)
                            reader = self._restart(line)
                            break
                        if len(row) != 3:
                            if row and row != [""]:  # a blank line carries no data
                                yield BadRow(source, line, _COLUMNS.format(len(row)))
                        elif text.dirty and _undecodable(*row):
                            yield BadRow(source, line, "undecodable bytes (not UTF-8)")
                        elif line == 1 and [c.strip() for c in row] == OWNTHINK_HEADER:
                            continue
                        else:  # _triple_or_bad inlined: the hot loop of a 140 M-row load
                            head, relation, tail = row[0].strip(), row[1].strip(), row[2].strip()
                            if head and relation and tail:
                                yield Triple(head, relation, tail, source, line)
                            else:
                                yield _triple_or_bad(head, relation, tail, source, line)
                    else:
                        reader = None
                except csv.Error as e:
                    line = self.last_line + 1
                    yield BadRow(source, line, f"CSV syntax: {_csv_reason(e)}")
                    reader = self._restart(line)

    def _feed(self, replayed: list[str]) -> Iterator[str]:
        """Chunks for ``self.reader``, kept while they hold lines of the row being read."""
        kept = self.kept
        for chunk in chain(replayed, self.chunks, [None]):
            first = self.base + self.reader.line_num + 1  # the reader used every earlier line
            if chunk is None:  # the end: one blank line, which closes no quote
                if self.end_line:
                    return
                chunk, self.end_line = "\n", first
            while kept and (kept[1][0] if len(kept) > 1 else first) <= self.last_line + 1:
                kept.popleft()
            kept.append((first, chunk))
            yield chunk

    def _kept_lines(self, lo: int) -> Iterator[tuple[int, str]]:
        """The kept lines from line ``lo`` on, numbered."""
        for first, chunk in list(self.kept):
            for number, line in enumerate(io.StringIO(chunk, newline=""), first):
                if number >= lo:
                    yield number, line

    def _restart(self, after: int) -> csv.Reader:
        """A reader of the lines after line ``after``."""
        replayed = []  # chunk by chunk: the last line of the file may have no newline
        for first, chunk in self.kept:
            rest = list(io.StringIO(chunk, newline=""))[max(0, after + 1 - first) :]
            if rest:
                replayed.append("".join(rest))
        self.kept.clear()
        self.base = self.last_line = after
        lines = self._feed(replayed)
        self.reader = csv.reader(chain.from_iterable(io.StringIO(c, newline="") for c in lines))
        return self.reader

    def _spanning_row_problem(self, first: int, last: int) -> str | None:
        """Why the row over lines ``first`` to ``last`` is bad (None: it is not)."""
        if last == self.end_line:
            return "a quoted value is not closed before the end of the file"
        if last - first >= MAX_FIELD_LINES:
            return f"a quoted value spans more than {MAX_FIELD_LINES} lines (unclosed quote?)"
        lines = [line for number, line in self._kept_lines(first) if number <= last]
        try:
            list(csv.reader(lines, strict=True))
        except csv.Error as e:
            return f"CSV syntax in a value over lines {first}-{last} (unclosed quote?): {e}"
        return None


def _csv_reason(e: csv.Error) -> str:
    why = str(e)
    if why.startswith("field larger than field limit"):
        why = f"a value longer than {MAX_FIELD_CHARS} characters (unclosed quote?)"
    return why


def read_filmkg(path: str | Path) -> Iterator[Record]:
    """Triples of a KdConv ``kb_*.json`` file: ``{head: [[head, relation, tail], ...]}``."""
    path = Path(path)
    _check_file(path)
    source = str(path)
    with path.open(encoding="utf-8-sig", errors="surrogateescape") as f:
        js = JsonStream(f, source, chunk_chars=_JSON_CHUNK, error=KGError)
        js.expect("{")
        if js.peek() == "}":
            return
        while True:
            key, key_line = js.value()
            if not isinstance(key, str):
                raise js.error("expected a head name (string key)", key_line)
            js.expect(":")
            rows, line = js.value()
            yield from _filmkg_rows(key, rows, source, line)
            sep = js.peek()
            js.expect(sep if sep in ",}" else ",")
            if sep == "}":
                break
        if not js.at_end():
            raise js.error("unexpected data after the top-level object")


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
        raise KGError(_rdf_parse_error(path, fmt, e)) from None
    source = str(path)
    for i, (s, p, o) in enumerate(sorted(graph), 1):
        yield _triple_or_bad(term_name(s), term_name(p), term_name(o), source, i)


def _rdf_parse_error(path: Path, fmt: str, e: Exception) -> str:
    """One line for a parser's error: rdflib's Turtle parser (``BadSyntax``) writes three,
    with a line number of its own count and an excerpt of the document; the line is counted
    here from the offset it gives, and the reason kept."""
    text, offset, why = (getattr(e, attr, None) for attr in ("_str", "_i", "_why"))
    if isinstance(text, (bytes, str)) and isinstance(offset, int) and why:
        newline = b"\n" if isinstance(text, bytes) else "\n"
        line = text.count(newline, 0, offset) + 1
        return f"{path}:{line}: cannot parse as {fmt}: {' '.join(str(why).split())}"
    return f"{path}: cannot parse as {fmt}: {' '.join(str(e).split())}"


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
