"""``EmbeddedStore``: the default knowledge-graph store, one SQLite file, no server.

DESIGN.md section 2. Entity and relation names are interned to sequential integer ids;
triples are a ``WITHOUT ROWID`` table clustered by head (``PRIMARY KEY (h, r, t)``, which
also makes loads idempotent) with a second index by tail; an index on entity names serves
exact lookup and prefix search (a range scan); aliases have their own table. Counts are kept
in ``meta`` inside each load transaction, so ``stats()`` is O(1) even at Ownthink scale.

Bulk loading (each choice measured with ``bench/kg_load.py``): names are interned through a
unique index on a 128-bit BLAKE2b digest of the name (two 64-bit columns), so interning and id
lookup read only that small index, which stays in cache where an index of the names
themselves does not. Digests are computed in :meth:`EmbeddedStore.prepare_batch`, which the
loader runs in its parser process. The indexes whose insert order is random (names, tails)
are dropped during a load and rebuilt by one sort at its end. Each batch commits together
with its load checkpoint, so an interrupted load resumes exactly where it stopped.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from hashlib import blake2b
from pathlib import Path
from typing import NamedTuple

from kg.store import StoreBase
from kg.triples import DISAMBIGUATION_RELATIONS, Fact, KGError, Triple

DB_FILE = "kg.sqlite"
SCHEMA_VERSION = "3"
_PREFIX_END = "\U0010ffff"
_COUNTERS = ("triples", "entities", "relations", "aliases")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entity (
    id INTEGER PRIMARY KEY, hid INTEGER NOT NULL, hid2 INTEGER NOT NULL, name TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS entity_by_digest ON entity (hid, hid2);
CREATE TABLE IF NOT EXISTS relation (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS triple (
    h INTEGER NOT NULL, r INTEGER NOT NULL, t INTEGER NOT NULL,
    PRIMARY KEY (h, r, t)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alias (
    name TEXT NOT NULL, entity INTEGER NOT NULL, PRIMARY KEY (name, entity)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS load_state (
    source TEXT PRIMARY KEY, records_done INTEGER NOT NULL, complete INTEGER NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Secondary indexes with random insertion order: dropped while a load runs, rebuilt (one
# sort each) when it finishes, instead of a random B-tree insert per row during the load.
_DEFERRED_INDEXES = {
    "entity_by_name": "CREATE INDEX IF NOT EXISTS entity_by_name ON entity (name)",
    "triple_by_tail": "CREATE INDEX IF NOT EXISTS triple_by_tail ON triple (t, h, r)",
}
# Per-batch staging tables (temporary, emptied after each batch). Rows arrive from the parser
# process ready for ``executemany``; everything after that is set-based SQL, no Python loop.
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS stage_name (
    idx INTEGER PRIMARY KEY, hid INTEGER NOT NULL, hid2 INTEGER NOT NULL, name TEXT NOT NULL,
    id INTEGER);
CREATE TEMP TABLE IF NOT EXISTS stage_relation (idx INTEGER PRIMARY KEY, id INTEGER NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS stage_triple (h INTEGER, r INTEGER, t INTEGER);
CREATE TEMP TABLE IF NOT EXISTS stage_alias (name TEXT, h INTEGER);
"""
_INTERN = """INSERT OR IGNORE INTO entity (hid, hid2, name)
    SELECT hid, hid2, name FROM stage_name ORDER BY idx"""
_RESOLVE = """UPDATE stage_name SET id = (
    SELECT e.id FROM entity e WHERE e.hid = stage_name.hid AND e.hid2 = stage_name.hid2)"""
_INSERT_TRIPLES = """INSERT OR IGNORE INTO triple (h, r, t)
    SELECT sh.id, sr.id, st.id FROM stage_triple x
    JOIN stage_name sh ON sh.idx = x.h JOIN stage_relation sr ON sr.idx = x.r
    JOIN stage_name st ON st.idx = x.t"""
_INSERT_ALIASES = """INSERT OR IGNORE INTO alias (name, entity)
    SELECT a.name, s.id FROM stage_alias a JOIN stage_name s ON s.idx = a.h"""
