"""Where generated state lives and how to reach Neo4j: the project's one settings module.

Design: docs/architecture.md, section "Data flow".

All generated state lives under one data directory, ``./data`` unless ``DANMAKU_DATA`` says
otherwise; Neo4j connection settings come from the environment (``NEO4J_URI``,
``NEO4J_USER``, ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``) or the command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from common.paths import data_dir

BUNDLED_FILMKG = Path(__file__).parent / "data" / "filmkg_sample.json"


def default_db(kg: str) -> Path:
    """The embedded store a ``--kg`` loads into when no ``--db`` is given."""
    return data_dir() / "kg" / kg


@dataclass(frozen=True)
class Neo4jSettings:
    uri: str = "bolt://127.0.0.1:7687"
    user: str = "neo4j"
    password: str = ""
    database: str | None = None

    @classmethod
    def from_env(
        cls,
        uri: str | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
    ) -> Neo4jSettings:
        """Explicit values win over ``NEO4J_*`` variables, which win over the defaults."""
        env = os.environ
        return cls(
            uri=uri or env.get("NEO4J_URI") or cls.uri,
            user=user or env.get("NEO4J_USER") or cls.user,
            password=password if password is not None else env.get("NEO4J_PASSWORD", ""),
            database=database or env.get("NEO4J_DATABASE") or None,
        )
