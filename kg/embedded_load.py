"""Bulk loads into the embedded store: the load lock, bulk mode, batch writes, index rebuilds.

Design: docs/architecture.md, section "Knowledge-graph stores"; the measurements behind these
choices: docs/results-kg-store.md.

The loading half of :class:`kg.embedded.EmbeddedStore`, as a mixin (:class:`EmbeddedLoading`)
over the store's connection, so that the store's own module keeps to opening and queries.

- During a load the preparing process (the loader's parser process for large files) assigns
  every id and CRC-32 (:class:`kg.interning.BatchIds`), so the writer only appends rows: work
  stays on that side because a busier writer slows the whole load. A batch's triples go in as
  one ``INSERT ... SELECT`` over ``json_each`` of packed ids, which SQLite reads in C instead
  of binding row by row.
- Indexes whose insert order is random (name CRCs, head names, alias names) are dropped during
  a load and rebuilt by one sort each at its end. The tail index stays live: new tails take
  increasing ids, so its inserts mostly append.
- Each batch commits in one transaction together with the load position, so an interrupted
  load resumes exactly where it stopped, ids re-derived from what was committed. A lock file
  (:class:`LoadLock`: :mod:`common.lock` on ``load.lock`` in the store directory, held from a
  load's start to its end) keeps a second load from assigning the same ids.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from common.lock import LockHeld, hold_lock, is_held
from kg import sql
from kg.interning import BatchIds, IdBatch
from kg.triples import KGError

log = logging.getLogger("kg.embedded")  # the store's messages, under the store's name

LOCK_FILE = "load.lock"
SORT_CACHE_KIB, SORT_THREADS = 1024, 2  # page cache and sorter threads for index builds
BULK_CACHE_KIB = 4096  # page cache while a load writes


def source_file(source_key: str) -> str:
    """``kind:path`` of a load's key ``kind:path:size:mtime`` (:func:`kg.loader.source_key`):
    the same for every version of one file (any other key stands for itself)."""
    parts = source_key.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].lstrip("-").isdigit():
        return parts[0]
    return source_key


def source_path(source_key: str) -> str:
    return source_file(source_key).split(":", 1)[-1]


class LoadLock:
    """The load lock of a store directory: :func:`common.lock.hold_lock` on
    :data:`LOCK_FILE`, taken by one call and released by another."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LOCK_FILE
        self._held: ExitStack | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._held is not None

    def try_take(self) -> bool:
        """Take the lock if no other process holds it (true if this object holds it)."""
        if self._held is not None:
            return True
        held = ExitStack()
        try:
            held.enter_context(hold_lock(self.path))
        except LockHeld:
            return False
        except OSError as e:
            raise KGError(f"{self.path}: cannot open ({e.strerror})") from None
        self._held = held
        return True

    def take(self) -> None:
        if not self.try_take():
            raise KGError(
                f"{self.directory}: another load into this store is running "
                f"(it holds {LOCK_FILE}); wait for it to finish"
            )

    def taken(self) -> bool:
        """Whether a load holds the lock (this process's own included)."""
        return self._held is not None or is_held(self.path)

    def release(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None


class EmbeddedLoading:
    """The loading methods of :class:`kg.embedded.EmbeddedStore` (its ``GraphStore`` loading
    part, and the index state ``kg.query stats`` reports), over the attributes below."""

    conn: sqlite3.Connection
    path: Path
    directory: Path
    read_only: bool
    cache_mib: int
    _lock: LoadLock
    _bulk: bool
    _next_ids: tuple[int, int] | None  # next entity and relation id
    stats: Callable[[], dict[str, int]]  # the store's query

    def load_progress(self, source_key: str) -> int:
        row = self.conn.execute(sql.LOAD_PROGRESS, (source_key,)).fetchone()
        return 0 if row is None or row[1] else int(row[0])

    def _loads_unfinished(self) -> bool:
        return self.conn.execute(sql.ANY_UNFINISHED_LOAD).fetchone() is not None

    def _begin_bulk(self) -> None:
        """Bulk mode: deferred indexes dropped; no fsync per batch (WAL keeps every committed
        batch safe from a killed process; only an OS crash could cost the latest batches)."""
        for name in sql.DEFERRED_INDEXES:
            self.conn.execute(sql.drop_index(name))
        self.conn.execute(sql.SYNCHRONOUS_OFF)
        # Appends touch few pages: a small cache loads as fast and keeps the writer's memory
        # flat from the first batches on (the 16 MiB of queries only fill in larger loads).
        self.conn.execute(sql.cache_size(BULK_CACHE_KIB))
        self._bulk = True

    def _build_indexes(self) -> None:
        # SQLite's sorter fills runs of at most the page cache's size and, with worker
        # threads, sorts them in parallel before it merges them: a small cache with two
        # threads builds these indexes faster than the larger cache of queries.
        self.conn.execute(sql.cache_size(SORT_CACHE_KIB))
        self.conn.execute(sql.sorter_threads(SORT_THREADS))
        try:
            for statement in sql.DEFERRED_INDEXES.values():
                self.conn.execute(statement)
        finally:
            self.conn.execute(sql.sorter_threads(0))
            self.conn.execute(sql.cache_size(self.cache_mib * 1024))

    def _missing_indexes(self) -> list[str]:
        present = {r[0] for r in self.conn.execute(sql.INDEX_NAMES)}
        return [name for name in sql.INDEXES if name not in present]

    def _build_indexes_if_idle(self) -> None:
        """Build missing indexes on opening, unless a load will (one is unfinished: its resume
        would drop them again) or is running (it holds the load lock; building now would
        write under it)."""
        if not self._missing_indexes() or self._loads_unfinished():
            return
        held = self._lock.held
        if not held and not self._lock.try_take():
            return
        try:
            self._build_indexes()
        finally:
            if not held:
                self._lock.release()

    def batch_preparer(self, source_key: str) -> BatchIds:
        """A :class:`kg.interning.BatchIds` for this store; takes the store's load lock (held
        until :meth:`finish_load` or ``close``), since two loads would assign the same ids."""
        if self.read_only:
            raise KGError(f"{self.directory}: the store is opened read-only; a load writes it")
        self._check_json()
        self._lock.take()
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
        """Loads write triples through ``json_each`` (:data:`kg.sql.INSERT_TRIPLES`)."""
        try:
            self.conn.execute(sql.JSON_CHECK).fetchone()
        except sqlite3.OperationalError:
            raise KGError(
                f"SQLite {sqlite3.sqlite_version} has no JSON functions, which loads into the "
                "embedded store use (they are built in from SQLite 3.38 on)"
            ) from None

    def _supersede(self, source_key: str) -> None:
        """Drop the load records of other versions of this load's file. A changed file is a
        new load, so an unfinished load of its old version can never resume; its record kept
        the indexes from being rebuilt on opening and made the store read as mid-load."""
        rows = self.conn.execute(sql.OTHER_LOADS, (source_key,)).fetchall()
        for key, done, complete in rows:
            if source_file(key) != source_file(source_key):
                continue
            if not complete:
                log.warning(
                    "%s: the unfinished load of an earlier version of this file (%d records in) "
                    "is replaced by this one; facts of the earlier version that this one lacks "
                    "stay in the store",
                    source_path(key),
                    done,
                )
            self.conn.execute(sql.DELETE_LOAD, (key,))

    def _check_sequence(self, batch: IdBatch) -> None:
        """New ids must continue the store's: anything else means two writers."""
        if self._next_ids is None:
            self._next_ids = tuple(n + 1 for n in self.conn.execute(sql.COMMITTED_IDS).fetchone())
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
        conn.execute(sql.BEGIN)
        try:
            conn.executemany(sql.INSERT_RELATION, batch.relation_rows())
            conn.executemany(sql.INSERT_ENTITY, batch.entity_rows())
            conn.executemany(sql.MARK_HEAD, batch.old_head_rows())
            new_triples = max(
                conn.executemany(sql.INSERT_TRIPLES, batch.packed_triples()).rowcount, 0
            )
            new_aliases = max(conn.executemany(sql.INSERT_ALIAS, batch.alias_rows()).rowcount, 0)
            counts = (new_triples, batch.entity_count, len(batch.relations), new_aliases)
            conn.executemany(
                sql.ADD_TO_COUNTER,
                [(n, key) for key, n in zip(sql.COUNTERS, counts, strict=True) if n > 0],
            )
            conn.execute(sql.SET_LOAD_POSITION, (source_key, records_done, time.time()))
            conn.execute(sql.COMMIT)
        except BaseException:
            conn.execute(sql.ROLLBACK)
            self._next_ids = None
            raise
        self._next_ids = (batch.next_entity, batch.next_relation)
        return new_triples

    def finish_load(self, source_key: str) -> None:
        self.conn.execute(sql.FINISH_LOAD, (time.time(), source_key))
        # Always, even while another file's load is unfinished: a completed load leaves an
        # indexed store (that load's resume drops them again).
        self._build_indexes()
        self.conn.execute(sql.SYNCHRONOUS_NORMAL)
        self.conn.execute(sql.WAL_CHECKPOINT)
        self.conn.execute(sql.OPTIMIZE)
        self._bulk = False
        self._lock.release()

    def index_state(self) -> dict[str, object]:
        """Whether every index of a clean load is there, and if not why: what ``kg.query
        stats`` reports (without them every name lookup scans the whole table)."""
        missing = self._missing_indexes()
        unfinished = [
            {"source": source_path(key), "records_done": done}
            for key, done in self.conn.execute(sql.UNFINISHED_LOADS)
        ]
        reason = None
        if missing and self._lock.taken():
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
