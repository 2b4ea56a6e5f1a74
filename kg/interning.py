"""Entity and relation ids for a bulk load into :class:`kg.embedded.EmbeddedStore`.

Design: docs/architecture.md, section "Knowledge-graph stores"; the measurements behind these
choices: docs/results-kg-store.md.

During a load the process that prepares batches (the loader's parser process for large files)
is the only one that assigns ids: :class:`BatchIds` maps every name of a batch to the id it
already has or to the next free one, so the writing process only appends rows
(:class:`IdBatch`). The preparer keeps a 96-bit key of every name in the store in memory
(:class:`_KeyMap`), made from the store's names when it starts and extended batch by batch.
That costs memory per name, but the store then needs no name index during a load (it builds
its CRC-32 index when the load ends, see :mod:`kg.embedded_load`) and no name costs a query. Being
exact, the map is also what keeps one row per name in the store.

Ids follow the order in which names first appear in the source, whatever the batch size or
process, so a load resumed after a kill ends with the same ids as an uninterrupted one.
"""

from __future__ import annotations

import json
import sqlite3
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, count
from operator import itemgetter
from pathlib import Path
from zlib import crc32

import numpy as np

from kg import sql
from kg.triples import KGError, Triple

RELATION_CACHE = 100_000
MAX_ENTITIES = 1 << 31  # a head and a tail id fit in one 63-bit int (IdBatch.packed_triples)
_RELATION, _HEAD_TAIL = itemgetter(1), itemgetter(0, 2)  # of a triple
_ID, _NAME = itemgetter(0), itemgetter(1)  # of an entity row
_ALIAS, _ALIASED = itemgetter(0), itemgetter(1)  # of an (alias, entity name) pair


def name_crc(name: str) -> int:
    """The CRC-32 of a name's UTF-8: the key the store's name index sorts by
    (``entity.crc``); names that share one are told apart by the name itself."""
    return crc32(name.encode("utf-8", "surrogatepass"))


_SEP = b"\xff"  # never in UTF-8: joins the names a batch carries into one bytes object


def _native_int64s(values) -> array:
    """A numpy int64 array as an ``array('q')`` (which sqlite3 binds, unlike numpy ints)."""
    out = array("q")
    out.frombytes(values.tobytes())
    return out


def _json_ints(values) -> str:
    """A numpy int array as a JSON array."""
    return json.dumps(values.tolist())


def _split(joined: bytes, n: int) -> list[bytearray]:
    """The names again, as bytearrays: sqlite3 binds those without looking for an adapter,
    which it does for every bytes value."""
    return bytearray(joined).split(_SEP) if n else []


@dataclass
class IdBatch:
    """A batch for :meth:`EmbeddedStore.write_prepared` in which every name has its final id.

    New entities have consecutive ids from ``first_entity``, new relations from
    ``first_relation``. Names travel as UTF-8 joined into one bytes object and ids as arrays,
    so a batch pickles as a few plain byte strings, much cheaper to hand from the parser
    process to the writer than lists of names.
    """

    first_entity: int
    entity_count: int
    entities: bytes  # UTF-8 names of the new entities, joined by _SEP
    crcs: array  # their CRC-32s (name_crc)
    entity_heads: bytes  # 1 per new entity that is a head (has facts of its own), else 0
    old_heads: array  # entities from before the batch that are heads in it
    first_relation: int
    relations: list[str]
    ends: array  # head and tail of each triple, in turn
    rels: array
    alias_names: bytes  # UTF-8, joined by _SEP
    alias_entities: array

    @property
    def next_entity(self) -> int:
        return self.first_entity + self.entity_count

    @property
    def next_relation(self) -> int:
        return self.first_relation + len(self.relations)

    def entity_rows(self) -> Iterator[tuple[int, int, bytearray, int]]:
        return zip(
            range(self.first_entity, self.next_entity),
            self.crcs,
            _split(self.entities, self.entity_count),
            self.entity_heads,
            strict=True,
        )

    def old_head_rows(self) -> Iterator[tuple[int]]:
        return zip(self.old_heads)

    def relation_rows(self) -> Iterator[tuple[int, str]]:
        return zip(count(self.first_relation), self.relations)

    def packed_triples(self) -> list[tuple[int, int, int, int, int, str]]:
        """The triples as parameters of :data:`kg.sql.INSERT_TRIPLES`: each a JSON array
        of ints ``head << head_shift | relation << relation_shift | tail`` and how to unpack
        them (shifts, masks, a relation added to all), which SQLite's ``json_each`` reads in
        C, faster than binding the triples row by row with ``executemany``.

        Heads, relations and tails that fit in 63 bits together make one array, in the
        batch's order. Otherwise there is an array per relation (heads and tails fit, since
        entity ids are below 2**31), inserted relation by relation, which is slower.
        """
        if not self.rels:
            return []
        ends = np.frombuffer(self.ends, dtype=np.int64)
        heads, tails = ends[0::2], ends[1::2]
        rels = np.frombuffer(self.rels, dtype=np.int64)
        tail_bits, rel_bits = int(tails.max()).bit_length(), int(rels.max()).bit_length()
        tail_mask = (1 << tail_bits) - 1
        if int(heads.max()).bit_length() + rel_bits + tail_bits <= 63:
            packed = (heads << (rel_bits + tail_bits)) | (rels << tail_bits) | tails
            shift = rel_bits + tail_bits
            return [(shift, tail_bits, (1 << rel_bits) - 1, 0, tail_mask, _json_ints(packed))]
        order = np.argsort(rels, kind="stable")
        rels, packed = rels[order], ((heads << tail_bits) | tails)[order]
        starts = np.flatnonzero(np.diff(rels)) + 1
        return [
            (tail_bits, 0, 0, int(rels[at]), tail_mask, _json_ints(part))
            for at, part in zip(np.r_[0, starts], np.split(packed, starts), strict=True)
        ]

    def alias_rows(self) -> Iterator[tuple[bytearray, int]]:
        names = _split(self.alias_names, len(self.alias_entities))
        return zip(names, self.alias_entities, strict=True)


