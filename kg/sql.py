"""Every SQL statement the embedded store (:mod:`kg.embedded`, :mod:`kg.interning`) runs.

The twin of :mod:`kg.cypher`. Parameterised only (``?``): no user text is ever formatted into
a statement. The few that vary are built here by the functions at the end, from a count of
placeholders, an index name of this module or a number (page cache, sorter threads). The
tables: ``entity`` (interned names, flagged heads, CRC-32 of each name), ``relation``,
``triple`` (ids, clustered by head), ``alias`` (clustered by entity), ``load_state`` (one row
per load, for resuming) and ``meta`` (schema version and counts).
"""

from __future__ import annotations

from kg.triples import DISAMBIGUATION_RELATIONS

SCHEMA = """
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
DEFERRED_INDEXES = {
    # exact lookup of any name: its CRC-32, then the name itself among the few that share it
    "entity_by_crc": "CREATE INDEX IF NOT EXISTS entity_by_crc ON entity (crc)",
    # heads only (entities with facts of their own): what prefix search looks for
    "entity_by_name": "CREATE INDEX IF NOT EXISTS entity_by_name ON entity (name) WHERE head = 1",
    "alias_by_name": "CREATE INDEX IF NOT EXISTS alias_by_name ON alias (name, entity)",
}
#: Every index of a clean load: the deferred ones and the tail index, which stays live.
INDEXES = (*DEFERRED_INDEXES, "triple_by_tail")
INDEX_NAMES = "SELECT name FROM sqlite_master WHERE type = 'index'"
#: The ``meta`` rows that hold the counts, updated in each load transaction.
COUNTERS = ("triples", "entities", "relations", "aliases")

# -- connections and transactions ---------------------------------------------------------
JOURNAL_WAL = "PRAGMA journal_mode=WAL"
SYNCHRONOUS_NORMAL = "PRAGMA synchronous=NORMAL"
SYNCHRONOUS_OFF = "PRAGMA synchronous=OFF"
WAL_CHECKPOINT = "PRAGMA wal_checkpoint(TRUNCATE)"
OPTIMIZE = "PRAGMA optimize"
BEGIN = "BEGIN IMMEDIATE"
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"
#: Loads write triples through ``json_each`` (:data:`INSERT_TRIPLES`): built in from 3.38 on.
JSON_CHECK = "SELECT count(*) FROM json_each('[1]')"

# -- schema version and migrations --------------------------------------------------------
SCHEMA_VERSION_OF = "SELECT value FROM meta WHERE key = 'schema'"
INSERT_SCHEMA_VERSION = "INSERT INTO meta VALUES ('schema', ?)"
SET_SCHEMA_VERSION = "UPDATE meta SET value = ? WHERE key = 'schema'"
INSERT_COUNTER = "INSERT OR IGNORE INTO meta VALUES (?, '0')"
ENTITY_COLUMNS = "PRAGMA table_info(entity)"
# version 4: heads flagged, the name index of heads only, aliases clustered by entity
ADD_HEAD_COLUMN = "ALTER TABLE entity ADD COLUMN head INTEGER NOT NULL DEFAULT 0"
FLAG_HEADS = "UPDATE entity SET head = 1 WHERE id IN (SELECT h FROM triple)"
DROP_NAME_INDEX = "DROP INDEX IF EXISTS entity_by_name"
ALIAS_V4 = (
    """CREATE TABLE alias_v4 (
        name TEXT NOT NULL, entity INTEGER NOT NULL, PRIMARY KEY (entity, name)
    ) WITHOUT ROWID""",
    "INSERT INTO alias_v4 (name, entity) SELECT name, entity FROM alias ORDER BY entity, name",
    "DROP TABLE alias",
    "ALTER TABLE alias_v4 RENAME TO alias",
)
# version 5: names found by their CRC-32 (computed by CRC_FUNCTION, registered for it)
CRC_FUNCTION = "kg_crc32"
DROP_DIGEST_INDEX = "DROP INDEX IF EXISTS entity_by_digest"
ADD_CRC_COLUMN = "ALTER TABLE entity ADD COLUMN crc INTEGER NOT NULL DEFAULT 0"
SET_CRCS = f"UPDATE entity SET crc = {CRC_FUNCTION}(CAST(name AS BLOB))"
DROP_DIGEST_COLUMNS = ("ALTER TABLE entity DROP COLUMN hid", "ALTER TABLE entity DROP COLUMN hid2")

# -- loads ---------------------------------------------------------------------------------
LOAD_PROGRESS = "SELECT records_done, complete FROM load_state WHERE source = ?"
ANY_UNFINISHED_LOAD = "SELECT 1 FROM load_state WHERE complete = 0"
UNFINISHED_LOADS = "SELECT source, records_done FROM load_state WHERE complete = 0 ORDER BY updated"
OTHER_LOADS = "SELECT source, records_done, complete FROM load_state WHERE source != ?"
DELETE_LOAD = "DELETE FROM load_state WHERE source = ?"
SET_LOAD_POSITION = "INSERT OR REPLACE INTO load_state VALUES (?, ?, 0, ?)"
FINISH_LOAD = "UPDATE load_state SET complete = 1, updated = ? WHERE source = ?"
ADD_TO_COUNTER = "UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key = ?"
#: The highest committed entity and relation ids (ids are dense: also their counts).
COMMITTED_IDS = """SELECT (SELECT coalesce(max(id), 0) FROM entity),
    (SELECT coalesce(max(id), 0) FROM relation)"""
ALL_ENTITIES = "SELECT id, name FROM entity"
RELATION_ID = "SELECT id FROM relation WHERE name = ?"
INSERT_RELATION = "INSERT INTO relation (id, name) VALUES (?, ?)"
# Names arrive as UTF-8 bytes (the parser process encoded them for their keys anyway).
INSERT_ENTITY = """INSERT INTO entity (id, crc, name, head) VALUES (?, ?, CAST(? AS TEXT), ?)"""
MARK_HEAD = "UPDATE entity SET head = 1 WHERE id = ? AND head = 0"
# IdBatch.packed_triples: the triples of a batch as JSON arrays of packed ints
INSERT_TRIPLES = """INSERT OR IGNORE INTO triple (h, r, t)
    SELECT value >> ?1, ((value >> ?2) & ?3) + ?4, value & ?5 FROM json_each(?6)"""
INSERT_ALIAS = "INSERT OR IGNORE INTO alias (name, entity) VALUES (CAST(? AS TEXT), ?)"

# -- queries -------------------------------------------------------------------------------
ENTITY_ID = "SELECT id FROM entity WHERE crc = ? AND name = ?"
ENTITY_NAME = "SELECT name FROM entity WHERE id = ?"
FACT_SELECT = """SELECT eh.name, rr.name, et.name FROM triple
    JOIN entity eh ON eh.id = triple.h JOIN relation rr ON rr.id = triple.r
    JOIN entity et ON et.id = triple.t"""
# A head has facts of its own: the pointers of a disambiguation page do not count. The
# statements that say so take DISAMBIGUATION_RELATIONS as their parameters.
_NOT_DISAMBIGUATION = f"rr.name NOT IN ({','.join('?' * len(DISAMBIGUATION_RELATIONS))})"
REAL_HEAD = f"""SELECT 1 FROM triple JOIN relation rr ON rr.id = triple.r
    WHERE triple.h = ? AND {_NOT_DISAMBIGUATION} LIMIT 1"""
ALL_HEADS = f"""SELECT name FROM entity WHERE EXISTS (SELECT 1 FROM triple
    JOIN relation rr ON rr.id = triple.r
    WHERE h = entity.id AND {_NOT_DISAMBIGUATION})"""
# An alias may name several heads: the one with most facts, then the first name.
ALIAS_TARGET = """SELECT a.entity FROM alias a JOIN entity e ON e.id = a.entity WHERE a.name = ?
    ORDER BY (SELECT count(*) FROM triple WHERE h = a.entity) DESC, e.name LIMIT 1"""
ALIASES_OF = "SELECT name FROM alias WHERE entity = ? ORDER BY name"
ALL_ALIASES = "SELECT DISTINCT name FROM alias ORDER BY name"
SEARCH = """SELECT name FROM (
    SELECT name FROM entity WHERE head = 1 AND name >= ?1 AND name < ?2
    UNION SELECT name FROM alias WHERE name >= ?1 AND name < ?2)
  ORDER BY name LIMIT ?3"""
ALL_FACTS = f"{FACT_SELECT} ORDER BY triple.h, triple.r, triple.t"


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


STATS = f"SELECT key, value FROM meta WHERE key IN ({_placeholders(len(COUNTERS))})"


def facts(relations: int) -> str:
    """Facts of one head (``?``), of ``relations`` given relations (``?`` each; 0: all), then
    ``LIMIT ? OFFSET ?``."""
    where = "triple.h = ?"
    if relations:
        where += f" AND rr.name IN ({_placeholders(relations)})"
    return f"{FACT_SELECT} WHERE {where} ORDER BY rr.name, et.name LIMIT ? OFFSET ?"


def facts_into(tails: int) -> str:
    """Facts whose tail is one of ``tails`` entity ids (``?`` each), then ``LIMIT ?``."""
    where = f"triple.t IN ({_placeholders(tails)})"
    return f"{FACT_SELECT} WHERE {where} ORDER BY eh.name, rr.name LIMIT ?"


def drop_index(name: str) -> str:
    """Drop one of :data:`DEFERRED_INDEXES` (index names cannot be parameters)."""
    if name not in DEFERRED_INDEXES:
        raise ValueError(f"not a deferred index: {name!r}")
    return f"DROP INDEX IF EXISTS {name}"


def cache_size(kib: int) -> str:
    """The connection's page cache, in KiB."""
    return f"PRAGMA cache_size=-{int(kib)}"


def sorter_threads(threads: int) -> str:
    """Worker threads of SQLite's sorter (0: none), for index builds."""
    return f"PRAGMA threads={int(threads)}"
