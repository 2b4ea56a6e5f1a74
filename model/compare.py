"""``python -m model.compare``: every backbone and KLVCG's ablation rows trained and evaluated
on one corpus with the same training budget, seed and candidate sets, in one table and chart.

    python -m model.compare [--budget-minutes N] [--out DIR] [--json] [--rows NAME ...]
        [model.train options: --corpus PATH --format FMT --preset P --seed N ...]

Rows: each registered backbone at its default row, and KLVCG's rows ``basic``, ``+mlm``,
``+kg``, ``+ac``, ``full`` (the paper's table IV) and ``+copy`` (ours; KLVCG's default, so the
JSON also names it ``klvcg``). Each row is one ``python -m model.train`` run in its own process
and folder (``OUT/runs/ROW``) with ``--budget-minutes N`` (minutes of training steps over its
stages, model.trainer) and the options compare does not know passed unchanged, so every row
reads the same corpus, seed and cached candidate sets; its output goes to ``OUT/runs/ROW.log``.

Resumable: a finished row (``OUT/results/ROW.json``, its ``model.train --json`` record) is not
trained again, an interrupted one resumes where its run stopped, and a row that failed is
reported and tried again on the next run. ``OUT/settings.json`` holds the budget and options:
another budget or options in the same ``OUT`` is refused (its finished rows would not compare).

Writes ``OUT/comparison.md`` (:func:`model.comparison_report.markdown_table`) and
``OUT/comparison.png`` (:func:`model.comparison_report.chart`) after every row; with ``--json``
the last line is one JSON object mapping each row's name to its record.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common.atomic import write_json, write_text
from common.cli import print_json, run
from common.errors import UserError
from common.paths import data_dir
from model.backbones import BACKBONES, DEFAULT_BACKBONE, backbone_class
from model.comparison_report import chart, markdown_table

#: KLVCG's rows in the comparison: table IV's, then ours.
KLVCG_ROWS = ("basic", "+mlm", "+kg", "+ac", "full", "+copy")
#: model.train options each row sets itself.
OWN_OPTIONS = ("--backbone", "--ablation", "--out", "--json", "--budget-minutes", "--overwrite")
DEFAULT_BUDGET_MINUTES = 3.0
DEFAULT_GENERATION_SAMPLES = "20"


@dataclass(frozen=True)
class Row:
    name: str  # the row's key in the table and the JSON
    backbone: str
    ablation: str  # the backbone's row, as model.train records it

    @property
    def slug(self) -> str:
        return self.name.replace("+", "plus-")


def all_rows() -> list[Row]:
    """Every backbone but KLVCG at its default row, then KLVCG's rows."""
    rows = [
        Row(name, name, backbone_class(name).canonical_ablation(None))
        for name in sorted(BACKBONES)
        if name != DEFAULT_BACKBONE
    ]
    klvcg = backbone_class(DEFAULT_BACKBONE)
    return rows + [Row(r, DEFAULT_BACKBONE, klvcg.canonical_ablation(r)) for r in KLVCG_ROWS]


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="python -m model.compare", description=__doc__.split("\n")[0])
    p.add_argument(
        "--budget-minutes",
        type=float,
        default=DEFAULT_BUDGET_MINUTES,
        help=f"training-step minutes of each row (default: {DEFAULT_BUDGET_MINUTES:g})",
    )
    p.add_argument("--out", help="folder of the comparison (default: $DANMAKU_DATA/compare)")
    p.add_argument("--rows", nargs="+", metavar="ROW", help="only these rows (default: all)")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    args, passed = p.parse_known_args(argv)
    if args.budget_minutes <= 0:
        p.error("--budget-minutes must be positive")
    known = {r.name for r in all_rows()}
    unknown = sorted(set(args.rows or ()) - known - {"klvcg"})
    if unknown:
        p.error(f"unknown rows {unknown}: choose from {', '.join(sorted(known))}")
    own = [a for a in passed if a.split("=")[0] in OWN_OPTIONS]
    if own:
        p.error(f"model.compare sets {', '.join(own)} for each row itself")
    if "--generation-samples" not in passed:
        passed += ["--generation-samples", DEFAULT_GENERATION_SAMPLES]
    if not any(a.startswith("--kg") for a in passed):
        passed += ["--kg", "filmkg"]
    return args, passed


