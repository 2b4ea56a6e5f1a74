"""Bulk loading into the embedded store: ids assigned by the preparing process, the load lock,
and the migration of version-3 stores."""

from __future__ import annotations

import random
import sqlite3
from array import array
from hashlib import blake2b

import numpy as np
import pytest

from kg import interning
from kg.embedded import EmbeddedStore
from kg.loader import load
from kg.sql import INSERT_TRIPLES as _INSERT_TRIPLES
from kg.triples import KGError, Triple


def write_csv(path, rows: list[tuple[str, str, str]]) -> None:
    path.write_text("".join(f"{h},{r},{t}\n" for h, r, t in rows), encoding="utf-8")


def snapshot(store: EmbeddedStore) -> tuple:
    return (
        store.stats(),
        list(store.iter_facts()),
        list(store.iter_names()),
        store.search("", limit=1000),
    )


def test_names_far_apart_keep_one_id(tmp_path):
    """A name that comes back many batches later (after its key run has been merged into
    others) keeps its id, in either process, and on a reload (keys made again from the names
    in the store)."""
    rows = [(f"头{i}", "类型", "共同" if i % 10 == 0 else f"值{i}") for i in range(60)]
    rows += [("共同", "别名", "同"), ("值3", "标签", "头59")]
    src = tmp_path / "o.csv"
    write_csv(src, rows)
    names = {h for h, _, _ in rows} | {t for _, _, t in rows}
    snapshots = []
    for parser_process in (False, True):
        store = EmbeddedStore(tmp_path / f"db{parser_process}")
        report = load(
            store, "ownthink", src, progress=False, batch_size=3, parser_process=parser_process
        )
        assert report.triples_loaded == len(rows)
        assert store.stats()["entities"] == len(names)
        assert store.resolve("同") == "共同"
        again = load(store, "ownthink", src, progress=False, batch_size=4)
        assert again.triples_loaded == 0
        snapshots.append(snapshot(store))
        store.close()
    assert snapshots[0] == snapshots[1]
    assert "值3" in snapshots[0][3], "a tail that later has facts of its own is a head"


def test_a_load_reads_back_names_sqlite_cannot_decode(tmp_path):
    """A name with a lone surrogate (which sources now refuse, but earlier versions stored as
    its surrogatepass bytes) does not stop the next load from reading the store's names."""
    store = EmbeddedStore(tmp_path / "db")
    prepare = store.batch_preparer("old")
    store.write_prepared(prepare([Triple("甲\ud800", "类型", "乙")], []), "old", 1)
    store.finish_load("old")
    prepare.close()
    src = tmp_path / "o.csv"
    write_csv(src, [("乙", "类型", "丙"), ("丁", "类型", "乙")])
    report = load(store, "ownthink", src, progress=False)
    assert (report.triples_loaded, report.entities) == (2, 4)  # 乙 kept its id
    assert [f.tail for f in store.facts("乙")] == ["丙"]
    store.close()


def name_keys(*pairs: tuple[int, int]) -> np.ndarray:
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def test_key_map_finds_every_key_across_merged_runs():
    rng = np.random.default_rng(0)
    key_map = interning._KeyMap()
    keys = rng.integers(-(2**63), 2**63 - 1, size=(5000, 2), dtype=np.int64)
    for start in range(0, 5000, 100):  # 50 runs, merged as they come
        key_map.add(keys[start : start + 100], np.arange(start, start + 100) + 1)
    assert len(key_map.runs) < 10
    assert (key_map.get(keys) == np.arange(5000) + 1).all()
    unknown = rng.integers(-(2**63), 2**63 - 1, size=(100, 2), dtype=np.int64)
    assert (key_map.get(unknown) == -1).all()


def test_key_map_tells_apart_names_sharing_the_first_half():
    key_map = interning._KeyMap()
    key_map.add(name_keys((7, 1), (7, 2)), np.array([10, 11]))
    key_map.add(name_keys((7, 3)), np.array([12]))
    found = key_map.get(name_keys((7, 3), (7, 2), (7, 1), (7, 4), (8, 1)))
    assert found.tolist() == [12, 11, 10, -1, -1]


@pytest.mark.parametrize("top_id, relations", [(5000, 40), (interning.MAX_ENTITIES - 1, 3000)])
def test_packed_triples_unpack_to_the_batch_triples(top_id, relations):
    """Ids that fit in 63 bits together travel as one JSON array, others as one per relation
    (here 31 + 31 + 12 bits); SQLite unpacks either to exactly the batch's triples."""
    rng = random.Random(0)
    ends = [rng.randint(1, top_id) for _ in range(2000)] + [top_id, top_id]
    rels = [rng.randint(1, relations) for _ in range(1000)] + [relations]
    batch = interning.IdBatch(
        first_entity=1,
        entity_count=0,
        entities=b"",
        crcs=array("q"),
        entity_heads=b"",
        old_heads=array("q"),
        first_relation=1,
        relations=[],
        ends=array("q", ends),
        rels=array("q", rels),
        alias_names=b"",
        alias_entities=array("q"),
    )
    params = batch.packed_triples()
    assert (len(params) == 1) == (top_id < 2**20)
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE triple (h, r, t, PRIMARY KEY (h, r, t)) WITHOUT ROWID")
    conn.executemany(_INSERT_TRIPLES, params)
    expected = set(zip(ends[0::2], rels, ends[1::2], strict=True))
    assert set(conn.execute("SELECT h, r, t FROM triple")) == expected