class _KeyMap:
    """Exact map from 96-bit name keys to entity ids, in sorted numpy runs: 16 bytes an entity.

    A key is two int64s (:meth:`BatchIds._keys`); an entry keeps the first (the sort key), the
    low 32 bits of the second and the id (below ``MAX_ENTITIES``): two names would need the
    same 96 bits to be confused, about 1e-13 at Ownthink's 1e8 names. A batch's new names make
    a run of their own, merged into the run before it while that one is at most twice its
    size, so there are O(log n) runs and each entry is copied O(log n) times. A lookup is one
    binary search per run, a batch at a time.
    """

    def __init__(self) -> None:
        self.runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (key, key2 low, id)

    def add(self, keys, ids) -> None:
        """``keys``: an (n, 2) int64 array of keys not in the map; ``ids``: theirs."""
        if not len(ids):
            return
        if int(ids.max()) >= MAX_ENTITIES:
            raise KGError(f"more than {MAX_ENTITIES - 1} entities: beyond what a load can number")
        order = np.argsort(keys[:, 0], kind="stable")
        run = (keys[order, 0], keys[order, 1].astype(np.int32), ids[order].astype(np.uint32))
        while self.runs and len(self.runs[-1][0]) <= 2 * len(run[0]):
            run = self._merge(self.runs.pop(), run)
        self.runs.append(run)

    def _merge(self, a, b):
        """Two sorted runs as one (b's entries after a's equal keys)."""
        at = np.searchsorted(a[0], b[0], side="right") + np.arange(len(b[0]))
        from_a = np.ones(len(a[0]) + len(b[0]), dtype=bool)
        from_a[at] = False
        merged = []
        for x, y in zip(a, b, strict=True):
            column = np.empty(len(from_a), dtype=x.dtype)
            column[at] = y
            column[from_a] = x
            merged.append(column)
        return tuple(merged)

    def get(self, keys):
        """Ids of the (n, 2) int64 ``keys``, -1 for those not in the map."""
        # Searched in sorted order, the keys find their places faster (numpy's binary search
        # starts from the previous key's place, and the run's pages stay in the CPU caches).
        order = np.argsort(keys[:, 0])
        key, low = keys[order, 0], keys[order, 1].astype(np.int32)
        found = np.full(len(keys), -1, dtype=np.int64)
        for run_key, run_low, run_ids in self.runs:
            at = np.searchsorted(run_key, key)
            at[at == len(run_key)] = 0
            first = run_key[at] == key
            hit = first & (run_low[at] == low)
            found[hit] = run_ids[at[hit]]
            # Another name with the same first half (1e-3 at 1e8 names): look further on.
            for i in np.flatnonzero(first & ~hit):
                j = int(at[i]) + 1
                while j < len(run_key) and run_key[j] == key[i]:
                    if run_low[j] == low[i]:
                        found[i] = run_ids[j]
                    j += 1
        out = np.empty_like(found)
        out[order] = found  # back in the keys' order
        return out


