"""Write the CSV files ``neo4j-admin database import full`` reads, streaming (Ownthink scale).

Loading 140 M rows through Bolt transactions takes days; neo4j-admin's offline importer
takes the same graph as node and relationship CSV files. This writes them in one pass in
constant memory: nodes may repeat (a tail seen under several heads), so the import must run
with ``--skip-duplicate-nodes=true``; ids are the entity names themselves (one id space).
Repeated facts and aliases are dropped within a head's run of rows (Ownthink groups rows by
head); relationships are not de-duplicated by the importer.

The summary's ``neo4j_admin_command`` is the import (:func:`import_command`), for example::

    neo4j-admin database import full neo4j --skip-duplicate-nodes=true \\
        --bad-tolerance=NODE_ROWS --skip-bad-entries-logging=true --multiline-fields=true \\
        --nodes=Entity=DIR/entities.csv --relationships=REL=DIR/relations.csv \\
        --nodes=Alias=DIR/aliases.csv --relationships=ALIAS_OF=DIR/alias_of.csv

Each skipped repeat of a node is a "bad entry" to the importer, which in Neo4j 5 stops at
the 1,001st by default: ``--bad-tolerance`` is the number of node rows written
(``entity_rows`` plus ``alias_rows``), an upper bound on the repeats, and they go unlogged.
Values may hold newlines, hence ``--multiline-fields=true``. The database name comes right
after ``full``: from Neo4j 5.19 a name after the variadic ``--relationships`` is read as one
more file.

The summary counts the rows written (node rows repeat) and the names too long for the range
index behind the ``entity_name`` uniqueness constraint (:data:`INDEX_KEY_BYTES`): with any,
creating that constraint after the import fails.

The graph is the one :class:`kg.neo4j_store.Neo4jStore` builds: ``(:Entity {name})``,
``[:REL {name}]`` and ``(:Alias {name})-[:ALIAS_OF]->(:Entity)``.
"""

from __future__ import annotations

import csv
import shlex
import time
from pathlib import Path

from tqdm import tqdm

from kg.loader import BadRowSink
from kg.sources import read_source
from kg.triples import BadRow, alias_pairs

FILES = ("entities.csv", "relations.csv", "aliases.csv", "alias_of.csv")
#: A little under the key limit of Neo4j's range indexes (about 8 KiB of UTF-8), which back
#: uniqueness constraints: a longer name fails the constraint's index population.
INDEX_KEY_BYTES = 8000
_SHORT_ENOUGH = INDEX_KEY_BYTES // 4  # characters: a name this short is under the limit


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
    node_rows = rel_rows = alias_rows = 0  # alias_of.csv has as many rows as aliases.csv
    longest, too_long = 0, set()  # hashes of the names over the limit
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
                node_rows += 1
                longest = _note_length(rec.head, longest, too_long)
            if (rec.relation, rec.tail) in seen:
                continue  # a repeated row: the importer would make a second relationship
            seen.add((rec.relation, rec.tail))
            nodes.writerow([rec.tail, "Entity"])
            rels.writerow([rec.head, rec.tail, rec.relation, "REL"])
            node_rows += 1
            rel_rows += 1
            if len(rec.tail) > min(longest, _SHORT_ENOUGH):
                longest = _note_length(rec.tail, longest, too_long)
            for alias, entity in alias_pairs(rec, first):
                if ("alias", alias, entity) not in seen:  # 3-tuples: never a (relation, tail)
                    seen.add(("alias", alias, entity))
                    alias_nodes.writerow([alias, "Alias"])
                    alias_of.writerow([alias, entity, "ALIAS_OF"])
                    alias_rows += 1
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
        "entity_rows": node_rows,
        "relationship_rows": rel_rows,
        "alias_rows": alias_rows,
        "longest_name_chars": longest,
        "names_over_index_limit": len(too_long),
        "neo4j_admin_command": import_command(out, node_rows + alias_rows),
        "seconds": round(time.perf_counter() - started, 3),
        "bad_row_examples": [str(b) for b in sink.examples],
    }


def import_command(out: Path, node_rows: int, database: str = "neo4j") -> str:
    """The ``neo4j-admin database import full`` command for the files written to ``out``
    (absolute paths: neo4j-admin usually runs from the Neo4j home; ``node_rows``: rows of
    both node files, which bound the repeats the importer skips)."""
    files = {name: shlex.quote(str(out.resolve() / name)) for name in FILES}
    return " ".join(
        [
            f"neo4j-admin database import full {shlex.quote(database)}",
            "--skip-duplicate-nodes=true",
            f"--bad-tolerance={max(1000, node_rows)}",
            "--skip-bad-entries-logging=true",
            "--multiline-fields=true",
            f"--nodes=Entity={files['entities.csv']}",
            f"--relationships=REL={files['relations.csv']}",
            f"--nodes=Alias={files['aliases.csv']}",
            f"--relationships=ALIAS_OF={files['alias_of.csv']}",
        ]
    )


def _note_length(name: str, longest: int, too_long: set[int]) -> int:
    """The longest name length so far, with the hash of ``name`` noted in ``too_long`` when
    its UTF-8 exceeds :data:`INDEX_KEY_BYTES` (encoded only when it is long enough to)."""
    if len(name) > _SHORT_ENOUGH and len(name.encode("utf-8", "surrogatepass")) > INDEX_KEY_BYTES:
        too_long.add(hash(name))
    return max(longest, len(name))
