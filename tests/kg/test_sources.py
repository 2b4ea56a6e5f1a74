"""Source parsers: real fixtures, and every kind of malformed input (file, line, reason)."""

from __future__ import annotations

import json

import pytest

from kg.loader import load
from kg.sources import read_filmkg, read_ownthink, read_rdf, read_source
from kg.stores import open_store
from kg.triples import BadRow, KGError, Triple, alias_pairs, batch_alias_pairs


def split(records):
    records = list(records)
    return (
        [r for r in records if isinstance(r, Triple)],
        [r for r in records if isinstance(r, BadRow)],
    )


def test_ownthink_sample_all_rows_parsed(research_data):
    path = research_data / "ownthink" / "ownthink_v2_head12.csv"
    triples, bad = split(read_ownthink(path))
    data_lines = path.read_text(encoding="utf-8").strip().splitlines()[1:]
    assert len(triples) == len(data_lines) == 11 and not bad
    assert triples[0] == ("胶饴", "描述", "别名: 饴糖、畅糖、畅、软糖。", str(path), 2)
    assert triples[-1].line == 12


def test_filmkg_csv_and_json_agree(research_data):
    film = research_data / "kdconv" / "film"
    from_csv = {t[:3] for t in split(read_ownthink(film / "kb_film_subset_from_dialogues.csv"))[0]}
    from_json = {t[:3] for t in split(read_filmkg(film / "kb_film_subset_from_dialogues.json"))[0]}
    assert from_csv == from_json and len(from_json) == 4232


def test_ownthink_quoted_values_multiline_and_no_header(tmp_path):
    path = tmp_path / "o.csv"
    path.write_text(
        '甲,描述,"一，二, ""三"""\n乙,简介,"第一行\n第二行"\n丙,标签,文化\n', encoding="utf-8"
    )
    triples, bad = split(read_ownthink(path))
    assert not bad
    assert [t[:3] for t in triples] == [
        ("甲", "描述", '一，二, "三"'),
        ("乙", "简介", "第一行\n第二行"),
        ("丙", "标签", "文化"),
    ]
    assert [t.line for t in triples] == [1, 2, 4]


