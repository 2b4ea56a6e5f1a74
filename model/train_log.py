"""Training curves as files, so they can be looked at rather than read from logs:
``metrics.csv`` in the run's directory (always) and TensorBoard event files in ``--tensorboard
DIR`` (:class:`torch.utils.tensorboard.SummaryWriter`), with the same values: each step's loss
and learning rate, and the dev metrics where the trainer measures them.

Steps count across stages (``global_step``: a stage's steps follow the earlier stages' totals),
so every stage's curve has its own stretch of one axis; ``stage`` and ``step`` say where in its
stage a row is. A resumed run re-does the steps after its last saved state: the rows and
events after that point are dropped first (the CSV is rewritten without them, the event
files are purged from that step), so a curve never holds a step twice.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from common.atomic import write_text

METRICS_CSV = "metrics.csv"
COLUMNS = ("global_step", "stage", "step", "loss", "lr", "dev_mrr")


class TrainingLog:
    """The curves of one run that has ``done`` global steps (0: a new run). A row's global
    step counts the steps done when it was written (the first step's row: 1)."""

    def __init__(self, out: Path, tensorboard: Path | None = None, done: int = 0) -> None:
        self.path = out / METRICS_CSV
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(_rows_until(self.path, done))
        write_text(self.path, text.getvalue())
        self._file = self.path.open("a", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._tb = None
        if tensorboard is not None:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

            self._tb = SummaryWriter(str(tensorboard), purge_step=done + 1)

    def step(self, stage: str, step: int, global_step: int, loss: float, lr: float) -> None:
        self._csv.writerow((global_step, stage, step, f"{loss:.6g}", f"{lr:.6g}", ""))
        if self._tb is not None:
            self._tb.add_scalar(f"{stage}/loss", loss, global_step)
            self._tb.add_scalar(f"{stage}/lr", lr, global_step)

    def dev(self, stage: str, step: int, global_step: int, mrr: float) -> None:
        """A dev measurement (NaN: none was possible) after ``step``."""
        if math.isnan(mrr):
            return
        self._csv.writerow((global_step, stage, step, "", "", f"{mrr:.6g}"))
        if self._tb is not None:
            self._tb.add_scalar("dev/mrr", mrr, global_step)
        self.flush()

    def flush(self) -> None:
        self._file.flush()
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _rows_until(path: Path, done: int) -> list[list[str]]:
    """The rows of an earlier ``metrics.csv`` up to global step ``done`` (a file of another
    layout, or none: no rows)."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        return []
    if not rows or tuple(rows[0]) != COLUMNS:
        return []
    return [r for r in rows[1:] if len(r) == len(COLUMNS) and r[0].isdigit() and int(r[0]) <= done]


def read_log(path: Path) -> list[dict]:
    """The rows of a ``metrics.csv`` as dicts (numbers as floats, blanks as None)."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))

    def value(k: str, v: str) -> object:
        if k == "stage":
            return v
        return None if v == "" else float(v)

    return [{k: value(k, v) for k, v in r.items()} for r in rows]
