"""``python -m kg.load``: load a knowledge graph into the embedded store or Neo4j.

With no arguments, loads the bundled FilmKG sample into the default embedded store
(``$DANMAKU_DATA/kg/filmkg``). ``--neo4j-import-csv DIR`` instead writes, streaming, the
node and relationship files that ``neo4j-admin database import full`` reads (Ownthink scale).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from common.cli import print_json, run
from common.settings import RunSettings
from kg.cli import add_store_args, open_store_of
from kg.loader import DEFAULT_BATCH, bad_rows_report, load
from kg.settings import BUNDLED_FILMKG
from kg.sources import check_source
from kg.triples import KGError

log = logging.getLogger("kg.load")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kg.load", description=__doc__.split("\n\n")[0])
    add_store_args(p)
    p.add_argument("--path", help="source file (default with --kg filmkg: the bundled sample)")
    p.add_argument("--strict", action="store_true", help="stop at the first bad row")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line, last")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="rows per transaction")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--parser-process",
        choices=("auto", "yes", "no"),
        default="auto",
        help="parse in a second process, overlapping with writing (auto: files of 8 MiB+)",
    )
    p.add_argument(
        "--neo4j-import-csv",
        metavar="DIR",
        help="write neo4j-admin import CSV files to DIR instead of loading a store",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.path is None:
        if args.kg != "filmkg":
            raise KGError(f"--kg {args.kg} needs --path (only filmkg has a bundled sample)")
        args.path = str(BUNDLED_FILMKG)
    if args.batch_size < 1:
        raise KGError("--batch-size must be at least 1")
    check_source(args.kg, args.path)  # before a store is created or a server contacted
    if args.neo4j_import_csv:
        from kg.neo4j_import import write_import_csv

        summary = write_import_csv(
            args.kg,
            args.path,
            Path(args.neo4j_import_csv),
            strict=args.strict,
            progress=not args.no_progress,
        )
        print_json(summary) if args.json else print(_table(summary))
        return 0
    # the load lock first, then the database
    store = open_store_of(RunSettings.from_args(args), mode="load")
    bad_rows_path = bad_rows_report(store, args.path)
    try:
        report = load(
            store,
            args.kg,
            args.path,
            strict=args.strict,
            batch_size=args.batch_size,
            progress=not args.no_progress,
            bad_rows_path=bad_rows_path,
            parser_process={"auto": None, "yes": True, "no": False}[args.parser_process],
        )
    finally:
        store.close()
    summary = report.as_dict() | {
        "store_location": str(getattr(store, "location", "")),
        "bad_rows_file": str(bad_rows_path),
    }
    print(_table(summary))
    if args.json:
        print_json(summary)
    return 0


def _table(summary: dict) -> str:
    rows = [(k, v) for k, v in summary.items() if not isinstance(v, list)]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


if __name__ == "__main__":
    run(main)
