"""Entity and relation ids for a bulk load into :class:`kg.embedded.EmbeddedStore`.

DESIGN.md section 2. During a load, the process that prepares batches (the loader's parser
process for large files) is the only one that assigns ids: :class:`BatchIds` maps every name of
a batch to the id it already has or to the next free one, so the writing process only appends
rows (:class:`IdBatch`). A name is looked up, in this order,

1. among the names of the last few batches, which stay in memory at least until the writer has
   committed them (so a name the store does not hold yet is never given two ids);
2. in a Bloom filter of every name the store holds: a name it has never seen is new without a
   query, which is most names of a large load (the filter is built once enough names have
   been looked up to pay for reading the store's digests);
3. in the store's digest index, through a read-only connection of its own (WAL lets it read
   while the loader writes).

Ids therefore follow the order in which names first appear in the source, whatever the batch
size or process, so a load resumed after a kill ends with the same ids as an uninterrupted one.
Memory stays small: the window holds a few batches, and the Bloom filter takes 16 MiB for the
first ~11 M names and about 1.5 bytes a name beyond (a false positive costs one query).

Per million rows of ``bench/kg_load.py`` this takes about 1.8 s (digests 0.4 s, distinct names
and id arrays 0.8 s, window and Bloom filter 0.4 s), in the parser process, next to 0.9 s of
CSV parsing and 0.5 s of alias extraction.
"""

from __future__ import annotations

import sqlite3
import sys
from array import array
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from itertools import chain, compress, count, repeat
from operator import is_, itemgetter, not_
from pathlib import Path

from kg.triples import Triple

WINDOW_BATCHES = 2  # committed batches whose names stay in memory (heads recur as tails nearby)
RELATION_CACHE = 100_000
BLOOM_LOG2_BITS = 27  # the first layer of the Bloom filter: 16 MiB
BLOOM_HASHES = 3
BLOOM_BITS_PER_NAME = 12  # 1% false positives with 3 hashes
BLOOM_PAYBACK = 6  # a query costs about as much as reading 6-7 digests into the filter
_ENTITY_ID = "SELECT id FROM entity WHERE hid = ? AND hid2 = ?"
_RELATION_ID = "SELECT id FROM relation WHERE name = ?"
_RELATION, _HEAD_TAIL = itemgetter(1), itemgetter(0, 2)  # of a triple
_ALIAS, _ALIASED = itemgetter(0), itemgetter(1)  # of an (alias, entity name) pair
#: The highest committed entity and relation ids (ids are dense: also their counts).
COMMITTED_IDS = """SELECT (SELECT coalesce(max(id), 0) FROM entity),
    (SELECT coalesce(max(id), 0) FROM relation)"""


