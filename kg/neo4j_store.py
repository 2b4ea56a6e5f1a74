"""``Neo4jStore``: the knowledge graph in a Neo4j server, through the official driver.

Design: docs/architecture.md, section "Knowledge-graph stores".

The driver is passed in (or built by :meth:`Neo4jStore.connect` from
:class:`kg.settings.Neo4jSettings`); every statement is a parameterised constant of
:mod:`kg.cypher`; writes are batched ``UNWIND $rows`` upserts in managed transactions, which
the driver retries on transient errors; a uniqueness constraint on entity names makes the
``MERGE`` of a batch idempotent; the load checkpoint is written in the same transaction as
its batch, so an interrupted load resumes exactly where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from kg import cypher
from kg.store import FunctionPreparer, StoreBase
from kg.triples import DISAMBIGUATION_RELATIONS, Fact, KGError, Triple

log = logging.getLogger(__name__)
_DISAMBIGUATION = sorted(DISAMBIGUATION_RELATIONS)


class Neo4jStore(StoreBase):
    """A :class:`kg.store.GraphStore` in a Neo4j database (or any Bolt server speaking Cypher)."""

    kind = "neo4j"

    def __init__(self, driver, database: str | None = None) -> None:
        self.driver, self.database = driver, database
        self.location = database or "(default database)"
        for statement in cypher.CONSTRAINTS:
            self._write(lambda tx, s=statement: tx.run(s).consume())

    @classmethod
    def connect(cls, settings) -> Neo4jStore:
        """Open a driver from :class:`kg.settings.Neo4jSettings`; a clear error if unreachable."""
        import neo4j
        from neo4j.exceptions import AuthError, ServiceUnavailable

        try:
            driver = neo4j.GraphDatabase.driver(
                settings.uri,
                auth=(settings.user, settings.password),
                max_transaction_retry_time=30.0,
            )
            driver.verify_connectivity()
        except (ServiceUnavailable, AuthError, ValueError, OSError) as e:
            raise KGError(
                f"cannot connect to Neo4j at {settings.uri} as {settings.user}: {e}"
            ) from None
        store = cls(driver, settings.database)
        store.location = f"{settings.uri}/{settings.database or ''}"
        return store

    def __repr__(self) -> str:
        return f"Neo4jStore({self.location!r})"

    # -- transactions ----------------------------------------------------------------------
    def _session(self):
        return self.driver.session(database=self.database)

    def _write(self, fn):
        with self._session() as s:
            return s.execute_write(fn)

    def _read(self, query: str, **params) -> list[dict]:
        with self._session() as s:
            return s.execute_read(lambda tx: [r.data() for r in tx.run(query, **params)])

    def _scalar(self, query: str, **params):
        rows = self._read(query, **params)
        return rows[0]["n"] if rows else None

    # -- loading -------------------------------------------------------------------------
    def load_progress(self, source_key: str) -> int:
        rows = self._read(cypher.GET_LOAD_STATE, source=source_key)
        if not rows or rows[0]["complete"]:
            return 0
        return int(rows[0]["n"])

    def batch_preparer(self, source_key: str) -> FunctionPreparer:
        return FunctionPreparer(Neo4jStore.prepare_batch)

    @staticmethod
    def prepare_batch(
        triples: Sequence[Triple], aliases: Sequence[tuple[str, str]]
    ) -> dict[str, list]:
        """The ``$names`` and ``$rows`` parameters of the batch's upserts."""
        return {
            "names": list(dict.fromkeys(n for t in triples for n in (t.head, t.tail))),
            "rows": [{"h": t.head, "r": t.relation, "t": t.tail} for t in triples],
            "aliases": [{"alias": a, "head": h} for a, h in aliases],
        }

    def write_prepared(self, batch: dict[str, list], source_key: str, records_done: int) -> int:
        def work(tx) -> int:
            tx.run(cypher.MERGE_ENTITIES, names=batch["names"]).consume()
            created = tx.run(cypher.MERGE_TRIPLES, rows=batch["rows"]).consume().counters
            tx.run(cypher.MERGE_ALIASES, rows=batch["aliases"]).consume()
            tx.run(
                cypher.SET_LOAD_STATE,
                source=source_key,
                records_done=records_done,
                complete=False,
            ).consume()
            return created.relationships_created

        return self._write(work)

    def finish_load(self, source_key: str) -> None:
        self._write(
            lambda tx: tx.run(
                cypher.SET_LOAD_STATE, source=source_key, records_done=0, complete=True
            ).consume()
        )

    # -- queries ---------------------------------------------------------------------------
    def resolve(self, name: str) -> str | None:
        if self._read(cypher.HEAD_NAMED, name=name, disambiguation=_DISAMBIGUATION):
            return name
        targets = self._read(cypher.ALIAS_TARGETS, name=name)
        if targets:
            # Same rule as the embedded store: most facts first, then the first name.
            return min(targets, key=lambda r: (-r["facts"], r["name"]))["name"]
        rows = self._read(cypher.ENTITY_NAMED, name=name)
        return rows[0]["name"] if rows else None

    def aliases(self, name: str) -> list[str]:
        entity = self.resolve(name)
        if entity is None:
            return []
        return sorted(r["name"] for r in self._read(cypher.ALIASES_OF, name=entity))

    def facts(
        self, name: str, relations: Sequence[str] | None = None, limit: int = 100, offset: int = 0
    ) -> list[Fact]:
        entity = self.resolve(name)
        if entity is None:
            return []
        if relations:
            rows = self._read(
                cypher.FACTS_OF_RELATIONS,
                name=entity,
                relations=list(relations),
                limit=limit,
                offset=offset,
            )
        else:
            rows = self._read(cypher.FACTS, name=entity, limit=limit, offset=offset)
        return [Fact(r["head"], r["relation"], r["tail"]) for r in rows]

    def search(self, prefix: str, limit: int = 20) -> list[str]:
        heads = self._read(cypher.SEARCH_HEADS, prefix=prefix, limit=limit)
        aliases = self._read(cypher.SEARCH_ALIASES, prefix=prefix, limit=limit)
        return sorted({r["name"] for r in heads} | {r["name"] for r in aliases})[:limit]

    def facts_into(self, names: Sequence[str], limit: int) -> list[Fact]:
        rows = self._read(cypher.FACTS_INTO, names=list(dict.fromkeys(names)), limit=limit)
        return [Fact(r["head"], r["relation"], r["tail"]) for r in rows]

    def stats(self) -> dict[str, int]:
        return {
            "triples": self._scalar(cypher.COUNT_TRIPLES) or 0,
            "entities": self._scalar(cypher.COUNT_ENTITIES) or 0,
            "relations": self._scalar(cypher.COUNT_RELATIONS) or 0,
            "aliases": self._scalar(cypher.COUNT_ALIASES) or 0,
        }

    def iter_names(self) -> Iterator[tuple[str, str]]:
        for row in self._read(cypher.ALL_HEADS, disambiguation=_DISAMBIGUATION):
            yield row["name"], row["name"]
        for row in self._read(cypher.ALL_ALIASES):
            head = self.resolve(row["name"])
            if head is not None and head != row["name"]:
                yield row["name"], head

    def heads_among(self, names: Sequence[str]) -> set[str]:
        rows = self._read(
            cypher.HEADS_AMONG, names=list(dict.fromkeys(names)), disambiguation=_DISAMBIGUATION
        )
        return {r["name"] for r in rows}

    def iter_facts(self) -> Iterator[Fact]:
        with self._session() as s:
            for r in s.run(cypher.ALL_FACTS):
                yield Fact(r["head"], r["relation"], r["tail"])

    def close(self) -> None:
        self.driver.close()
