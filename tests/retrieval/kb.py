"""A small FilmKG-schema knowledge base loaded into an embedded store, for retrieval tests."""

from __future__ import annotations

import json
from pathlib import Path

from kg.embedded import EmbeddedStore
from kg.loader import load


def load_kb(directory: Path, kb: dict) -> EmbeddedStore:
    """``kb`` (``{head: [[head, relation, tail], ...]}``) in a new store under ``directory``."""
    (directory / "kb.json").write_text(json.dumps(kb, ensure_ascii=False), encoding="utf-8")
    store = EmbeddedStore(directory / "db")
    load(store, "filmkg", directory / "kb.json", progress=False)
    return store
