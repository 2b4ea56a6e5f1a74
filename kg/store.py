"""The ``GraphStore`` protocol every knowledge-graph backend implements.

Design: docs/architecture.md, section "Knowledge-graph stores".

Two real backends: :class:`kg.embedded.EmbeddedStore` (SQLite, the default, no server) and
:class:`kg.neo4j_store.Neo4jStore` (the official ``neo4j`` driver). One contract test suite
(``tests/kg/test_store_contract.py``) runs against both. This module imports neither: the
backends import it, and :func:`kg.stores.open_store` picks one.

Counting conventions shared by both backends: an *entity* is any distinct node name (heads and
tails alike), a *relation* a distinct relation name, a *triple* a distinct
``(head, relation, tail)``; aliases point alias names at heads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from kg.triples import Fact, Triple


class BatchPreparer(Protocol):
    """Turns triples and ``(alias, head)`` pairs into a store's ``write_prepared`` input.

    Picklable before its first call (the loader may hand it to its parser process); it may
    keep state between the batches of one load. ``close`` releases what it opened.
    """

    def __call__(self, triples: Sequence[Triple], aliases: Sequence[tuple[str, str]]) -> object: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class FunctionPreparer:
    """A :class:`BatchPreparer` that is a pure (module- or class-level) function."""

    fn: Callable[[Sequence[Triple], Sequence[tuple[str, str]]], object]

    def __call__(self, triples: Sequence[Triple], aliases: Sequence[tuple[str, str]]) -> object:
        return self.fn(triples, aliases)

    def close(self) -> None:
        pass


@runtime_checkable
class GraphStore(Protocol):
    """What the rest of the system may ask of a knowledge graph."""

    kind: str

    # -- loading -------------------------------------------------------------------------
    def load_progress(self, source_key: str) -> int:
        """Records of ``source_key`` already committed by an unfinished load (0 if none)."""

    def batch_preparer(self, source_key: str) -> BatchPreparer:
        """What turns each batch into what ``write_prepared`` takes, for one load of
        ``source_key``; the loader may run it in its parser process, so that this CPU work
        overlaps with the store's writing. Called once per load, before ``load_progress``."""

    def write_prepared(self, batch: object, source_key: str, records_done: int) -> int:
        """Atomically add a prepared batch and record the load position ``records_done``.

        Returns the number of triples that were new; triples the store holds already add
        nothing. Batches come in the order their preparer made them.
        """

    def write_batch(
        self,
        triples: Sequence[Triple],
        aliases: Sequence[tuple[str, str]],
        source_key: str,
        records_done: int,
    ) -> int:
        """``write_prepared(batch_preparer(source_key)(triples, aliases), ...)`` in one call."""

    def finish_load(self, source_key: str) -> None:
        """Mark the load of ``source_key`` complete (a later load reads it again from the top)."""

    # -- queries ---------------------------------------------------------------------------
    def resolve(self, name: str) -> str | None:
        """The head an exact name or alias names (bracketed heads answer to their bare name)."""

    def aliases(self, name: str) -> list[str]:
        """Alias names of the entity ``name`` resolves to, sorted."""

    def facts(
        self, name: str, relations: Sequence[str] | None = None, limit: int = 100, offset: int = 0
    ) -> list[Fact]:
        """Facts whose head is the entity ``name`` resolves to, in a stable order."""

    def search(self, prefix: str, limit: int = 20) -> list[str]:
        """Entity (head) and alias names starting with ``prefix``, sorted, at most ``limit``."""

    def neighbors(self, name: str, hops: int = 1, limit: int = 200) -> list[Fact]:
        """Facts within ``hops`` (1 or 2) of the entity, in either direction, de-duplicated
        (both backends delegate to :func:`neighbourhood`)."""

    def facts_into(self, names: Sequence[str], limit: int) -> list[Fact]:
        """Facts whose tail is one of ``names``, ordered by head then relation."""

    def stats(self) -> dict[str, int]:
        """Counts: ``triples``, ``entities``, ``relations``, ``aliases``."""

    def iter_facts(self) -> Iterator[Fact]:
        """Every stored fact (for export), streamed."""

    def iter_names(self) -> Iterator[tuple[str, str]]:
        """``(name, head)`` for every head (``name == head``) and every alias name (the head
        :meth:`resolve` gives it): the lexicon entity linking matches text against."""

    def heads_among(self, names: Sequence[str]) -> set[str]:
        """Which of ``names`` are heads (have facts of their own): one query per call."""

    def close(self) -> None: ...


class StoreBase:
    """What both backends share: one-call batch writes, the neighbourhood walk over their
    primitives, and use as a context manager."""

    def write_batch(
        self,
        triples: Sequence[Triple],
        aliases: Sequence[tuple[str, str]],
        source_key: str,
        records_done: int,
    ) -> int:
        prepare = self.batch_preparer(source_key)
        try:
            return self.write_prepared(prepare(triples, aliases), source_key, records_done)
        finally:
            prepare.close()

    def neighbors(self, name: str, hops: int = 1, limit: int = 200) -> list[Fact]:
        return neighbourhood(self, name, hops, limit)

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def neighbourhood(store: GraphStore, name: str, hops: int, limit: int) -> list[Fact]:
    """Facts within ``hops`` of an entity, in either direction, at most ``limit``.

    A fact points *into* an entity when its tail is the entity's name or one of its aliases
    (FilmKG's ``代表作品`` lists ``阿甘正传``, not the bracketed head), and a neighbour reached
    by a tail value is resolved the same way before the second hop.
    """
    if hops not in (1, 2):
        raise ValueError(f"hops must be 1 or 2, got {hops}")
    entity = store.resolve(name)
    if entity is None:
        return []

    def around(e: str, budget: int) -> list[Fact]:
        out = store.facts(e, limit=budget)
        return out + store.facts_into([e, *store.aliases(e)], budget)

    seen: dict[Fact, None] = {}
    for fact in around(entity, limit):
        seen[fact] = None
    if hops == 2:
        others = dict.fromkeys(f.tail if f.head == entity else f.head for f in list(seen))
        for other in others:
            if len(seen) >= limit:
                break
            resolved = store.resolve(other)
            if resolved is not None and resolved != entity:
                for fact in around(resolved, limit - len(seen)):
                    seen[fact] = None
    return list(seen)[:limit]