def name_digest(name: str) -> bytes:
    """128-bit BLAKE2b digest of a name: an entity's identity key.

    A collision between two names would be needed to merge two entities; at 1e9 names its
    probability is about 1e-21.
    """
    return blake2b(name.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def name_key(name: str) -> tuple[int, int]:
    """The digest as the two signed 64-bit ints the store indexes (``hid``, ``hid2``)."""
    d = name_digest(name)
    return int.from_bytes(d[:8], "little", signed=True), int.from_bytes(
        d[8:], "little", signed=True
    )


def _int64s(data: bytes) -> array:
    """Little-endian 64-bit ints as an ``array('q')``."""
    out = array("q")
    out.frombytes(data)
    if sys.byteorder == "big":
        out.byteswap()
    return out


@dataclass
class IdBatch:
    """A batch for :meth:`EmbeddedStore.write_prepared` in which every name has its final id.

    New entities have consecutive ids from ``first_entity``, new relations from
    ``first_relation``. Names travel as UTF-8 and ids as arrays, which pickle as plain bytes, so
    handing a batch from the parser process to the writer costs little.
    """

    first_entity: int
    entities: list[bytes]  # UTF-8
    digests: bytes  # 16 bytes per new entity
    entity_heads: bytes  # 1 per new entity that is a head (has facts of its own), else 0
    old_heads: array  # entities from before the batch that are heads in it
    first_relation: int
    relations: list[str]
    ends: array  # head and tail of each triple, in turn
    rels: array
    alias_names: list[str]
    alias_entities: array

    @property
    def next_entity(self) -> int:
        return self.first_entity + len(self.entities)

    @property
    def next_relation(self) -> int:
        return self.first_relation + len(self.relations)

    def entity_rows(self) -> Iterator[tuple[int, int, int, bytes]]:
        keys = _int64s(self.digests)
        return zip(
            count(self.first_entity),
            keys[0::2],
            keys[1::2],
            self.entities,
            self.entity_heads,
        )

    def old_head_rows(self) -> Iterator[tuple[int]]:
        return zip(self.old_heads)

    def relation_rows(self) -> Iterator[tuple[int, str]]:
        return zip(count(self.first_relation), self.relations)

    def triple_rows(self) -> Iterator[tuple[int, int, int]]:
        return zip(self.ends[0::2], self.rels, self.ends[1::2], strict=True)

    def alias_rows(self) -> Iterator[tuple[str, int]]:
        return zip(self.alias_names, self.alias_entities, strict=True)


class _Bloom:
    """A Bloom filter of name digests (numpy, a batch at a time) that grows in layers: 16 MiB
    for the first ~11 M names (1% false positives), then a layer twice the size of the last
    one whenever that one is full, so memory stays near 1.5 bytes a name."""

    def __init__(self) -> None:
        import numpy as np

        self.np = np
        self.steps = np.arange(BLOOM_HASHES, dtype=np.uint64)
        self.layers: list[tuple[np.ndarray, np.uint64]] = []  # (bits, bit mask)
        self._grow(BLOOM_LOG2_BITS)

    def _grow(self, log2_bits: int) -> None:
        bits = self.np.zeros(1 << (log2_bits - 3), dtype=self.np.uint8)
        self.layers.append((bits, self.np.uint64((1 << log2_bits) - 1)))
        self.room = (1 << log2_bits) // BLOOM_BITS_PER_NAME

    def _positions(self, digests: bytes, mask):
        d = self.np.frombuffer(digests, dtype="<u8").reshape(-1, 2)
        pos = (d[:, :1] + (d[:, 1:] | 1) * self.steps) & mask  # (n, BLOOM_HASHES)
        return pos >> 3, (1 << (pos & 7)).astype(self.np.uint8)

    def might_contain(self, digests: bytes) -> list[bool]:
        found = None
        for bits, mask in self.layers:
            byte, bit = self._positions(digests, mask)
            here = ((bits[byte] & bit) != 0).all(axis=1)
            found = here if found is None else found | here
        return found.tolist()

    def add(self, digests: bytes) -> None:
        if not digests:
            return
        bits, mask = self.layers[-1]
        byte, bit = self._positions(digests, mask)
        self.np.bitwise_or.at(bits, byte.ravel(), bit.ravel())
        self.room -= len(digests) // 16
        if self.room <= 0:
            self._grow(int(mask).bit_length() + 1)


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
        entities, relations = self._conn.execute(COMMITTED_IDS).fetchone()
        self._next_entity, self._next_relation = entities + 1, relations + 1
        # Names of recent batches, digest -> id: one dict per batch, with the highest entity
        # and relation ids assigned up to it, and all of them merged into one for lookups.
        self._batches: deque[tuple[dict[bytes, int], int, int]] = deque()
        self._window: dict[bytes, int] = {}
        self._relations: dict[str, int] = {}
        self._bloom: _Bloom | None = None
        self._stored, self._queries = entities, 0  # ids are dense: max id = count

    def _build_bloom(self) -> _Bloom:
        """A Bloom filter of every name the store holds or this load has named so far (those
        not committed yet are all in the window)."""
        bloom = _Bloom()
        cur = self._conn.execute("SELECT hid, hid2 FROM entity")
        while rows := cur.fetchmany(1 << 16):
            bloom.add(array("q", chain.from_iterable(rows)).tobytes())
        bloom.add(b"".join(self._window))
        return bloom

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _forget_committed(self) -> None:
        """Drop names of committed batches beyond the window (never uncommitted ones)."""
        entities, relations = self._conn.execute(COMMITTED_IDS).fetchone()
        dropped = False
        while len(self._batches) > WINDOW_BATCHES:
            _, last_entity, last_relation = self._batches[0]
            if last_entity > entities or last_relation > relations:
                break
            self._batches.popleft()
            dropped = True
        if dropped:
            self._window = {}
            for ids, _, _ in self._batches:
                self._window.update(ids)
        if len(self._relations) > RELATION_CACHE and self._next_relation - 1 <= relations:
            self._relations.clear()

    def __call__(self, triples: Sequence[Triple], aliases: Sequence[tuple[str, str]]) -> IdBatch:
        if self._conn is None:
            self._open()
        self._forget_committed()
        first_entity, first_relation = self._next_entity, self._next_relation
        ends = list(chain.from_iterable(map(_HEAD_TAIL, triples)))  # head, tail, head, ...
        # Distinct names in order of first appearance, so that ids follow the file.
        names = dict.fromkeys(ends)
        distinct = list(names)
        encoded = [n.encode("utf-8", "surrogatepass") for n in distinct]
        digests = [blake2b(e, digest_size=16).digest() for e in encoded]
        ids, new = self._entity_ids(digests)
        names.update(zip(distinct, ids, strict=True))
        relations = dict.fromkeys(map(_RELATION, triples))
        new_relations = self._relation_ids(relations)
        batch_ids = dict(zip(digests, ids, strict=True))
        self._batches.append((batch_ids, self._next_entity - 1, self._next_relation - 1))
        self._window.update(batch_ids)
        name_id = names.__getitem__
        # Flag the heads: new ones in their rows, earlier ones by an update.
        entity_heads, old_heads = bytearray(len(new)), array("q")
        for eid in map(name_id, dict.fromkeys(ends[0::2])):
            if eid >= first_entity:
                entity_heads[eid - first_entity] = 1
            else:
                old_heads.append(eid)
        return IdBatch(
            first_entity=first_entity,
            entities=list(map(encoded.__getitem__, new)),
            digests=b"".join(map(digests.__getitem__, new)),
            entity_heads=bytes(entity_heads),
            old_heads=old_heads,
            first_relation=first_relation,
            relations=new_relations,
            ends=array("q", list(map(name_id, ends))),
            rels=array("q", list(map(relations.__getitem__, map(_RELATION, triples)))),
            alias_names=list(map(_ALIAS, aliases)),
            alias_entities=array("q", list(map(name_id, map(_ALIASED, aliases)))),
        )

    def _entity_ids(self, digests: list[bytes]) -> tuple[list[int], list[int]]:
        """Ids of the names with these digests, and the positions of the new ones (numbered
        in order from the next free id)."""
        ids: list = list(map(self._window.get, digests))
        unknown = list(compress(range(len(ids)), map(is_, ids, repeat(None))))
        if not unknown:
            return ids, []
        # Without a Bloom filter every unknown name costs a query (7 us). Reading the store's
        # digests into one costs 1 us a name, so it pays once a sixth as many names have been
        # asked for: at once for an empty store, never for a small load into a large one.
        if self._bloom is None and self._queries * BLOOM_PAYBACK >= self._stored:
            self._bloom = self._build_bloom()
        if self._bloom is None:
            maybe = [True] * len(unknown)
            self._queries += len(unknown)
        else:
            maybe = self._bloom.might_contain(b"".join(map(digests.__getitem__, unknown)))
        new = list(compress(unknown, map(not_, maybe)))
        if any(maybe):
            query = self._conn.execute
            for i in compress(unknown, maybe):
                key = _int64s(digests[i])
                row = query(_ENTITY_ID, (key[0], key[1])).fetchall()
                if row:
                    ids[i] = row[0][0]
                else:  # a false positive
                    new.append(i)
            new.sort()
        for i, eid in zip(new, count(self._next_entity)):
            ids[i] = eid
        self._next_entity += len(new)
        if self._bloom is not None:
            self._bloom.add(b"".join(map(digests.__getitem__, new)))
        return ids, new

    def _relation_ids(self, relations: dict[str, int | None]) -> list[str]:
        """Sets the id of each relation name; returns the new names (in order)."""
        new = []
        for name in relations:
            rid = self._relations.get(name)
            if rid is None:
                row = self._conn.execute(_RELATION_ID, (name,)).fetchall()
                if row:
                    rid = row[0][0]
                else:
                    rid = self._next_relation
                    self._next_relation += 1
                    new.append(name)
                self._relations[name] = rid
            relations[name] = rid
        return new
