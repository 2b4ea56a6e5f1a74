"""What a fresh install builds on first use, called explicitly by every entry point before it
builds its context: the bundled FilmKG sample loaded into the empty default store, and the demo
corpus generated when no ``--corpus`` is given. Nothing else builds either, so a library call
never loads a KG or writes a corpus behind its caller's back."""

from __future__ import annotations

import logging

from common.settings import RunSettings
from kg.settings import BUNDLED_FILMKG
from kg.store import GraphStore

log = logging.getLogger(__name__)


def ensure_bundled_kg(store: GraphStore, settings: RunSettings) -> None:
    """Load the bundled FilmKG sample into the default embedded store when it is empty."""
    default = store.kind == "embedded" and settings.kg == "filmkg" and settings.db is None
    if default and store.stats()["triples"] == 0:
        from kg.loader import load

        log.info("loading the bundled FilmKG sample into %s", store)
        load(store, "filmkg", BUNDLED_FILMKG, progress=False)


def ensure_demo_corpus(settings: RunSettings) -> None:
    """Generate the demo corpus (or bring it up to date) when the settings name no corpus."""
    if settings.corpus is None and settings.format in ("demo", None):
        from model.data.demo import ensure_demo

        ensure_demo()


def bootstrap(settings: RunSettings, store: GraphStore) -> None:
    """Both of the above: what a command needs before :func:`retrieval.context.build_context`."""
    ensure_bundled_kg(store, settings)
    ensure_demo_corpus(settings)


def open_bootstrapped_store(settings: RunSettings) -> GraphStore:
    """An entry point's first step: the store the settings name, with :func:`bootstrap` done
    (the store is closed again if bootstrapping fails)."""
    from kg.cli import open_store_of

    store = open_store_of(settings)
    try:
        bootstrap(settings, store)
    except BaseException:
        store.close()
        raise
    return store
