"""Where the KdConv bench scripts (``kdconv_corpus.py``, ``kdconv_recall.py``) find KdConv's
film data (Zhou et al. 2020), which is not part of this repository: their ``--data`` flag."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: KdConv's film folder where the project's own machines keep it: the default of ``--data``
#: only when it exists.
DEFAULT_FILM = ROOT.parent / "shared" / "research-data" / "kdconv" / "film"
DIALOGUES, KB_FILE = "dev.json", "kb_film_subset_from_dialogues.json"
DATA_HELP = f"KdConv's film folder ({DIALOGUES}, {KB_FILE}), or its dialogue file"


def film_files(data: str | None) -> tuple[Path, Path]:
    """(dialogues, KB) of ``--data``: KdConv's film folder, or a dialogue file with the KB
    beside it; exits with a one-line message when they are missing."""
    if data is None and not DEFAULT_FILM.is_dir():
        sys.exit(f"no KdConv film data: pass --data DIR ({DATA_HELP})")
    path = Path(data) if data is not None else DEFAULT_FILM
    dialogues = path if path.is_file() else path / DIALOGUES
    for f in (dialogues, dialogues.parent / KB_FILE):
        if not f.is_file():
            sys.exit(f"{f}: missing (--data names {DATA_HELP})")
    return dialogues, dialogues.parent / KB_FILE
