"""Opening a knowledge-graph store by its ``--store`` kind: the one module that knows every
backend.

Design: docs/architecture.md, section "Knowledge-graph stores".

Apart from :mod:`kg.store` (the protocol the backends import), so that no backend imports a
module that imports it back. A backend's module is imported when a store of its kind is
opened, so that naming the kinds (``--store`` choices, the API's settings) loads neither.
"""

from __future__ import annotations

from kg.settings import Neo4jSettings, default_db
from kg.store import GraphStore

STORE_KINDS = ("embedded", "neo4j")


def open_store(
    kind: str = "embedded",
    db: str | None = None,
    *,
    kg: str = "filmkg",
    neo4j: Neo4jSettings | None = None,
    create: bool = True,
    mode: str = "auto",
) -> GraphStore:
    """Open a store by ``--store`` kind.

    ``embedded``: the SQLite store under ``db`` (default ``data/kg/<kg>``; with
    ``create=False`` it must already exist), opened as ``mode`` says
    (:data:`kg.embedded.MODES`: ``read`` for readers, ``load`` for loads). ``neo4j``: a
    server reached with :class:`kg.settings.Neo4jSettings` (default: from the environment).
    """
    if kind == "embedded":
        from kg.embedded import EmbeddedStore

        return EmbeddedStore(db if db is not None else default_db(kg), create=create, mode=mode)
    if kind == "neo4j":
        from kg.neo4j_store import Neo4jStore

        return Neo4jStore.connect(neo4j or Neo4jSettings.from_env())
    raise ValueError(f"unknown store kind {kind!r} (known: {', '.join(STORE_KINDS)})")
