"""Streaming, resumable, idempotent loading of a KG source into any ``GraphStore``.

Records are read one at a time (:mod:`kg.sources`), grouped into batches, and every batch is
written together with the position it reaches (``GraphStore.write_batch``), so an interrupted
load resumes after the last committed batch and ends with exactly the full data. Triples are
unique in every store, so loading the same source twice changes no count.

Bad rows are counted, logged with file and line, and written in full to ``bad_rows_path`` when
one is given; with ``strict`` the first one stops the load.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from tqdm import tqdm

from kg.sources import Record, read_source
from kg.store import GraphStore
from kg.triples import BadRow, KGError, LoadReport, Triple, alias_names

log = logging.getLogger(__name__)

DEFAULT_BATCH = 50_000
MAX_LOGGED_BAD_ROWS = 20


def source_key(kind: str, path: str | Path) -> str:
    """Identifies one version of one source file (a changed file is a new load)."""
    p = Path(path).resolve()
    st = p.stat()
    return f"{kind}:{p}:{st.st_size}:{st.st_mtime_ns}"


def _aliases(triples: list[Triple]) -> list[tuple[str, str]]:
    """(alias, head) pairs the batch defines, de-duplicated, in order."""
    pairs: dict[tuple[str, str], None] = {}
    last_head = None
    for t in triples:
        for a in alias_names(t, t.head != last_head):
            pairs[(a, t.head)] = None
        last_head = t.head
    return list(pairs)


class BadRowSink:
    """Counts bad rows, logs the first few, writes all of them to a file if asked (appending
    when a load resumes: the interrupted run already listed the rows before its position)."""

    def __init__(self, path: Path | None, strict: bool, append: bool = False) -> None:
        self.count, self.examples, self.strict = 0, [], strict
        self.file = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = path.open("a" if append else "w", encoding="utf-8")
        self.path = path

    def add(self, bad: BadRow) -> None:
        if self.strict:
            raise KGError(f"{bad} (--strict stops at the first bad row)")
        self.count += 1
        if len(self.examples) < MAX_LOGGED_BAD_ROWS:
            self.examples.append(bad)
            log.warning("bad row: %s", bad)
        if self.file is not None:
            self.file.write(f"{bad.source}\t{bad.line}\t{bad.reason}\n")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            if self.count > MAX_LOGGED_BAD_ROWS:
                log.warning("%d bad rows in all, listed in %s", self.count, self.path)


def load(
    store: GraphStore,
    kind: str,
    path: str | Path,
    *,
    strict: bool = False,
    batch_size: int = DEFAULT_BATCH,
    progress: bool = True,
    bad_rows_path: Path | None = None,
    records: Iterator[Record] | None = None,
) -> LoadReport:
    """Load ``path`` (a ``kind`` source) into ``store``, resuming an unfinished earlier load.

    ``records`` replaces the file's parser (tests use it to interrupt a load part-way).
    """
    started = time.perf_counter()
    records = read_source(kind, path) if records is None else records  # checks the file
    key = source_key(kind, path)
    report = LoadReport(source=str(path), store=store.kind)
    done = store.load_progress(key)
    if done:
        log.info("resuming %s after %d records already loaded", path, done)
        report.resumed_from = sum(1 for _ in islice(records, done))
    sink = BadRowSink(bad_rows_path, strict, append=done > 0)
    position = done
    batch: list[Triple] = []
    bar = tqdm(
        desc=f"load {Path(path).name}",
        unit=" rows",
        unit_scale=True,
        disable=not progress,
        mininterval=0.5,
    )
    try:
        for rec in records:
            position += 1
            if isinstance(rec, BadRow):
                sink.add(rec)
                continue
            batch.append(rec)
            if len(batch) >= batch_size:
                report.triples_loaded += store.write_batch(batch, _aliases(batch), key, position)
                report.triples_read += len(batch)
                bar.update(len(batch))
                batch = []
        report.triples_loaded += store.write_batch(batch, _aliases(batch), key, position)
        report.triples_read += len(batch)
        bar.update(len(batch))
        store.finish_load(key)
    finally:
        bar.close()
        sink.close()
    report.bad_rows, report.bad_examples = sink.count, sink.examples
    stats = store.stats()
    report.entities, report.relations = stats["entities"], stats["relations"]
    report.seconds = time.perf_counter() - started
    return report
