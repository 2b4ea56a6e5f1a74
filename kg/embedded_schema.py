"""The embedded store's schema version and the migrations from older ones.

Design: docs/architecture.md, section "Knowledge-graph stores".

A store records its schema version in ``meta``. A writable open of an older store upgrades it
in place, one version at a time, each step in one transaction that first checks whether
another process has just made it (:func:`check_version`); a read-only open cannot, and asks
for a writable one (:class:`kg.embedded.EmbeddedStore`). Functions of a connection, so that the
store class keeps to opening and queries.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from zlib import crc32

from kg import sql
from kg.triples import KGError

SCHEMA_VERSION = "5"
#: Versions a writable open upgrades to :data:`SCHEMA_VERSION`.
UPGRADABLE = ("3", "4")


def check_version(conn: sqlite3.Connection, path: Path) -> None:
    """Stamp a new store with :data:`SCHEMA_VERSION` and zero counts, upgrade an older one,
    refuse any other."""
    row = conn.execute(sql.SCHEMA_VERSION_OF).fetchone()
    if row is None:
        conn.execute(sql.INSERT_SCHEMA_VERSION, (SCHEMA_VERSION,))
        conn.executemany(sql.INSERT_COUNTER, [(c,) for c in sql.COUNTERS])
    elif row[0] in UPGRADABLE:
        if row[0] == "3":
            _migrate(conn, "4", lambda: _to_version_4(conn))
        _migrate(conn, "5", lambda: _to_version_5(conn, path))
    elif row[0] != SCHEMA_VERSION:
        raise KGError(f"{path}: schema version {row[0]}, expected {SCHEMA_VERSION}")


def _migrate(conn: sqlite3.Connection, target: str, step: Callable[[], None]) -> None:
    """Upgrade to version ``target`` by ``step``, in one transaction, unless another process
    has just done so."""
    conn.execute(sql.BEGIN)
    try:
        version = conn.execute(sql.SCHEMA_VERSION_OF).fetchone()
        if int(version[0]) < int(target):
            step()
            conn.execute(sql.SET_SCHEMA_VERSION, (target,))
        conn.execute(sql.COMMIT)
    except BaseException:
        conn.execute(sql.ROLLBACK)
        raise


def _to_version_4(conn: sqlite3.Connection) -> None:
    """Version 4 flags heads (``entity.head``), so that the name index holds only them, and
    clusters aliases by entity (the order a load adds them in), names in a second index."""
    columns = {r[1] for r in conn.execute(sql.ENTITY_COLUMNS)}
    if "head" not in columns:
        conn.execute(sql.ADD_HEAD_COLUMN)
    conn.execute(sql.FLAG_HEADS)
    conn.execute(sql.DROP_NAME_INDEX)
    for statement in sql.ALIAS_V4:
        conn.execute(statement)


def _to_version_5(conn: sqlite3.Connection, path: Path) -> None:
    """Version 5 finds names by their CRC-32 (``entity.crc``, an index of 4-byte keys)
    instead of a unique index of 128-bit digests, which loads had to compute."""
    conn.execute(sql.DROP_DIGEST_INDEX)
    conn.execute(sql.ADD_CRC_COLUMN)
    conn.create_function(sql.CRC_FUNCTION, 1, crc32, deterministic=True)
    conn.execute(sql.SET_CRCS)
    try:
        for statement in sql.DROP_DIGEST_COLUMNS:
            conn.execute(statement)
    except sqlite3.OperationalError as e:
        raise KGError(
            f"{path}: upgrading this store needs SQLite 3.35 or later "
            f"(this is {sqlite3.sqlite_version}): {e}"
        ) from None
