"""``EmbeddedStore``: the default knowledge-graph store, one SQLite file, no server.

Design: docs/architecture.md, section "Knowledge-graph stores"; the measurements behind these
choices: docs/results-kg-store.md.

- Entity and relation names are interned to sequential integer ids. Triples are a
  ``WITHOUT ROWID`` table clustered by head (``PRIMARY KEY (h, r, t)``, which also makes
  loads idempotent), with a second index by tail.
- A name is found by an index of its CRC-32 (``entity.crc``), then among the few names sharing
  it: an index of 4-byte keys stays small, where one of the names would hold every long
  description. One row per name is the loader's guarantee (:mod:`kg.interning`). Prefix
  search uses an index of head names only (``entity.head``: entities with facts of their own).
  Aliases are clustered by entity, the order a load adds them in, with a second index by name.
- Counts are kept in ``meta``, updated in each load transaction, so ``stats()`` reads them
  instead of counting.
- During a load the preparing process (the loader's parser process for large files) assigns
  every id and CRC-32, so the writer only appends rows: work stays on that side because a
  busier writer slows the whole load. A batch's triples go in as one ``INSERT ... SELECT`` over
  ``json_each`` of packed ids, which SQLite reads in C instead of binding row by row.
- Indexes whose insert order is random (name CRCs, head names, alias names) are dropped during
  a load and rebuilt by one sort each at its end. The tail index stays live: new tails take
  increasing ids, so its inserts mostly append.
- Each batch commits in one transaction together with the load position, so an interrupted
  load resumes exactly where it stopped, ids re-derived from what was committed. A lock file
  (``load.lock``) in the store directory keeps a second load from assigning the same ids.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from zlib import crc32

from kg.interning import COMMITTED_IDS, BatchIds, IdBatch, name_crc
from kg.store import StoreBase
from kg.triples import DISAMBIGUATION_RELATIONS, Fact, KGError

try:
    import fcntl
except ImportError:  # not POSIX: no load lock
    fcntl = None

log = logging.getLogger(__name__)

DB_FILE = "kg.sqlite"
LOCK_FILE = "load.lock"
SCHEMA_VERSION = "5"
SORT_CACHE_KIB, SORT_THREADS = 1024, 2  # page cache and sorter threads for index builds
BULK_CACHE_KIB = 4096  # page cache while a load writes
_PREFIX_END = "\U0010ffff"
_COUNTERS = ("triples", "entities", "relations", "aliases")
#: How a store is opened: ``read`` never writes (SQLite ``mode=ro``, or ``immutable=1`` on
#: read-only media, where no WAL index can be made), ``write`` must be able to, ``load`` is
#: ``write`` with the load lock taken before the database is touched, ``auto`` is ``write``
#: where this process may write the store and ``read`` elsewhere.
MODES = ("auto", "read", "write", "load")
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entity (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, head INTEGER NOT NULL DEFAULT 0,
    crc INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS relation (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS triple (
    h INTEGER NOT NULL, r INTEGER NOT NULL, t INTEGER NOT NULL,
    PRIMARY KEY (h, r, t)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS triple_by_tail ON triple (t, h, r);
CREATE TABLE IF NOT EXISTS alias (
    name TEXT NOT NULL, entity INTEGER NOT NULL, PRIMARY KEY (entity, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS load_state (
    source TEXT PRIMARY KEY, records_done INTEGER NOT NULL, complete INTEGER NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Secondary indexes with random insertion order: dropped while a load runs, rebuilt (one
# sort each) when it finishes, instead of a random B-tree insert per row during the load. The
# load's preparer holds the names' keys in memory meanwhile (kg.interning).
_DEFERRED_INDEXES = {
    # exact lookup of any name: its CRC-32, then the name itself among the few that share it
    "entity_by_crc": "CREATE INDEX IF NOT EXISTS entity_by_crc ON entity (crc)",
    # heads only (entities with facts of their own): what prefix search looks for
    "entity_by_name": "CREATE INDEX IF NOT EXISTS entity_by_name ON entity (name) WHERE head = 1",
    "alias_by_name": "CREATE INDEX IF NOT EXISTS alias_by_name ON alias (name, entity)",
}
#: Every index of a clean load: the deferred ones and the tail index, which stays live.
_INDEXES = (*_DEFERRED_INDEXES, "triple_by_tail")
_ALIAS_V4 = (
    """CREATE TABLE alias_v4 (
        name TEXT NOT NULL, entity INTEGER NOT NULL, PRIMARY KEY (entity, name)
    ) WITHOUT ROWID""",
    "INSERT INTO alias_v4 (name, entity) SELECT name, entity FROM alias ORDER BY entity, name",
    "DROP TABLE alias",
    "ALTER TABLE alias_v4 RENAME TO alias",
)
_INSERT_RELATION = "INSERT INTO relation (id, name) VALUES (?, ?)"
# Names arrive as UTF-8 bytes (the parser process encoded them for their keys anyway).
_INSERT_ENTITY = """INSERT INTO entity (id, crc, name, head) VALUES (?, ?, CAST(? AS TEXT), ?)"""
_MARK_HEAD = "UPDATE entity SET head = 1 WHERE id = ? AND head = 0"
# IdBatch.packed_triples: the triples of a batch as JSON arrays of packed ints
_INSERT_TRIPLES = """INSERT OR IGNORE INTO triple (h, r, t)
    SELECT value >> ?1, ((value >> ?2) & ?3) + ?4, value & ?5 FROM json_each(?6)"""
_INSERT_ALIAS = "INSERT OR IGNORE INTO alias (name, entity) VALUES (CAST(? AS TEXT), ?)"
_FACT_SELECT = """SELECT eh.name, rr.name, et.name FROM triple
    JOIN entity eh ON eh.id = triple.h JOIN relation rr ON rr.id = triple.r
    JOIN entity et ON et.id = triple.t"""
_NOT_DISAMBIGUATION = f"rr.name NOT IN ({','.join('?' * len(DISAMBIGUATION_RELATIONS))})"
_REAL_HEAD = f"""SELECT 1 FROM triple JOIN relation rr ON rr.id = triple.r
    WHERE triple.h = ? AND {_NOT_DISAMBIGUATION} LIMIT 1"""


def _source_file(source_key: str) -> str:
    """``kind:path`` of a load's key ``kind:path:size:mtime`` (:func:`kg.loader.source_key`):
    the same for every version of one file (any other key stands for itself)."""
    parts = source_key.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].lstrip("-").isdigit():
        return parts[0]
    return source_key


def _source_path(source_key: str) -> str:
    kind_path = _source_file(source_key)
    return kind_path.split(":", 1)[-1]


class EmbeddedStore(StoreBase):
    """A :class:`kg.store.GraphStore` in one SQLite file under ``directory``, opened as
    ``mode`` says (:data:`MODES`)."""

    kind = "embedded"

    def __init__(
        self, directory: str | Path, cache_mib: int = 16, create: bool = True, mode: str = "auto"
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} (known: {', '.join(MODES)})")
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise KGError(f"{self.directory}: --db must be a directory")
        self.path = self.location = self.directory / DB_FILE
        if not create and not self.path.exists():
            raise self._no_store()
        if mode == "auto":  # read-only: a store that exists and cannot be written
            mode = "read" if self.path.exists() and not self._writable() else "write"
        self.read_only = mode == "read"
        self.cache_mib = cache_mib
        self._bulk = False
        self._lock = None
        self._next_ids: tuple[int, int] | None = None  # next entity and relation id
        if self.read_only:
            self._open_read_only()
            return
        self._make_directory()
        if not self._writable():
            raise KGError(f"{self.directory}: the store is read-only here; it cannot be written")
        if mode == "load":  # first: a second load must meet the lock, not a busy database
            self._lock_for_load()
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            self._unlock()
            raise self._unusable(e) from None
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(f"PRAGMA cache_size=-{cache_mib * 1024}")
        self._check_version()
        self._build_indexes_if_idle()

    def _no_store(self) -> KGError:
        return KGError(f"{self.directory}: no knowledge-graph store here (run python -m kg.load)")

    def _unusable(self, why: object) -> KGError:
        return KGError(f"{self.path}: not a usable knowledge-graph store ({why})")

    def _writable(self) -> bool:
        """Whether this process may write the store (the directory, for the WAL files and the
        lock, and the database file when there is one); false on read-only media."""
        return os.access(self.directory, os.W_OK) and (
            not self.path.exists() or os.access(self.path, os.W_OK)
        )

    def _make_directory(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            if e.errno in _NOT_WRITABLE:
                parent = next(p for p in self.directory.parents if p.exists())
                why = f"{parent} is read-only ({e.strerror})"
            else:
                why = e.strerror or str(e)
            raise KGError(f"{self.directory}: cannot create the store: {why}") from None

    def _open_read_only(self) -> None:
        """A connection that never writes: ``mode=ro``; on read-only media, where SQLite
        cannot make the WAL index a WAL database needs for ``mode=ro``, ``immutable=1`` (no
        process can change the file there either)."""
        if not self.path.exists():
            raise self._no_store()
        uri = self.path.resolve().as_uri()
        for query in ("mode=ro", "immutable=1"):
            try:
                conn = sqlite3.connect(
                    f"{uri}?{query}", uri=True, isolation_level=None, check_same_thread=False
                )
            except sqlite3.DatabaseError as e:
                raise self._unusable(e) from None
            try:
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
                break
            except sqlite3.DatabaseError as e:
                conn.close()
                if query == "immutable=1" or os.access(self.directory, os.W_OK):
                    raise self._unusable(e) from None
        self.conn = conn
        self.conn.execute(f"PRAGMA cache_size=-{self.cache_mib * 1024}")
        if row is not None and row[0] in ("3", "4"):
            self._upgrade_for_reading(row[0])
        elif row is None or row[0] != SCHEMA_VERSION:
            conn.close()
            version = "none" if row is None else row[0]
            raise KGError(f"{self.path}: schema version {version}, expected {SCHEMA_VERSION}")

    def _upgrade_for_reading(self, version: str) -> None:
        """An older schema is upgraded by a writable open, once; on read-only media it cannot
        be."""
        self.conn.close()
        if not self._writable():
            raise KGError(
                f"{self.path}: schema version {version} must be upgraded to {SCHEMA_VERSION}, "
                "which writes, and the store is read-only: open a writable copy once "
                "(python -m kg.query stats --db COPY)"
            )
        EmbeddedStore(self.directory, self.cache_mib, create=False, mode="write").close()
        self._open_read_only()

    def _check_version(self) -> None:
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            self.conn.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            self.conn.executemany(
                "INSERT OR IGNORE INTO meta VALUES (?, '0')", [(c,) for c in _COUNTERS]
            )
        elif row[0] in ("3", "4"):
            if row[0] == "3":
                self._migrate("4", self._to_version_4)
            self._migrate("5", self._to_version_5)
        elif row[0] != SCHEMA_VERSION:
            raise KGError(f"{self.path}: schema version {row[0]}, expected {SCHEMA_VERSION}")

    def _migrate(self, target: str, step: Callable[[], None]) -> None:
        """Upgrade to version ``target`` by ``step``, in one transaction, unless another
        process has just done so."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            version = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if int(version[0]) < int(target):
                step()
                self.conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (target,))
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def _to_version_4(self) -> None:
        """Version 4 flags heads (``entity.head``), so that the name index holds only them, and
        clusters aliases by entity (the order a load adds them in), names in a second index."""
        columns = {r[1] for r in self.conn.execute("PRAGMA table_info(entity)")}
        if "head" not in columns:
            self.conn.execute("ALTER TABLE entity ADD COLUMN head INTEGER NOT NULL DEFAULT 0")
        self.conn.execute("UPDATE entity SET head = 1 WHERE id IN (SELECT h FROM triple)")
        self.conn.execute("DROP INDEX IF EXISTS entity_by_name")
        for sql in _ALIAS_V4:
            self.conn.execute(sql)

    def _to_version_5(self) -> None:
        """Version 5 finds names by their CRC-32 (``entity.crc``, an index of 4-byte keys)
        instead of a unique index of 128-bit digests, which loads had to compute."""
        self.conn.execute("DROP INDEX IF EXISTS entity_by_digest")
        self.conn.execute("ALTER TABLE entity ADD COLUMN crc INTEGER NOT NULL DEFAULT 0")
        self.conn.create_function("kg_crc32", 1, crc32, deterministic=True)
        self.conn.execute("UPDATE entity SET crc = kg_crc32(CAST(name AS BLOB))")
        try:
            self.conn.execute("ALTER TABLE entity DROP COLUMN hid")
            self.conn.execute("ALTER TABLE entity DROP COLUMN hid2")
        except sqlite3.OperationalError as e:
            raise KGError(
                f"{self.path}: upgrading this store needs SQLite 3.35 or later "
                f"(this is {sqlite3.sqlite_version}): {e}"
            ) from None

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
        # Appends touch few pages: a small cache loads as fast and keeps the writer's memory
        # flat from the first batches on (the 16 MiB of queries only fill in larger loads).
        self.conn.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
        self._bulk = True

    def _build_indexes(self) -> None:
        # SQLite's sorter fills runs of at most the page cache's size and, with worker
        # threads, sorts them in parallel before it merges them: a small cache with two
        # threads builds these indexes faster than the larger cache of queries.
        self.conn.execute(f"PRAGMA cache_size=-{SORT_CACHE_KIB}")
        self.conn.execute(f"PRAGMA threads={SORT_THREADS}")
        try:
            for sql in _DEFERRED_INDEXES.values():
                self.conn.execute(sql)
        finally:
            self.conn.execute("PRAGMA threads=0")
            self.conn.execute(f"PRAGMA cache_size=-{self.cache_mib * 1024}")

    def _missing_indexes(self) -> list[str]:
        present = {
            r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
        return [name for name in _INDEXES if name not in present]

    def _build_indexes_if_idle(self) -> None:
        """Build missing indexes on opening, unless a load will (one is unfinished: its resume
        would drop them again) or is running (it holds the load lock; building now would
        write under it)."""
        if not self._missing_indexes() or self._loads_unfinished():
            return
        held = self._lock is not None
        if not held and not self._try_lock():
            return
        try:
            self._build_indexes()
        finally:
            if not held:
                self._unlock()

    def batch_preparer(self, source_key: str) -> BatchIds:
        """A :class:`kg.interning.BatchIds` for this store; takes the store's load lock (held
        until :meth:`finish_load` or :meth:`close`), since two loads would assign the same
        ids."""
        if self.read_only:
            raise KGError(f"{self.directory}: the store is opened read-only; a load writes it")
        self._check_json()
        self._lock_for_load()
        self._supersede(source_key)
        entities = self.stats()["entities"]
        if entities >= 1_000_000:  # the preparer's start is otherwise a silent pause
            log.info(
                "%s: the load starts by reading the names of its %d entities "
                "(about 1.3 s a million)",
                self.path,
                entities,
            )
        return BatchIds(self.path)

    def _check_json(self) -> None:
        """Loads write triples through ``json_each`` (:data:`_INSERT_TRIPLES`)."""
        try:
            self.conn.execute("SELECT count(*) FROM json_each('[1]')").fetchone()
        except sqlite3.OperationalError:
            raise KGError(
                f"SQLite {sqlite3.sqlite_version} has no JSON functions, which loads into the "
                "embedded store use (they are built in from SQLite 3.38 on)"
            ) from None

    def _supersede(self, source_key: str) -> None:
        """Drop the load records of other versions of this load's file. A changed file is a
        new load, so an unfinished load of its old version can never resume; its record kept
        the indexes from being rebuilt on opening and made the store read as mid-load."""
        rows = self.conn.execute(
            "SELECT source, records_done, complete FROM load_state WHERE source != ?",
            (source_key,),
        ).fetchall()
        for key, done, complete in rows:
            if _source_file(key) != _source_file(source_key):
                continue
            if not complete:
                log.warning(
                    "%s: the unfinished load of an earlier version of this file (%d records in) "
                    "is replaced by this one; facts of the earlier version that this one lacks "
                    "stay in the store",
                    _source_path(key),
                    done,
                )
            self.conn.execute("DELETE FROM load_state WHERE source = ?", (key,))

    def _try_lock(self) -> bool:
        """Take the load lock if no other process holds it."""
        if self._lock is not None or fcntl is None:
            return True
        try:
            lock = (self.directory / LOCK_FILE).open("a")
        except OSError as e:
            raise KGError(f"{self.directory / LOCK_FILE}: cannot open ({e.strerror})") from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            return False
        self._lock = lock
        return True

    def _lock_for_load(self) -> None:
        if not self._try_lock():
            raise KGError(
                f"{self.directory}: another load into this store is running "
                f"(it holds {LOCK_FILE}); wait for it to finish"
            )

    def _load_running(self) -> bool:
        """Whether a load holds the load lock (this process's own included)."""
        if self._lock is not None:
            return True
        lock_path = self.directory / LOCK_FILE
        if fcntl is None or not lock_path.exists():
            return False
        with lock_path.open("rb") as f:  # a read-only descriptor locks as well
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
        return False

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock
            self._lock = None

    def _check_sequence(self, batch: IdBatch) -> None:
        """New ids must continue the store's: anything else means two writers."""
        if self._next_ids is None:
            self._next_ids = tuple(n + 1 for n in self.conn.execute(COMMITTED_IDS).fetchone())
        if (batch.first_entity, batch.first_relation) != self._next_ids:
            self._next_ids = None
            raise KGError(
                f"{self.path}: batch ids do not continue the store's "
                "(was another process writing into it?)"
            )

    def write_prepared(self, batch: IdBatch, source_key: str, records_done: int) -> int:
        if not self._bulk:
            self._begin_bulk()
        self._check_sequence(batch)
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT_RELATION, batch.relation_rows())
            conn.executemany(_INSERT_ENTITY, batch.entity_rows())
            conn.executemany(_MARK_HEAD, batch.old_head_rows())
            new_triples = max(conn.executemany(_INSERT_TRIPLES, batch.packed_triples()).rowcount, 0)
            new_aliases = max(conn.executemany(_INSERT_ALIAS, batch.alias_rows()).rowcount, 0)
            counts = (new_triples, batch.entity_count, len(batch.relations), new_aliases)
            conn.executemany(
                "UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = ?",
                [(n, key) for key, n in zip(_COUNTERS, counts, strict=True) if n > 0],
            )
            conn.execute(
                "INSERT OR REPLACE INTO load_state VALUES (?, ?, 0, ?)",
                (source_key, records_done, time.time()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._next_ids = None
            raise
        self._next_ids = (batch.next_entity, batch.next_relation)
        return new_triples

    def finish_load(self, source_key: str) -> None:
        self.conn.execute(
            "UPDATE load_state SET complete = 1, updated = ? WHERE source = ?",
            (time.time(), source_key),
        )
        # Always, even while another file's load is unfinished: a completed load leaves an
        # indexed store (that load's resume drops them again).
        self._build_indexes()
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.execute("PRAGMA optimize")
        self._bulk = False
        self._unlock()

    def index_state(self) -> dict[str, object]:
        """Whether every index of a clean load is there, and if not why: what ``kg.query
        stats`` reports (without them every name lookup scans the whole table)."""
        missing = self._missing_indexes()
        unfinished = [
            {"source": _source_path(key), "records_done": done}
            for key, done in self.conn.execute(
                "SELECT source, records_done FROM load_state WHERE complete = 0 ORDER BY updated"
            )
        ]
        reason = None
        if missing and self._load_running():
            reason = "a load is running; it rebuilds them when it ends"
        elif missing and unfinished:
            first = unfinished[0]
            reason = (
                f"the load of {first['source']} stopped after {first['records_done']} records; "
                "they are rebuilt when a load completes: run the same kg.load command again"
            )
        elif missing:
            reason = (
                "their build was interrupted; opening the store writable (python -m kg.load, "
                "or any reader on writable media) rebuilds them"
            )
        return {
            "indexed": not missing,
            "missing_indexes": missing,
            "unfinished_loads": unfinished,
            "unindexed_reason": reason,
        }

    # -- queries ---------------------------------------------------------------------------
    def _id(self, name: str) -> int | None:
        row = self.conn.execute(
            "SELECT id FROM entity WHERE crc = ? AND name = ?", (name_crc(name), name)
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
                 SELECT name FROM entity WHERE head = 1 AND name >= ?1 AND name < ?2
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
        self._unlock()
        self.conn.close()
