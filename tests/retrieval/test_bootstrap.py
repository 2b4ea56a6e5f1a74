"""Bootstrapping is explicit: building a context neither loads the bundled KG nor generates
the demo corpus; :mod:`retrieval.bootstrap` does, for the default store only."""

from __future__ import annotations

import pytest

from common.settings import RunSettings
from kg.cli import open_store_of
from model.data.schema import DataError
from retrieval.bootstrap import ensure_bundled_kg, open_bootstrapped_store
from retrieval.context import load_corpus


def test_no_demo_corpus_until_bootstrap_makes_one(data_dir):
    settings = RunSettings()
    with pytest.raises(DataError, match="no demo corpus: run python -m model.data.demo"):
        load_corpus(settings)
    store = open_bootstrapped_store(settings)
    try:
        assert store.stats()["triples"] > 0  # the bundled FilmKG sample, loaded once
        assert len(load_corpus(settings).videos) > 0
    finally:
        store.close()


def test_a_store_the_user_names_is_never_filled(data_dir, tmp_path):
    settings = RunSettings(db=str(tmp_path / "mine"))
    store = open_store_of(settings)
    try:
        ensure_bundled_kg(store, settings)
        assert store.stats()["triples"] == 0
    finally:
        store.close()


def test_a_named_corpus_needs_its_format(data_dir):
    with pytest.raises(DataError, match="--format livebot needs --corpus PATH"):
        load_corpus(RunSettings(format="livebot"))
