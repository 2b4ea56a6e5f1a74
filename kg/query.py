"""``python -m kg.query``: ask a loaded knowledge graph (embedded store or Neo4j).

    python -m kg.query facts NAME [--relation R ...] [--limit N] [--json]
    python -m kg.query search PREFIX [--limit N] [--json]
    python -m kg.query resolve NAME [--json]
    python -m kg.query neighbors NAME [--hops 1|2] [--limit N] [--json]
    python -m kg.query stats [--json]
    python -m kg.query export FILE.ttl|FILE.nt

Store options as for ``kg.load`` (``--kg``, ``--db``, ``--store neo4j`` ...).
"""

from __future__ import annotations

import argparse

from common.cli import print_json, run
from common.settings import RunSettings
from kg.cli import add_store_args, open_store_of
from kg.store import GraphStore
from kg.triples import Fact, KGError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m kg.query",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_)
        add_store_args(c)
        c.add_argument("--json", action="store_true", help="JSON output")
        return c

    c = command("facts", "facts of an entity (name or alias)")
    c.add_argument("name")
    c.add_argument("--relation", action="append", help="only these relations (repeatable)")
    c.add_argument("--limit", type=int, default=100)
    c.add_argument("--offset", type=int, default=0)
    c = command("search", "entity and alias names by prefix")
    c.add_argument("prefix")
    c.add_argument("--limit", type=int, default=20)
    c = command("resolve", "the entity a name or alias stands for")
    c.add_argument("name")
    c = command("neighbors", "facts within 1 or 2 hops")
    c.add_argument("name")
    c.add_argument("--hops", type=int, choices=(1, 2), default=1)
    c.add_argument("--limit", type=int, default=200)
    command("stats", "counts")
    c = command("export", "write every fact as Turtle (.ttl) or N-Triples (.nt)")
    c.add_argument("file")
    return p


def _print_facts(facts: list[Fact], as_json: bool) -> None:
    for f in facts:
        print_json(f.as_dict()) if as_json else print(f"{f.head}\t{f.relation}\t{f.tail}")


def _print_stats(store: GraphStore, as_json: bool) -> None:
    """The counts, and for a store that can tell (the embedded one) whether its name indexes
    are there and why not: without them every lookup scans a whole table."""
    counts = store.stats()
    index_state = getattr(store, "index_state", None)
    stats: dict[str, object] = counts | (index_state() if index_state is not None else {})
    if as_json:
        print_json(stats)
        return
    lines = [f"{k}\t{v}" for k, v in counts.items()]
    if index_state is not None:
        lines.append(
            "indexed\tyes" if stats["indexed"] else f"indexed\tno: {stats['unindexed_reason']}"
        )
        lines += [
            f"unfinished load\t{u['source']} ({u['records_done']} records in)"
            for u in stats["unfinished_loads"]
        ]
    print("\n".join(lines))


def _execute(args: argparse.Namespace, store: GraphStore) -> int:
    if getattr(args, "limit", 1) < 1 or getattr(args, "offset", 0) < 0:
        raise KGError("--limit must be at least 1 and --offset at least 0")
    if args.command in ("facts", "neighbors", "resolve") and store.resolve(args.name) is None:
        raise KGError(f"{args.name!r}: no such entity or alias in {store!r}")
    if args.command == "facts":
        _print_facts(store.facts(args.name, args.relation, args.limit, args.offset), args.json)
    elif args.command == "neighbors":
        _print_facts(store.neighbors(args.name, args.hops, args.limit), args.json)
    elif args.command == "resolve":
        entity = store.resolve(args.name)
        aliases = store.aliases(args.name)
        print_json(
            {"name": args.name, "entity": entity, "aliases": aliases}
        ) if args.json else print(f"{entity}\taliases: {'、'.join(aliases)}")
    elif args.command == "search":
        names = store.search(args.prefix, args.limit)
        print_json(names) if args.json else print("\n".join(names))
    elif args.command == "stats":
        _print_stats(store, args.json)
    elif args.command == "export":
        from kg.rdf import export_rdf

        n = export_rdf(store, args.file)
        print_json({"file": args.file, "triples": n}) if args.json else print(
            f"{n} triples -> {args.file}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = RunSettings.from_args(args)
    store = open_store_of(settings, create=False, mode="read")  # queries never write
    try:
        return _execute(args, store)
    finally:
        store.close()


if __name__ == "__main__":
    run(main)
