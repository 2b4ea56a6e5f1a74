"""Command-line conventions shared by every entry point (docs/data-contracts.md, section
"Command-line conventions").

The same options mean the same thing everywhere (``--kg``, ``--store``, ``--db``, the Neo4j
connection, ``--json``); user errors print one line naming the file/record and the reason and
exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse

from common.settings import RunSettings
from kg.settings import Neo4jSettings
from kg.sources import KG_KINDS
from kg.store import GraphStore
from kg.stores import STORE_KINDS, open_store


def add_store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kg",
        choices=KG_KINDS,
        default="filmkg",
        help="which knowledge graph (selects the default --db)",
    )
    parser.add_argument(
        "--store",
        choices=STORE_KINDS,
        default="embedded",
        help="embedded SQLite store (default, no server) or a Neo4j server",
    )
    parser.add_argument("--db", help="embedded store directory (default: $DANMAKU_DATA/kg/<kg>)")
    parser.add_argument("--neo4j-uri", help="Bolt URI (default: $NEO4J_URI)")
    parser.add_argument("--neo4j-user", help="user (default: $NEO4J_USER or neo4j)")
    parser.add_argument("--neo4j-password", help="password (default: $NEO4J_PASSWORD)")
    parser.add_argument("--neo4j-database", help="database name (default: $NEO4J_DATABASE)")


def open_store_of(settings: RunSettings, create: bool = True, mode: str = "auto") -> GraphStore:
    """The store the settings name; ``mode``: how an embedded store is opened
    (:data:`kg.embedded.MODES`)."""
    neo4j = Neo4jSettings.from_env(
        settings.neo4j_uri, settings.neo4j_user, settings.neo4j_password, settings.neo4j_database
    )
    return open_store(
        settings.store, settings.db, kg=settings.kg, neo4j=neo4j, create=create, mode=mode
    )
