"""Where generated state lives: one data directory, ``./data`` unless ``DANMAKU_DATA`` says
otherwise (docs/architecture.md, section "Data flow")."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "DANMAKU_DATA"


def data_dir() -> Path:
    return Path(os.environ.get(DATA_ENV, "data"))
