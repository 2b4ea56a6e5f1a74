"""``python -m model.features VIDEO... --out FILE``: per-second frame features of video files.

The command line of :mod:`model.data.features` (the extractor and its cache live in the
corpus layer, which ``model.data.ingest`` builds corpora with).
"""

from common.cli import run
from model.data.features import main

if __name__ == "__main__":
    run(main)
