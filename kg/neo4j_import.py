"""Write the CSV files ``neo4j-admin database import full`` reads, streaming (Ownthink scale).

Loading 140 M rows through Bolt transactions takes days; neo4j-admin's offline importer
takes the same graph as node and relationship CSV files. This writes them in one pass in
constant memory: nodes may repeat (a tail seen under several heads), so the import must run
with ``--skip-duplicate-nodes=true``; ids are the entity names themselves (one id space).
Repeated facts and aliases are dropped within a head's run of rows (Ownthink groups rows by
head); relationships are not de-duplicated by the importer.

    neo4j-admin database import full kg --skip-duplicate-nodes=true \\
        --nodes=Entity=DIR/entities.csv --relationships=REL=DIR/relations.csv \\
        --nodes=Alias=DIR/aliases.csv --relationships=ALIAS_OF=DIR/alias_of.csv

The graph is the one :class:`kg.neo4j_store.Neo4jStore` builds: ``(:Entity {name})``,
``[:REL {name}]`` and ``(:Alias {name})-[:ALIAS_OF]->(:Entity)``.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from tqdm import tqdm

from kg.loader import BadRowSink
from kg.sources import read_source
from kg.triples import BadRow, alias_pairs

FILES = ("entities.csv", "relations.csv", "aliases.csv", "alias_of.csv")


def write_import_csv(
    kind: str, path: str | Path, out: Path, *, strict: bool = False, progress: bool = True
) -> dict[str, object]:
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    handles = [(out / name).open("w", encoding="utf-8", newline="") for name in FILES]
    nodes, rels, alias_nodes, alias_of = (csv.writer(h) for h in handles)
    nodes.writerow(["name:ID", ":LABEL"])
    rels.writerow([":START_ID", ":END_ID", "name", ":TYPE"])
    alias_nodes.writerow(["name:ID(Alias)", ":LABEL"])
    alias_of.writerow([":START_ID(Alias)", ":END_ID", ":TYPE"])
    sink = BadRowSink(None, strict)
    triples, last_head, seen = 0, None, set()
    try:
        for rec in tqdm(
            read_source(kind, path),
            desc=f"csv {Path(path).name}",
            unit=" rows",
            unit_scale=True,
            disable=not progress,
            mininterval=0.5,
        ):
            if isinstance(rec, BadRow):
                sink.add(rec)
                continue
            triples += 1
            first = rec.head != last_head
            if first:
                last_head, seen = rec.head, set()
                nodes.writerow([rec.head, "Entity"])
            if (rec.relation, rec.tail) in seen:
                continue  # a repeated row: the importer would make a second relationship
            seen.add((rec.relation, rec.tail))
            nodes.writerow([rec.tail, "Entity"])
            rels.writerow([rec.head, rec.tail, rec.relation, "REL"])
            for alias, entity in alias_pairs(rec, first):
                if ("alias", alias, entity) not in seen:  # 3-tuples: never a (relation, tail)
                    seen.add(("alias", alias, entity))
                    alias_nodes.writerow([alias, "Alias"])
                    alias_of.writerow([alias, entity, "ALIAS_OF"])
    finally:
        for h in handles:
            h.close()
        sink.close()
    return {
        "source": str(path),
        "out": str(out),
        "triples_read": triples,
        "bad_rows": sink.count,
        "files": list(FILES),
        "seconds": round(time.perf_counter() - started, 3),
        "bad_row_examples": [str(b) for b in sink.examples],
    }
