"""A quoted Ownthink value that never closes, goes on for too many lines or characters, or
swallows the next row's quote is a bad row at its first line, and the rows after it load."""

from __future__ import annotations

import json

from kg.sources import MAX_FIELD_CHARS, MAX_FIELD_LINES, read_ownthink
from kg.triples import BadRow, Triple
from tests.kg.test_cli import run


def rows_of(path) -> tuple[list[Triple], list[BadRow]]:
    records = list(read_ownthink(path))
    return [r for r in records if isinstance(r, Triple)], [r for r in records if type(r) is BadRow]


def numbered(n: int, start: int = 0) -> list[str]:
    return [f"实体{i},类型,值{i}" for i in range(start, start + n)]


def test_an_unclosed_quote_loses_no_row(tmp_path):
    """The issue's case: an opening quote at row 500 of 1,000 never closes."""
    src, db = tmp_path / "o.csv", tmp_path / "db"
    lines = numbered(1000)
    lines[499] = '实体499,描述,"从这里开始没有结束'
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = run(
        "kg.load", "--kg", "ownthink", "--path", str(src), "--db", str(db), "--json",
        "--no-progress",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert (summary["triples_read"], summary["bad_rows"]) == (999, 1)
    assert f"{src}:500: a quoted value is not closed before the end of the file" in res.stderr
    for name, value in (("实体501", "值501"), ("实体999", "值999")):
        res = run("kg.query", "facts", name, "--db", str(db), "--json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["tail"] == value


def test_a_file_cut_inside_a_quoted_value_stores_no_partial_value(tmp_path):
    unclosed = (2, "a quoted value is not closed before the end of the file")
    for ending, then in (("", []), ("\n", []), ("\n第二行", [(3, "expected 3 columns")])):
        src = tmp_path / "cut.csv"
        src.write_text(f'甲,类型,乙\n丙,描述,"被截断的值{ending}', encoding="utf-8")
        triples, bad = rows_of(src)
        assert [t.head for t in triples] == ["甲"]
        assert [(b.line, b.reason.split(" (")[0]) for b in bad] == [unclosed, *then]


def test_a_value_over_too_many_lines_is_a_bad_row_and_its_lines_are_read_again(tmp_path):
    src = tmp_path / "long.csv"
    inside = numbered(MAX_FIELD_LINES + 5, start=10)
    lines = ['头,描述,"开始', *inside, '结束"', "尾,类型,好"]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    triples, bad = rows_of(src)
    assert [(b.line, b.reason) for b in bad] == [
        (1, f"a quoted value spans more than {MAX_FIELD_LINES} lines (unclosed quote?)"),
        (len(lines) - 1, "expected 3 columns (实体,属性,值), got 1"),
    ]
    assert [t.head for t in triples] == [f"实体{i}" for i in range(10, 15 + MAX_FIELD_LINES)] + [
        "尾"
    ]
    assert [t.line for t in triples[:2]] == [2, 3] and triples[-1].line == len(lines)


def test_a_value_that_ends_on_the_next_rows_quote_is_a_bad_row(tmp_path):
    """An unclosed quote closes on the next quoted value, a few lines on: strict quoting over
    the lines it spans shows it, and the row it swallowed loads with its own value."""
    src = tmp_path / "pair.csv"
    src.write_text('甲,描述,"没有闭合\n乙,描述,"有引号的值"\n丙,类型,丁\n', encoding="utf-8")
    triples, bad = rows_of(src)
    assert [(b.line, b.reason.split(":")[0]) for b in bad] == [
        (1, "CSV syntax in a value over lines 1-2 (unclosed quote?)")
    ]
    assert [(t.head, t.tail, t.line) for t in triples] == [("乙", "有引号的值", 2), ("丙", "丁", 3)]


def test_a_value_over_the_character_bound_is_a_bad_row(tmp_path):
    src = tmp_path / "huge.csv"
    src.write_text(
        f'甲,类型,乙\n丙,描述,"{"长" * (MAX_FIELD_CHARS + 10)}\n丁,类型,戊\n', encoding="utf-8"
    )
    triples, bad = rows_of(src)
    assert [(b.line, b.reason) for b in bad] == [
        (2, f"CSV syntax: a value longer than {MAX_FIELD_CHARS} characters (unclosed quote?)")
    ]
    assert [(t.head, t.line) for t in triples] == [("甲", 1), ("丁", 3)]


def test_an_unclosed_quote_across_read_chunks(tmp_path):
    """The rows the quote swallowed span several 1 MiB read chunks and are read again."""
    src = tmp_path / "big.csv"
    lines = [f"实体{i},描述,{'很长的值' * 30}{i}" for i in range(30_000)]
    lines[10_000] = '坏,描述,"从这里'
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert src.stat().st_size > 3 << 20
    triples, bad = rows_of(src)
    assert [b.line for b in bad] == [10_001]
    assert len(triples) == 29_999
    assert [t.line for t in triples] == [i + 1 for i in range(30_000) if i != 10_000]
    assert triples[10_000].head == "实体10001"


def test_well_formed_values_over_several_lines_still_load(tmp_path):
    src = tmp_path / "ok.csv"
    src.write_text(
        '实体,属性,值\n甲,描述,"第一行\n第二行，""引号""\n第三行"\n乙,类型,丙', encoding="utf-8"
    )
    triples, bad = rows_of(src)
    assert not bad
    assert [(t.tail, t.line) for t in triples] == [('第一行\n第二行，"引号"\n第三行', 2), ("丙", 5)]