class BatchIds:
    """The embedded store's ``BatchPreparer``: (triples, aliases) -> :class:`IdBatch`.

    Picklable before first use; it opens its read-only connection to ``path`` lazily, in the
    process that runs it, and reads the highest committed ids there. Only one may run per
    store at a time (the store's load lock sees to it).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])

    def _open(self) -> None:
        self._conn = sqlite3.connect(
            f"{self.path.resolve().as_uri()}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
        )
        entities, relations = self._conn.execute(sql.COMMITTED_IDS).fetchone()
        self._next_entity, self._next_relation = entities + 1, relations + 1
        self._relations: dict[str, int] = {}
        self._ids = _KeyMap()
        # Names as the bytes they are stored as (a store written before sources refused lone
        # surrogates may hold some, which sqlite3 cannot decode to str).
        self._conn.text_factory = bytes
        cur = self._conn.execute(sql.ALL_ENTITIES)
        while rows := cur.fetchmany(1 << 16):
            ids = np.fromiter(map(_ID, rows), dtype=np.int64, count=len(rows))
            encoded = list(map(_NAME, rows))
            names = [e.decode("utf-8", "surrogatepass") for e in encoded]
            self._ids.add(self._keys(names, encoded), ids)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __call__(self, triples: Sequence[Triple], aliases: Sequence[tuple[str, str]]) -> IdBatch:
        if self._conn is None:
            self._open()
        first_entity, first_relation = self._next_entity, self._next_relation
        ends = list(chain.from_iterable(map(_HEAD_TAIL, triples)))  # head, tail, head, ...
        # Distinct names in order of first appearance, so that ids follow the file.
        names = dict.fromkeys(ends)
        encoded = [n.encode("utf-8", "surrogatepass") for n in names]
        keys = self._keys(names, encoded)
        ids, new = self._entity_ids(keys)
        names.update(zip(names, ids.tolist(), strict=True))
        relations = dict.fromkeys(map(_RELATION, triples))
        new_relations = self._relation_ids(relations)
        name_id = names.__getitem__
        end_ids = np.fromiter(map(name_id, ends), dtype=np.int64, count=len(ends))
        # Flag the heads: new ones in their rows, earlier ones by an update.
        heads = np.unique(end_ids[0::2])
        entity_heads = np.zeros(len(new), dtype=np.uint8)
        entity_heads[heads[heads >= first_entity] - first_entity] = 1
        return IdBatch(
            first_entity=first_entity,
            entity_count=len(new),
            entities=_SEP.join(list(map(encoded.__getitem__, new.tolist()))),
            crcs=_native_int64s(keys[new, 1]),
            entity_heads=entity_heads.tobytes(),
            old_heads=_native_int64s(heads[heads < first_entity]),
            first_relation=first_relation,
            relations=new_relations,
            ends=_native_int64s(end_ids),
            rels=array("q", list(map(relations.__getitem__, map(_RELATION, triples)))),
            alias_names=_SEP.join(
                [a.encode("utf-8", "surrogatepass") for a in map(_ALIAS, aliases)]
            ),
            alias_entities=array("q", list(map(name_id, map(_ALIASED, aliases)))),
        )

    def _keys(self, names, encoded):
        """The names' keys in the map: an (n, 2) int64 array of their ``hash()`` and the
        CRC-32 of their UTF-8, 96 bits in all (two names would need the same 96 to be
        confused). Both are cheap: ``hash`` is computed once per string and cached (the
        batch's dictionary has computed it already), and a CRC-32 is much cheaper than a
        digest such as BLAKE2b; the store indexes the CRC-32 too (:func:`name_crc`).
        ``hash`` differs from process to process, so the map lives in one process, and a
        load that starts reads the store's names again (see :meth:`_open`)."""
        keys = np.empty((len(names), 2), dtype=np.int64)
        keys[:, 0] = np.fromiter(map(hash, names), dtype=np.int64, count=len(names))
        keys[:, 1] = np.fromiter(map(crc32, encoded), dtype=np.int64, count=len(names))
        return keys

    def _entity_ids(self, keys):
        """Ids of the names with these keys, and the positions of the new ones, numbered in
        order from the next free id (both numpy arrays)."""
        ids = self._ids.get(keys)
        new = np.flatnonzero(ids < 0)
        ids[new] = np.arange(self._next_entity, self._next_entity + len(new), dtype=np.int64)
        self._next_entity += len(new)
        self._ids.add(keys[new], ids[new])
        return ids, new

    def _relation_ids(self, relations: dict[str, int | None]) -> list[str]:
        """Sets the id of each relation name; returns the new names (in order)."""
        if (  # forget them once all are committed
            len(self._relations) > RELATION_CACHE
            and self._next_relation - 1 <= self._conn.execute(sql.COMMITTED_IDS).fetchone()[1]
        ):
            self._relations.clear()
        new = []
        for name in relations:
            rid = self._relations.get(name)
            if rid is None:
                row = self._conn.execute(sql.RELATION_ID, (name,)).fetchall()
                if row:
                    rid = row[0][0]
                else:
                    rid = self._next_relation
                    self._next_relation += 1
                    new.append(name)
                self._relations[name] = rid
            relations[name] = rid
        return new
