"""The streaming JSON reader (:mod:`common.json_stream`): values and their lines whatever the
chunk size, values cut by a chunk's end, and errors of the caller's type naming the line."""

from __future__ import annotations

import io
import json

import pytest

from common.json_stream import JsonStream, JsonStreamError


class CallerError(Exception):
    pass


def stream(text: str, chunk_chars: int = 3, **kw) -> JsonStream:
    return JsonStream(io.StringIO(text), "doc.json", chunk_chars=chunk_chars, **kw)


def elements(s: JsonStream) -> list[tuple[object, int]]:
    """The elements of a top-level array and their lines, walked as the readers do."""
    s.expect("[")
    out = []
    if s.peek() == "]":
        s.take()
        return out
    while True:
        out.append(s.value())
        if s.take() == "]":
            return out


@pytest.mark.parametrize("chunk_chars", [1, 2, 3, 7, 1 << 20])
def test_values_and_their_lines_whatever_the_chunk_size(chunk_chars):
    records = [{"i": i, "text": "值" * i, "nested": [1, {"a": "]"}]} for i in range(12)]
    s = stream(json.dumps(records, indent=2, ensure_ascii=False), chunk_chars)
    got = elements(s)
    assert [v for v, _ in got] == records
    assert [line for _, line in got] == [2 + 10 * i for i in range(12)]  # 10 lines a record
    assert s.at_end() and s.take() == ""


def test_a_number_or_literal_cut_by_the_chunk_end_is_read_whole():
    s = stream("[123456789, true,\n  -0.5e10]", chunk_chars=2)
    assert elements(s) == [(123456789, 1), (True, 1), (-0.5e10, 2)]


def test_peek_skips_whitespace_and_counts_its_lines():
    s = stream(" \n\t\r\n  {}", chunk_chars=1)
    assert (s.peek(), s.line) == ("{", 3)
    assert s.take() == "{" and s.take() == "}" and s.at_end()
    assert stream("").peek() == "" and stream(" \n ").at_end()


def test_invalid_json_names_the_line_in_the_callers_error_type():
    s = stream('[1,\n 2,\n "a" "b"]', error=CallerError)
    s.expect("[")
    s.value()
    s.expect(",")
    s.value()
    s.expect(",")
    assert s.value() == ("a", 3)
    with pytest.raises(CallerError, match=r"^doc\.json:3: expected ',', got '\"'$"):
        s.expect(",")
    bad = stream('{"a":\n\n [1, 2', error=CallerError)
    bad.expect("{")
    bad.value()
    bad.expect(":")
    with pytest.raises(CallerError, match=r"^doc\.json:3: invalid JSON: Expecting "):
        bad.value()


def test_the_end_of_file_and_the_default_error():
    s = stream("  ")
    with pytest.raises(JsonStreamError, match=r"^doc\.json:1: expected '\[', got 'end of file'$"):
        s.expect("[")
    assert issubclass(JsonStreamError, ValueError)
    assert str(stream("\n\nx").error("odd")) == "doc.json:1: odd"
    assert str(stream("x").error("odd", line=7)) == "doc.json:7: odd"
    with pytest.raises(ValueError, match="chunk_chars"):
        stream("", chunk_chars=0)
