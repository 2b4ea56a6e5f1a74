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
- Loads (:mod:`kg.embedded_load`): the preparing process assigns every id, the writer only
  appends, each batch in one transaction together with the load position, under a load lock.

This module opens the store (modes, read-only media, schema versions through
:mod:`kg.embedded_schema`) and answers queries; every statement is a constant of
:mod:`kg.sql`.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from kg import sql
from kg.embedded_load import EmbeddedLoading, LoadLock
from kg.embedded_schema import SCHEMA_VERSION, UPGRADABLE, check_version
from kg.interning import name_crc
from kg.store import StoreBase
from kg.triples import DISAMBIGUATION_RELATIONS, Fact, KGError

DB_FILE = "kg.sqlite"
_PREFIX_END = "\U0010ffff"
#: How a store is opened: ``read`` never writes (SQLite ``mode=ro``, or ``immutable=1`` on
#: read-only media, where no WAL index can be made), ``write`` must be able to, ``load`` is
#: ``write`` with the load lock taken before the database is touched, ``auto`` is ``write``
#: where this process may write the store and ``read`` elsewhere.
MODES = ("auto", "read", "write", "load")
_NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


class EmbeddedStore(EmbeddedLoading, StoreBase):
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
        self._lock = LoadLock(self.directory)
        self._next_ids = None
        if self.read_only:
            self._open_read_only()
            return
        self._make_directory()
        if not self._writable():
            raise KGError(f"{self.directory}: the store is read-only here; it cannot be written")
        if mode == "load":  # first: a second load must meet the lock, not a busy database
            self._lock.take()
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.conn.execute(sql.JOURNAL_WAL)
            self.conn.executescript(sql.SCHEMA)
        except sqlite3.DatabaseError as e:
            self._lock.release()
            raise self._unusable(e) from None
        self.conn.execute(sql.SYNCHRONOUS_NORMAL)
        self.conn.execute(sql.cache_size(cache_mib * 1024))
        check_version(self.conn, self.path)
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
                row = conn.execute(sql.SCHEMA_VERSION_OF).fetchone()
                break
            except sqlite3.DatabaseError as e:
                conn.close()
                if query == "immutable=1" or os.access(self.directory, os.W_OK):
                    raise self._unusable(e) from None
        self.conn = conn
        self.conn.execute(sql.cache_size(self.cache_mib * 1024))
        if row is not None and row[0] in UPGRADABLE:
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

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.directory)!r})"

    # -- queries ---------------------------------------------------------------------------
    def _id(self, name: str) -> int | None:
        row = self.conn.execute(sql.ENTITY_ID, (name_crc(name), name)).fetchone()
        return None if row is None else row[0]

    def _is_head(self, eid: int) -> bool:
        """Has facts of its own (pointers of a disambiguation page do not count)."""
        row = self.conn.execute(sql.REAL_HEAD, (eid, *DISAMBIGUATION_RELATIONS)).fetchone()
        return row is not None

    def _resolve_id(self, name: str) -> int | None:
        eid = self._id(name)
        if eid is not None and self._is_head(eid):
            return eid
        row = self.conn.execute(sql.ALIAS_TARGET, (name,)).fetchone()
        return row[0] if row is not None else eid

    def _name(self, eid: int) -> str:
        return self.conn.execute(sql.ENTITY_NAME, (eid,)).fetchone()[0]

    def resolve(self, name: str) -> str | None:
        eid = self._resolve_id(name)
        return None if eid is None else self._name(eid)

    def aliases(self, name: str) -> list[str]:
        eid = self._resolve_id(name)
        if eid is None:
            return []
        return [r[0] for r in self.conn.execute(sql.ALIASES_OF, (eid,))]

    def facts(
        self, name: str, relations: Sequence[str] | None = None, limit: int = 100, offset: int = 0
    ) -> list[Fact]:
        eid = self._resolve_id(name)
        if eid is None:
            return []
        relations = list(relations or ())
        rows = self.conn.execute(sql.facts(len(relations)), [eid, *relations, limit, offset])
        return [Fact(*row) for row in rows]

    def search(self, prefix: str, limit: int = 20) -> list[str]:
        rows = self.conn.execute(sql.SEARCH, (prefix, prefix + _PREFIX_END, limit))
        return [r[0] for r in rows]

    def facts_into(self, names: Sequence[str], limit: int) -> list[Fact]:
        ids = [i for i in (self._id(n) for n in dict.fromkeys(names)) if i is not None]
        if not ids:
            return []
        rows = self.conn.execute(sql.facts_into(len(ids)), [*ids, limit])
        return [Fact(*row) for row in rows]

    def stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.conn.execute(sql.STATS, sql.COUNTERS)}

    def iter_names(self) -> Iterator[tuple[str, str]]:
        heads = self.conn.execute(sql.ALL_HEADS, tuple(DISAMBIGUATION_RELATIONS)).fetchall()
        for (name,) in heads:
            yield name, name
        for (name,) in self.conn.execute(sql.ALL_ALIASES).fetchall():
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
        cur.execute(sql.ALL_FACTS)
        for row in cur:
            yield Fact(*row)

    def close(self) -> None:
        self._lock.release()
        self.conn.close()