def test_a_sqlite_without_json_functions_is_a_clear_error(tmp_path):
    store = EmbeddedStore(tmp_path / "db")
    real = store.conn

    class NoJson:
        def execute(self, sql, *args):
            if "json_each" in sql:
                raise sqlite3.OperationalError("no such table: json_each")
            return real.execute(sql, *args)

    store.conn = NoJson()
    with pytest.raises(KGError, match="has no JSON functions"):
        store.batch_preparer("x")
    store.conn = real
    store.batch_preparer("x").close()  # the refused load took no lock
    store.close()


def test_a_second_load_into_the_same_store_is_refused(tmp_path):
    first, second = EmbeddedStore(tmp_path / "db"), EmbeddedStore(tmp_path / "db")
    prepare = first.batch_preparer("a")
    with pytest.raises(KGError, match="another load into this store is running"):
        second.batch_preparer("b")
    batch = prepare([Triple("甲", "类型", "乙")], [])
    first.write_prepared(batch, "a", 1)
    first.finish_load("a")
    prepare.close()
    second.batch_preparer("b").close()  # the lock is free again
    second.close()
    first.close()


def test_batches_that_do_not_continue_the_ids_are_refused(tmp_path):
    store = EmbeddedStore(tmp_path / "db")
    a, b = interning.BatchIds(store.path), interning.BatchIds(store.path)
    one, other = a([Triple("甲", "类型", "乙")], []), b([Triple("丙", "类型", "丁")], [])
    store.write_prepared(one, "x", 1)
    with pytest.raises(KGError, match="do not continue"):
        store.write_prepared(other, "x", 2)
    assert store.stats()["entities"] == 2
    a.close()
    b.close()
    store.close()


def downgrade_to_version_4(path) -> None:
    """The layout version 4 had: names found by a unique index of their 128-bit BLAKE2b
    digests (``hid``, ``hid2``), no CRC column."""

    def digest_half(name: bytes, half: int) -> int:
        d = blake2b(name, digest_size=16).digest()[8 * half : 8 * half + 8]
        return int.from_bytes(d, "little", signed=True)

    with sqlite3.connect(path) as c:
        c.create_function("half", 2, digest_half)
        c.executescript(
            """
            DROP INDEX entity_by_crc;
            ALTER TABLE entity ADD COLUMN hid INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE entity ADD COLUMN hid2 INTEGER NOT NULL DEFAULT 0;
            UPDATE entity SET hid = half(CAST(name AS BLOB), 0), hid2 = half(CAST(name AS BLOB), 1);
            ALTER TABLE entity DROP COLUMN crc;
            CREATE UNIQUE INDEX entity_by_digest ON entity (hid, hid2);
            UPDATE meta SET value = '4' WHERE key = 'schema';
            """
        )


def downgrade_to_version_3(path) -> None:
    """The layout version 3 had, besides version 4's digests: no head flags, aliases clustered
    by name, every name indexed."""
    downgrade_to_version_4(path)
    with sqlite3.connect(path) as c:
        c.executescript(
            """
            DROP INDEX entity_by_name; DROP INDEX alias_by_name;
            ALTER TABLE entity DROP COLUMN head;
            CREATE INDEX entity_by_name ON entity (name);
            CREATE TABLE alias3 (name TEXT NOT NULL, entity INTEGER NOT NULL,
                                 PRIMARY KEY (name, entity)) WITHOUT ROWID;
            INSERT INTO alias3 SELECT name, entity FROM alias;
            DROP TABLE alias; ALTER TABLE alias3 RENAME TO alias;
            UPDATE meta SET value = '3' WHERE key = 'schema';
            """
        )


@pytest.mark.parametrize("downgrade", [downgrade_to_version_3, downgrade_to_version_4])
def test_an_older_store_is_migrated_on_open(tmp_path, filmkg_sample, downgrade):
    with EmbeddedStore(tmp_path / "new") as store:
        load(store, "filmkg", filmkg_sample, progress=False)
        expected = snapshot(store) + (store.aliases("阿甘正传"), store.resolve("恋恋笔记本"))
    old = tmp_path / "old"
    old.mkdir()
    (tmp_path / "new" / "kg.sqlite").rename(old / "kg.sqlite")
    downgrade(old / "kg.sqlite")
    with EmbeddedStore(old, create=False) as store:
        got = snapshot(store) + (store.aliases("阿甘正传"), store.resolve("恋恋笔记本"))
        version = store.conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        columns = {r[1] for r in store.conn.execute("PRAGMA table_info(entity)")}
        plan = store.conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM entity WHERE crc = 1 AND name = 'x'"
        ).fetchall()
        again = load(store, "filmkg", filmkg_sample, progress=False)  # ids continue
        assert (again.triples_loaded, store.stats()) == (0, expected[0])
    assert got == expected
    assert version == ("5",)
    assert {"crc", "head"} <= columns and not {"hid", "hid2"} & columns
    assert "entity_by_crc" in str(plan)
