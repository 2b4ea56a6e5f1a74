"""The GraphStore contract, run on both backends (embedded SQLite and a real Bolt server)."""

from __future__ import annotations

import json
from itertools import islice

import pytest

from kg.loader import load
from kg.sources import read_filmkg, read_rdf
from kg.triples import Fact, Triple


def expected_from(path) -> tuple[set[tuple[str, str, str]], set[str], set[str]]:
    """Triples, node names and relation names straight from the JSON file (no project code)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    triples = {tuple(row) for rows in data.values() for row in rows}
    nodes = {h for h, _, _ in triples} | {t for _, _, t in triples}
    return triples, nodes, {r for _, r, _ in triples}


def all_facts(store) -> set[tuple[str, str, str]]:
    return {(f.head, f.relation, f.tail) for f in store.iter_facts()}


@pytest.fixture
def loaded(store, filmkg_sample):
    report = load(store, "filmkg", filmkg_sample, progress=False, batch_size=1000)
    return store, report


def test_load_counts_match_the_source(loaded, filmkg_sample):
    store, report = loaded
    triples, nodes, relations = expected_from(filmkg_sample)
    assert report.triples_read == len(triples) == report.triples_loaded
    assert report.bad_rows == 0
    stats = store.stats()
    assert stats["triples"] == len(triples)
    assert stats["entities"] == len(nodes) == report.entities
    assert stats["relations"] == len(relations) == report.relations
    assert stats["aliases"] > 0
    assert all_facts(store) == triples


def test_reload_is_idempotent(loaded, filmkg_sample):
    store, _ = loaded
    before = store.stats()
    again = load(store, "filmkg", filmkg_sample, progress=False, batch_size=700)
    assert again.triples_read == before["triples"]
    assert again.triples_loaded == 0
    assert store.stats() == before


def test_bare_name_and_alias_resolve_to_the_bracketed_head(loaded):
    store, _ = loaded
    head = "恋恋笔记本（美国2004年尼克·卡索维茨导演爱情片）"
    assert store.resolve(head) == head
    assert store.resolve("恋恋笔记本") == head
    assert "恋恋笔记本" in store.aliases(head)
    assert store.resolve("没有这个实体") is None
    # an alias relation (其它译名 / 外文名称 ...) names the head too
    data = {(f.head, f.relation, f.tail) for f in store.iter_facts()}
    head2, _, alias = next(
        t for t in sorted(data) if t[1] == "其它译名" and not set("、，,；;/") & set(t[2])
    )
    assert store.resolve(alias) in {head2, alias}
    assert alias in store.aliases(head2)
    listed = next(t for t in sorted(data) if t[1] == "其它译名" and "，" in t[2])
    assert set(listed[2].split("，")) <= set(store.aliases(listed[0])), "lists are split"


def test_names_lexicon(loaded, filmkg_sample):
    store, _ = loaded
    names = dict(store.iter_names())
    data = json.loads(filmkg_sample.read_text(encoding="utf-8"))
    heads = {h for h, rows in data.items() if any(r[1] != "多义词" for r in rows)}
    assert {n for n, h in names.items() if n == h} == heads
    assert names["恋恋笔记本"] == "恋恋笔记本（美国2004年尼克·卡索维茨导演爱情片）"
    assert all(store.resolve(n) == h for n, h in list(names.items())[::50])


def test_facts_filter_limit_offset(loaded):
    store, _ = loaded
    facts = store.facts("阿甘正传", limit=1000)
    assert facts and all(isinstance(f, Fact) for f in facts)
    assert {f.head for f in facts} == {"阿甘正传（美国1994年汤姆·汉克斯主演电影）"}
    assert ("导演", "罗伯特·泽米吉斯") in {(f.relation, f.tail) for f in facts}
    assert facts == sorted(facts, key=lambda f: (f.relation, f.tail))
    actors = store.facts("阿甘正传", relations=["主演"], limit=1000)
    assert actors and {f.relation for f in actors} == {"主演"}
    assert store.facts("阿甘正传", limit=2) == facts[:2]
    assert store.facts("阿甘正传", limit=2, offset=2) == facts[2:4]
    assert store.facts("没有这个实体") == []


def test_prefix_search_finds_heads_and_aliases(loaded):
    store, _ = loaded
    found = store.search("阿甘", limit=10)
    assert "阿甘正传" in found and "阿甘正传（美国1994年汤姆·汉克斯主演电影）" in found
    assert found == sorted(found)
    assert all(n.startswith("阿甘") for n in found)
    assert len(store.search("", limit=5)) == 5
    assert store.search("没有这个前缀") == []


def test_neighbourhood_one_and_two_hops(loaded):
    store, _ = loaded
    film = "阿甘正传（美国1994年汤姆·汉克斯主演电影）"
    director = "罗伯特·泽米吉斯"
    one = store.neighbors(director, hops=1, limit=500)
    assert all(director in (f.head, f.tail) for f in one)
    assert Fact(film, "导演", director) in one, "1-hop includes facts pointing at the entity"
    assert any(f.head == director for f in one)
    two = store.neighbors(director, hops=2, limit=500)
    assert set(one) <= set(two)
    assert Fact(film, "主演", "汤姆·汉克斯") in two, "2-hop reaches the film's own facts"
    assert len(store.neighbors(director, hops=2, limit=7)) == 7
    assert store.neighbors("没有这个实体", hops=2) == []
    with pytest.raises(ValueError):
        store.neighbors(director, hops=3)


class Interrupted(Exception):
    pass


def interrupt_after(records, n):
    yield from islice(records, n)
    raise Interrupted


def test_interrupted_load_resumes_to_exactly_the_full_data(store, filmkg_sample):
    triples, nodes, _ = expected_from(filmkg_sample)
    with pytest.raises(Interrupted):
        load(
            store,
            "filmkg",
            filmkg_sample,
            progress=False,
            batch_size=500,
            records=interrupt_after(read_filmkg(filmkg_sample), 1750),
        )
    partial = store.stats()["triples"]
    assert 0 < partial <= 1750
    report = load(store, "filmkg", filmkg_sample, progress=False, batch_size=500)
    assert report.resumed_from == 1500  # the last committed batch boundary
    assert report.triples_read == len(triples) - 1500
    assert all_facts(store) == triples
    assert store.stats()["entities"] == len(nodes)


def test_rdf_export_round_trips(loaded, tmp_path, filmkg_sample):
    from kg.rdf import entity_iri, export_rdf

    store, _ = loaded
    triples, _, _ = expected_from(filmkg_sample)
    for suffix in (".ttl", ".nt"):
        out = tmp_path / f"film{suffix}"
        assert export_rdf(store, out) == len(triples)
        read = {(t.head, t.relation, t.tail) for t in read_rdf(out) if isinstance(t, Triple)}
        assert read == triples
    text = (tmp_path / "film.nt").read_text(encoding="utf-8")
    assert entity_iri("汤姆·汉克斯").n3() + " .\n" in text, "a tail that is a head is an IRI"
    assert '"2004年06月25日" .\n' in text, "a value is a literal"


def test_disambiguation_page_resolves_to_its_target(store, tmp_path):
    kb = tmp_path / "kb.json"
    page, film = "燃情岁月", "燃情岁月（美国1994年布拉德·皮特主演电影）"
    kb.write_text(
        json.dumps(
            {page: [[page, "多义词", film]], film: [[film, "导演", "爱德华·兹威克"]]},
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    load(store, "filmkg", kb, progress=False)
    assert store.resolve(page) == film
    assert store.facts(page) == [Fact(film, "导演", "爱德华·兹威克")]
    assert dict(store.iter_names())[page] == film
