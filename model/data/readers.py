"""One entry point for every corpus format (``--corpus PATH --format F``; formats:
docs/data-contracts.md, section "Corpora").

``read_corpus(fmt, path)`` dispatches to the format's reader, imported only when asked for:

    demo, movielc   model.data.movielc.read_movielc   (the demo corpus uses the MovieLC layout)
    livebot         model.data.livebot.read_livebot   (LiveBot, Ma et al. 2019)
    videoic         model.data.videoic.read_videoic   (VideoIC, Wang et al. 2020)
    twitch          model.data.twitch.read_twitch     (LiveChat / SFAT)
    iqiyi           model.data.iqiyi.read_iqiyi       (engaging comments with likes)
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

from model.data.schema import Corpus, DataError

FORMATS = ("demo", "livebot", "videoic", "movielc", "twitch", "iqiyi")

_READERS = {
    "demo": ("model.data.movielc", "read_movielc"),
    "movielc": ("model.data.movielc", "read_movielc"),
    "livebot": ("model.data.livebot", "read_livebot"),
    "videoic": ("model.data.videoic", "read_videoic"),
    "twitch": ("model.data.twitch", "read_twitch"),
    "iqiyi": ("model.data.iqiyi", "read_iqiyi"),
}


def read_corpus(fmt: str, path: str | Path, **options: Any) -> Corpus:
    """Read the corpus at ``path`` in format ``fmt``; ``options`` go to the format's reader
    (e.g. ``split="original"`` for LiveBot)."""
    if fmt not in _READERS:
        raise DataError(f"unknown corpus format {fmt!r}: expected one of {', '.join(FORMATS)}")
    module, name = _READERS[fmt]
    reader = getattr(import_module(module), name)
    return reader(path, **options)