_CLEAR_STAGING = ("stage_name", "stage_relation", "stage_triple", "stage_alias")
_FACT_SELECT = """SELECT eh.name, rr.name, et.name FROM triple
    JOIN entity eh ON eh.id = triple.h JOIN relation rr ON rr.id = triple.r
    JOIN entity et ON et.id = triple.t"""
_RELATION_CACHE = 100_000
_NOT_DISAMBIGUATION = f"rr.name NOT IN ({','.join('?' * len(DISAMBIGUATION_RELATIONS))})"
_REAL_HEAD = f"""SELECT 1 FROM triple JOIN relation rr ON rr.id = triple.r
    WHERE triple.h = ? AND {_NOT_DISAMBIGUATION} LIMIT 1"""


def name_key(name: str) -> tuple[int, int]:
    """128-bit BLAKE2b digest of a name as two signed 64-bit ints: an entity's identity key.

    A collision between two names would be needed to merge two entities; at 1e9 names its
    probability is about 1e-21.
    """
    d = blake2b(name.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    return int.from_bytes(d[:8], "little", signed=True), int.from_bytes(
        d[8:], "little", signed=True
    )


class PreparedBatch(NamedTuple):
    """A batch ready for :meth:`EmbeddedStore.write_prepared`: distinct names with their
    digests ``(idx, hid, hid2, name)``, distinct relation names, and triples ``(h, r, t)`` and
    aliases ``(name, h)`` that refer to them by index. Picklable, so the parser process can
    build it."""

    names: list[tuple[int, int, int, str]]
    relations: list[str]
    triples: list[tuple[int, int, int]]
    aliases: list[tuple[str, int]]


class EmbeddedStore(StoreBase):
    """A :class:`kg.store.GraphStore` in one SQLite file under ``directory``."""

    kind = "embedded"

    def __init__(self, directory: str | Path, cache_mib: int = 16, create: bool = True) -> None:
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise KGError(f"{self.directory}: --db must be a directory")
        if not create and not (self.directory / DB_FILE).exists():
            raise KGError(
                f"{self.directory}: no knowledge-graph store here (run python -m kg.load)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.location = self.directory / DB_FILE
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise KGError(f"{self.path}: not a usable knowledge-graph store ({e})") from None
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
        self._check_version()
        self._bulk = False
        self._relations: dict[str, int] = {}
        if not self._loads_unfinished():
            self._build_indexes()

    def _check_version(self) -> None:
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            self.conn.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            self.conn.executemany(
                "INSERT OR IGNORE INTO meta VALUES (?, '0')", [(c,) for c in _COUNTERS]
            )
        elif row[0] != SCHEMA_VERSION:
            raise KGError(f"{self.path}: schema version {row[0]}, expected {SCHEMA_VERSION}")

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.directory)!r})"

    # -- loading -------------------------------------------------------------------------
    def load_progress(self, source_key: str) -> int:
        row = self.conn.execute(
            "SELECT records_done, complete FROM load_state WHERE source = ?", (source_key,)
        ).fetchone()
        return 0 if row is None or row[1] else int(row[0])

    def _loads_unfinished(self) -> bool:
        return (
            self.conn.execute("SELECT 1 FROM load_state WHERE complete = 0").fetchone() is not None
        )

    def _begin_bulk(self) -> None:
        """Bulk mode: deferred indexes dropped; no fsync per batch (WAL keeps every committed
        batch safe from a killed process; only an OS crash could cost the latest batches)."""
        for name in _DEFERRED_INDEXES:
            self.conn.execute(f"DROP INDEX IF EXISTS {name}")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.executescript(_STAGING)
        self._bulk = True

    def _build_indexes(self) -> None:
        for sql in _DEFERRED_INDEXES.values():
            self.conn.execute(sql)

    def _relation_ids(self, names: dict[str, None]) -> tuple[dict[str, int], int]:
        """Ids of relation names (new ones interned in order of first appearance, so ids are
        the same in every run) and how many were new."""
        missing = [n for n in names if n not in self._relations]
        added = 0
        if missing:
            if len(self._relations) > _RELATION_CACHE:
                self._relations.clear()
            cur = self.conn.executemany(
                "INSERT OR IGNORE INTO relation (name) VALUES (?)", [(n,) for n in missing]
            )
            added = cur.rowcount
            for i in range(0, len(missing), 500):
                chunk = missing[i : i + 500]
                self._relations.update(
                    self.conn.execute(
                        "SELECT name, id FROM relation WHERE name IN "
                        f"({','.join('?' * len(chunk))})",
                        chunk,
                    )
                )
        return self._relations, added

    @staticmethod
    def prepare_batch(
        triples: Sequence[Triple], aliases: Sequence[tuple[str, str]]
    ) -> PreparedBatch:
        names: dict[str, int] = {}
        relations: dict[str, int] = {}
        rows = []
        for t in triples:
            h = names.get(t.head)
            if h is None:
                h = names[t.head] = len(names)
            tail = names.get(t.tail)
            if tail is None:
                tail = names[t.tail] = len(names)
            r = relations.get(t.relation)
            if r is None:
                r = relations[t.relation] = len(relations)
            rows.append((h, r, tail))
        keyed = [(i, *name_key(n), n) for i, n in enumerate(names)]
        return PreparedBatch(keyed, list(relations), rows, [(a, names[h]) for a, h in aliases])

    def write_prepared(self, batch: PreparedBatch, source_key: str, records_done: int) -> int:
        if not self._bulk:
            self._begin_bulk()
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT INTO stage_name (idx, hid, hid2, name) VALUES (?, ?, ?, ?)", batch.names
            )
            new_entities = conn.execute(_INTERN).rowcount
            conn.execute(_RESOLVE)
            rel, new_relations = self._relation_ids(dict.fromkeys(batch.relations))
            conn.executemany(
                "INSERT INTO stage_relation VALUES (?, ?)",
                [(i, rel[r]) for i, r in enumerate(batch.relations)],
            )
            conn.executemany("INSERT INTO stage_triple VALUES (?, ?, ?)", batch.triples)
            new_triples = conn.execute(_INSERT_TRIPLES).rowcount
            conn.executemany("INSERT INTO stage_alias VALUES (?, ?)", batch.aliases)
            new_aliases = conn.execute(_INSERT_ALIASES).rowcount
            counts = (new_triples, new_entities, new_relations, new_aliases)
            conn.executemany(
                "UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = ?",
                [(n, key) for key, n in zip(_COUNTERS, counts, strict=True) if n > 0],
            )
            conn.execute(
                "INSERT OR REPLACE INTO load_state VALUES (?, ?, 0, ?)",
                (source_key, records_done, time.time()),
            )
            for table in _CLEAR_STAGING:
                conn.execute(f"DELETE FROM {table}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._relations.clear()  # may hold ids of rolled-back rows
            raise
        return max(new_triples, 0)

    def finish_load(self, source_key: str) -> None:
        self.conn.execute(
            "UPDATE load_state SET complete = 1, updated = ? WHERE source = ?",
            (time.time(), source_key),
        )
        if not self._loads_unfinished():
            self._build_indexes()
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.conn.execute("PRAGMA optimize")
            self._bulk = False

    # -- queries ---------------------------------------------------------------------------
    def _id(self, name: str) -> int | None:
        row = self.conn.execute(
            "SELECT id FROM entity WHERE hid = ? AND hid2 = ? AND name = ?", (*name_key(name), name)
        ).fetchone()
        return None if row is None else row[0]

    def _is_head(self, eid: int) -> bool:
        """Has facts of its own (pointers of a disambiguation page do not count)."""
        row = self.conn.execute(_REAL_HEAD, (eid, *DISAMBIGUATION_RELATIONS)).fetchone()
        return row is not None

    def _resolve_id(self, name: str) -> int | None:
        eid = self._id(name)
        if eid is not None and self._is_head(eid):
            return eid
        # An alias may name several heads: take the one with most facts, then the first name.
        row = self.conn.execute(
            """SELECT a.entity FROM alias a JOIN entity e ON e.id = a.entity WHERE a.name = ?
               ORDER BY (SELECT count(*) FROM triple WHERE h = a.entity) DESC, e.name LIMIT 1""",
            (name,),
        ).fetchone()
        return row[0] if row is not None else eid

    def _name(self, eid: int) -> str:
        return self.conn.execute("SELECT name FROM entity WHERE id = ?", (eid,)).fetchone()[0]

    def resolve(self, name: str) -> str | None:
        eid = self._resolve_id(name)
        return None if eid is None else self._name(eid)

    def aliases(self, name: str) -> list[str]:
        eid = self._resolve_id(name)
        if eid is None:
            return []
        rows = self.conn.execute("SELECT name FROM alias WHERE entity = ? ORDER BY name", (eid,))
        return [r[0] for r in rows]

    def facts(
        self, name: str, relations: Sequence[str] | None = None, limit: int = 100, offset: int = 0
    ) -> list[Fact]:
        eid = self._resolve_id(name)
        if eid is None:
            return []
        sql, params = f"{_FACT_SELECT} WHERE triple.h = ?", [eid]
        if relations:
            sql += f" AND rr.name IN ({','.join('?' * len(relations))})"
            params += list(relations)
        sql += " ORDER BY rr.name, et.name LIMIT ? OFFSET ?"
        return [Fact(*row) for row in self.conn.execute(sql, [*params, limit, offset])]

    def search(self, prefix: str, limit: int = 20) -> list[str]:
        end = prefix + _PREFIX_END
        rows = self.conn.execute(
            """SELECT name FROM (
                 SELECT name FROM entity WHERE name >= ?1 AND name < ?2
                   AND EXISTS (SELECT 1 FROM triple WHERE h = entity.id)
                 UNION SELECT name FROM alias WHERE name >= ?1 AND name < ?2)
               ORDER BY name LIMIT ?3""",
            (prefix, end, limit),
        )
        return [r[0] for r in rows]

    def facts_into(self, names: Sequence[str], limit: int) -> list[Fact]:
        ids = [i for i in (self._id(n) for n in dict.fromkeys(names)) if i is not None]
        if not ids:
            return []
        sql = f"{_FACT_SELECT} WHERE triple.t IN ({','.join('?' * len(ids))}) "
        rows = self.conn.execute(sql + "ORDER BY eh.name, rr.name LIMIT ?", [*ids, limit])
        return [Fact(*row) for row in rows]

    def stats(self) -> dict[str, int]:
        rows = self.conn.execute(
            f"SELECT key, value FROM meta WHERE key IN ({','.join('?' * len(_COUNTERS))})",
            _COUNTERS,
        )
        return {k: int(v) for k, v in rows}

    def iter_names(self) -> Iterator[tuple[str, str]]:
        heads = self.conn.execute(
            f"""SELECT name FROM entity WHERE EXISTS (SELECT 1 FROM triple
                JOIN relation rr ON rr.id = triple.r
                WHERE h = entity.id AND {_NOT_DISAMBIGUATION})""",
            tuple(DISAMBIGUATION_RELATIONS),
        ).fetchall()
        for (name,) in heads:
            yield name, name
        aliases = self.conn.execute("SELECT DISTINCT name FROM alias ORDER BY name").fetchall()
        for (name,) in aliases:
            head = self.resolve(name)
            if head is not None and head != name:
                yield name, head

    def heads_among(self, names: Sequence[str]) -> set[str]:
        found = set()
        for name in dict.fromkeys(names):
            eid = self._id(name)
            if eid is not None and self._is_head(eid):
                found.add(name)
        return found

    def iter_facts(self) -> Iterator[Fact]:
        cur = self.conn.cursor()
        cur.execute(f"{_FACT_SELECT} ORDER BY triple.h, triple.r, triple.t")
        for row in cur:
            yield Fact(*row)

    def close(self) -> None:
        self.conn.close()