def test_ownthink_bom_header_and_no_final_newline(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeff实体,属性,值\n甲,标签,文化".encode())
    assert [t[:3] for t in read_ownthink(path)] == [("甲", "标签", "文化")]
    path.write_bytes("\ufeff甲,标签,文化".encode())
    assert [t[:3] for t in read_ownthink(path)] == [("甲", "标签", "文化")]


def test_ownthink_value_longer_than_a_read_chunk(tmp_path):
    path = tmp_path / "long.csv"
    long_value = "很长，" * 600_000  # 5.4 MB, several 1 MiB read chunks
    path.write_text(f'甲,描述,"{long_value}"\n乙,标签,短\n', encoding="utf-8")
    triples, bad = split(read_ownthink(path))
    assert not bad and [t.tail for t in triples] == [long_value.strip(), "短"]
    assert [t.line for t in triples] == [1, 2]


def test_ownthink_bad_rows_named_by_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(
        "实体,属性,值\n好,标签,文化\n只有两列,标签\n,标签,空头\n无关系,,值\n四,列,太,多\n".encode()
        + b"\xff\xfe,bad,bytes\n"
        + "尾,标签,好\n".encode()
    )
    triples, bad = split(read_ownthink(path))
    assert [t.head for t in triples] == ["好", "尾"]
    assert [(b.line, b.reason) for b in bad] == [
        (3, "expected 3 columns (实体,属性,值), got 2"),
        (4, "empty head"),
        (5, "empty relation"),
        (6, "expected 3 columns (实体,属性,值), got 4"),
        (7, "undecodable bytes (not UTF-8)"),
    ]
    assert str(bad[0]) == f"{path}:3: expected 3 columns (实体,属性,值), got 2"


def test_bad_rows_are_counted_not_fatal_unless_strict(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("甲,标签,文化\n坏行\n乙,标签,生活\n", encoding="utf-8")
    store = open_store("embedded", str(tmp_path / "db"))
    bad_file = tmp_path / "bad_rows.tsv"
    report = load(store, "ownthink", path, progress=False, bad_rows_path=bad_file)
    assert (report.triples_loaded, report.bad_rows) == (2, 1)
    assert (
        bad_file.read_text(encoding="utf-8")
        == f"{path}\t2\texpected 3 columns (实体,属性,值), got 1\n"
    )
    strict_store = open_store("embedded", str(tmp_path / "db2"))
    with pytest.raises(KGError, match=r"bad.csv:2: expected 3 columns"):
        load(strict_store, "ownthink", path, progress=False, strict=True)


def test_filmkg_malformed_rows(tmp_path):
    path = tmp_path / "kb.json"
    doc = {
        "甲（电影）": [
            ["甲（电影）", "导演", "某人"],
            ["甲（电影）", "主演"],
            ["甲（电影）", 3, "x"],
            ["", "导演", "某人"],
            ["甲（电影）", "别名", "A<lone>"],  # a lone surrogate: no UTF-8 stores it
        ],
        "乙": "not a list",
    }
    text = json.dumps(doc, ensure_ascii=False, indent=1).replace("<lone>", "\\ud800")
    path.write_text(text, encoding="utf-8")
    triples, bad = split(read_filmkg(path))
    assert [t[:3] for t in triples] == [("甲（电影）", "导演", "某人")]
    reasons = [b.reason for b in bad]
    assert "row 1: expected [head, relation, tail], got 2" in reasons[0]
    assert "must be strings" in reasons[1]
    assert "empty head" in reasons[2]
    assert "row 4: not valid Unicode (a lone surrogate)" in reasons[3]
    assert "expected a list" in reasons[4]
    lines = path.read_text(encoding="utf-8").splitlines()
    assert bad[4].line == 1 + next(i for i, line in enumerate(lines) if '"乙"' in line)


def test_filmkg_broken_json_names_the_line(tmp_path):
    path = tmp_path / "kb.json"
    path.write_text('{\n "甲": [["甲", "r", "t"]],\n "乙": [["乙", "r" "t"]]\n}', encoding="utf-8")
    with pytest.raises(KGError, match=r"kb.json:3: invalid JSON"):
        list(read_filmkg(path))


def test_filmkg_streams_values_longer_than_a_chunk(tmp_path, monkeypatch):
    import kg.sources

    monkeypatch.setattr(kg.sources, "_JSON_CHUNK", 16)
    path = tmp_path / "kb.json"
    doc = {
        f"头{i}": [[f"头{i}", "描述", "很长的值" * 20], [f"头{i}", "数", "12345"]] for i in range(5)
    }
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    triples, bad = split(read_filmkg(path))
    assert not bad and len(triples) == 10 and triples[-1][:3] == ("头4", "数", "12345")


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(KGError, match="no such file"):
        read_source("ownthink", tmp_path / "nope.csv")
    odd = tmp_path / "kg.xml"
    odd.write_text("<x/>")
    with pytest.raises(KGError, match="unknown RDF format"):
        read_source("rdf", odd)
    with pytest.raises(KGError, match="unknown KG kind"):
        read_source("wikidata", odd)


def test_ntriples_bad_line_is_a_bad_row_and_turtle_errors_are_clear(tmp_path):
    nt = tmp_path / "g.nt"
    nt.write_text(
        '<http://x/a> <http://x/p> "v" .\n'
        "this is not rdf\n"
        "<http://x/b> <http://x/p> <http://x/a> .\n"
    )
    triples, bad = split(read_rdf(nt))
    assert [t[:3] for t in triples] == [("a", "p", "v"), ("b", "p", "a")]
    assert [b.line for b in bad] == [2] and "N-Triples syntax" in bad[0].reason
    ttl = tmp_path / "g.ttl"
    ttl.write_text("@prefix x: <http://x/> .\nx:a x:p \n")
    with pytest.raises(KGError, match="cannot parse as turtle"):
        list(read_rdf(ttl))


def test_parser_process_gives_the_same_store_and_reports(tmp_path, filmkg_sample):
    path = tmp_path / "o.csv"
    path.write_text("甲,标签,文化\n坏行\n乙（电影）,别名,乙片\n" * 3, encoding="utf-8")
    reports, facts = [], []
    for parser_process in (False, True):
        store = open_store("embedded", str(tmp_path / f"db{parser_process}"))
        reports.append(
            load(
                store, "ownthink", path, progress=False, batch_size=2, parser_process=parser_process
            )
        )
        facts.append((list(store.iter_facts()), store.stats(), store.aliases("乙")))
    a, b = (r.as_dict() | {"seconds": 0} for r in reports)
    assert a == b and a["bad_rows"] == 3 and a["triples_loaded"] == 2
    assert facts[0] == facts[1] and facts[0][2] == ["乙", "乙片"]


def test_parser_process_errors_reach_the_loader(tmp_path):
    path = tmp_path / "kb.json"
    path.write_text('{"甲": [["甲", "r", "t"]],\n "乙": oops}', encoding="utf-8")
    store = open_store("embedded", str(tmp_path / "db"))
    with pytest.raises(KGError, match=r"kb.json:2: invalid JSON"):
        load(store, "filmkg", path, progress=False, parser_process=True)


def test_batch_alias_pairs_are_those_of_every_row(filmkg_sample):
    """The batch shortcut gives the same pairs as :func:`alias_pairs` row by row."""
    rows = [r for r in read_source("filmkg", filmkg_sample) if isinstance(r, Triple)]
    rows += [
        Triple("甲（演员）", "别名", "甲、甲（演员）；小甲 / 《阿甲》"),  # lists the head itself
        Triple("甲（演员）", "国籍", "中国"),  # a later row of the same head
        Triple("乙", "多义词", "乙（电影）"),
        Triple("乙（电影）", "中文名", "乙"),
        Triple("丙 (band)", "类型", "乐队"),
    ]
    expected, last = {}, None
    for row in rows:
        expected.update(dict.fromkeys(alias_pairs(row, row.head != last)))
        last = row.head
    got = batch_alias_pairs(rows)
    assert len(got) == len(set(got))
    assert set(got) == set(expected)
    assert {("甲", "甲（演员）"), ("小甲", "甲（演员）"), ("阿甲", "甲（演员）")} <= set(got)
    assert ("甲（演员）", "甲（演员）") not in got
    assert {("乙", "乙（电影）"), ("丙", "丙 (band)")} <= set(got)