def main(argv: list[str] | None = None) -> int:
    args, passed = parse_args(argv)
    out = Path(args.out) if args.out else data_dir() / "compare"
    settings = {"budget_minutes": args.budget_minutes, "train_options": passed}
    _check_settings(out, settings)
    wanted = {"+copy" if r == "klvcg" else r for r in args.rows or ()}
    rows = [r for r in all_rows() if not wanted or r.name in wanted]
    failed = []
    for i, row in enumerate(rows, 1):
        result = out / "results" / f"{row.slug}.json"
        if result.exists():
            print(f"[{i}/{len(rows)}] {row.name}: finished before", file=sys.stderr)
            continue
        print(f"[{i}/{len(rows)}] {row.name}: training ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        record = _train_row(row, out, args.budget_minutes, passed)
        took = time.monotonic() - started
        if record is None:
            failed.append(row.name)
            print(
                f"    failed after {took:.0f} s: see {out / 'runs' / row.slug}.log", file=sys.stderr
            )
            continue
        write_json(result, record)
        print(f"    MRR {record['mrr']:.3f} in {took:.0f} s", file=sys.stderr)
        _write_report(out, rows, args.budget_minutes)
    records = _write_report(out, rows, args.budget_minutes)
    print(f"{out / 'comparison.md'}, {out / 'comparison.png'}")
    print((out / "comparison.md").read_text(encoding="utf-8"))
    if args.json:
        print_json(records)
    if failed:
        raise UserError(f"rows failed: {', '.join(failed)} (their logs are in {out / 'runs'})")
    return 0


def _check_settings(out: Path, settings: dict) -> None:
    path = out / "settings.json"
    if path.exists():
        before = json.loads(path.read_text(encoding="utf-8"))
        if before != settings:
            raise UserError(
                f"{out}: a comparison with other settings ({before}); pass another --out"
            )
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_json(path, settings)


def _train_row(row: Row, out: Path, budget: float, passed: list[str]) -> dict | None:
    """``model.train --json`` of ``row``: its record, or None when it failed."""
    folder = out / "runs" / row.slug
    folder.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "model.train", "--backbone", row.backbone]
    argv += ["--ablation", row.ablation, "--out", str(folder), "--budget-minutes", f"{budget:g}"]
    argv += [*passed, "--json", "--no-progress"]
    with (out / "runs" / f"{row.slug}.log").open("a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(argv)}\n")
        log.flush()
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=log, text=True, check=False)
        log.write(done.stdout)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def _write_report(out: Path, rows: list[Row], budget: float) -> dict[str, dict]:
    """The table and chart of the finished ``rows``; their records by name."""
    finished = []
    for row in rows:
        path = out / "results" / f"{row.slug}.json"
        if path.exists():
            finished.append((row, json.loads(path.read_text(encoding="utf-8"))))
    table_rows = [(r.name, r.backbone, r.ablation, rec) for r, rec in finished]
    header = (
        f"Each row: {budget:g} minutes of training steps, the same corpus, seed and candidates.\n\n"
    )
    write_text(out / "comparison.md", header + markdown_table(table_rows) + "\n")
    if table_rows:
        chart(table_rows, out / "comparison.png", f"MRR of each row ({budget:g} min each)")
    records = {r.name: rec for r, rec in finished}
    if "+copy" in records:
        records[DEFAULT_BACKBONE] = records["+copy"]  # KLVCG at its default row
    return records


if __name__ == "__main__":
    run(main)
