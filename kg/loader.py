"""Streaming, resumable, idempotent loading of a KG source into any ``GraphStore``.

Design: docs/architecture.md, section "Knowledge-graph stores"; the measurements behind these
choices: docs/results-kg-store.md.

Records are read one at a time (:mod:`kg.sources`) and grouped into batches, which the store's
``batch_preparer`` prepares (for large files in a child process, so that parsing and preparing
overlap with writing; the embedded store's preparer assigns the ids there). Each batch is
written in one transaction together with the position it reaches
(``GraphStore.write_prepared``), so an interrupted load resumes after the last committed batch
and ends with exactly the full data. Triples are unique in every store, so loading the same
source twice changes no count.

Bad rows are counted, logged with file and line, and written in full to ``bad_rows_path`` when
one is given (:func:`bad_rows_report`: one per store and source file); with ``strict`` the first
one stops the load. A resumed load reports the bad rows of the whole file (those before its
position are found again while the records already loaded are skipped), so its count and its
report are those of an uninterrupted load.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import multiprocessing
import os
import queue
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from common.paths import data_dir
from kg.sources import Record, check_source, read_source
from kg.store import GraphStore
from kg.triples import BadRow, KGError, LoadReport, batch_alias_pairs

log = logging.getLogger(__name__)

# Rows per batch (one transaction each): small enough that a batch's names and arrays stay in
# the CPU caches, which loads faster and in less memory than larger batches; with much smaller
# ones the writer's per-batch work (commits, statements) takes over.
DEFAULT_BATCH = 10_000
MAX_LOGGED_BAD_ROWS = 20
PARSER_PROCESS_BYTES = 8 << 20


def source_key(kind: str, path: str | Path) -> str:
    """Identifies one version of one source file (a changed file is a new load)."""
    p = Path(path).resolve()
    st = p.stat()
    return f"{kind}:{p}:{st.st_size}:{st.st_mtime_ns}"


def bad_rows_report(store: GraphStore, path: str | Path) -> Path:
    """Where ``kg.load`` lists the bad rows of ``path`` loaded into ``store``: one report per
    store and source file, so that no other load overwrites it. An embedded store keeps its
    reports in its own directory, other stores under ``$DANMAKU_DATA/kg/bad_rows/<kind>-<digest
    of their location>``; the name is the file's, then a digest of its absolute path (files
    of one name in two directories)."""
    source = Path(path).resolve()
    name = f"{source.name}.{_digest(str(source))}.tsv"
    directory = getattr(store, "directory", None)
    if directory is not None:
        return Path(directory) / "bad_rows" / name
    where = str(getattr(store, "location", ""))
    return data_dir() / "kg" / "bad_rows" / f"{store.kind}-{_digest(where)}" / name


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]


class BadRowSink:
    """Counts bad rows, logs the first few, writes all of them to a file if asked. The file is
    written afresh by every load: a resumed one re-reports the rows before its position."""

    def __init__(self, path: Path | None, strict: bool) -> None:
        self.count, self.examples, self.strict = 0, [], strict
        self.file = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = path.open("w", encoding="utf-8")
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


@dataclass
class _Batch:
    """What the parser side hands the writer: a prepared batch, its triple count, the record
    position it reaches, and the bad rows among its records."""

    prepared: object
    triples: int
    position: int
    bad: list[BadRow]


def _batches(
    records: Iterator[Record], skip: int, batch_size: int, prepare: Callable
) -> Iterator[tuple[int, list[BadRow]] | _Batch]:
    """Yields the number of records skipped (a resumed load) and the bad rows among them,
    then a batch for every ``batch_size`` records (with the bad ones among them), at least
    one."""
    skipped, bad_skipped = 0, []
    for record in islice(records, skip):
        skipped += 1
        if type(record) is BadRow:
            bad_skipped.append(record)
    yield skipped, bad_skipped
    position = skip
    while chunk := list(islice(records, batch_size)):
        position += len(chunk)
        bad: list[BadRow] = []
        if BadRow in set(map(type, chunk)):  # rare: one pass in C otherwise
            bad = [r for r in chunk if type(r) is BadRow]
            chunk = [r for r in chunk if type(r) is not BadRow]
        yield _Batch(prepare(chunk, batch_alias_pairs(chunk)), len(chunk), position, bad)
    if position == skip:  # nothing left to read: one empty batch still records the position
        yield _Batch(prepare([], []), 0, position, [])


def _parser_process(kind, path, skip, batch_size, prepare, out, parent: int) -> None:
    """Body of the parser process: batches into ``out``, then None (or the exception)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the loading process decides on Ctrl-C
    # Parsing makes no reference cycles, and with automatic collection on, repeated scans of
    # the batch being built take a sizeable share of this process's time.
    gc.disable()

    def put(item) -> None:
        while True:
            try:
                out.put(item, timeout=1.0)
                return
            except queue.Full:
                if os.getppid() != parent:  # the loader died: do not linger
                    out.cancel_join_thread()  # nobody will read what is still buffered
                    raise SystemExit(1) from None

    try:
        for item in _batches(read_source(kind, path), skip, batch_size, prepare):
            put(item)
        put(None)
        prepare.close()
    except KGError as e:
        put(KGError(str(e)))
    except Exception as e:
        put(KGError(f"{path}: the parser process failed: {e!r}"))


def _main_is_importable() -> bool:
    """Whether a spawned child can re-import ``__main__``: a module, a script file, or
    ``python -c`` (nothing to re-import) can; code read from stdin cannot."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return getattr(main, "__spec__", None) is not None or path is None or Path(path).is_file()


def _batches_from_process(
    kind: str, path: str | Path, skip: int, batch_size: int, prepare: Callable
) -> Iterator[tuple[int, list[BadRow]] | _Batch]:
    """:func:`_batches` computed in a child process, two batches ahead at most."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue(maxsize=2)
    args = (kind, str(path), skip, batch_size, prepare, out, os.getpid())
    proc = ctx.Process(target=_parser_process, args=args, daemon=True, name="kg-parser")
    proc.start()
    try:
        while True:
            try:
                item = out.get(timeout=1.0)
            except queue.Empty:
                if not proc.is_alive():
                    msg = f"{path}: the parser process died (exit code {proc.exitcode})"
                    raise KGError(msg) from None
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(timeout=10)


def _batch_stream(
    kind: str,
    path: str | Path,
    done: int,
    batch_size: int,
    prepare: Callable,
    records: Iterator[Record] | None,
    parser_process: bool | None,
) -> Iterator[tuple[int, list[BadRow]] | _Batch]:
    """The prepared batches after the first ``done`` records (see :func:`_batches`): from
    ``records`` in this process, else from the file's parser, in a child process where
    ``parser_process`` (None: for large files) asks for it and it can start."""
    if records is not None:
        return _batches(records, done, batch_size, prepare)
    if parser_process is None:
        parser_process = Path(path).stat().st_size >= PARSER_PROCESS_BYTES
    if parser_process and not _main_is_importable():
        log.info("parsing in this process: a spawned process cannot re-import this __main__")
        parser_process = False
    if parser_process:
        return _batches_from_process(kind, path, done, batch_size, prepare)
    return _batches(read_source(kind, path), done, batch_size, prepare)


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
    parser_process: bool | None = None,
) -> LoadReport:
    """Load ``path`` (a ``kind`` source) into ``store``, resuming an unfinished earlier load.

    ``parser_process``: parse and prepare batches in a child process, so that parsing and the
    store's writing use two cores (default: for files of 8 MiB and more). ``records``
    replaces the file's parser and runs in this process (tests use it to interrupt a load).
    """
    started = time.perf_counter()
    check_source(kind, path)
    key = source_key(kind, path)
    report = LoadReport(source=str(path), store=store.kind)
    prepare = store.batch_preparer(key)  # first: it may lock the store for this load
    done = store.load_progress(key)
    if done:
        log.info("resuming %s after %d records already loaded", path, done)
    items = _batch_stream(kind, path, done, batch_size, prepare, records, parser_process)
    from tqdm import tqdm  # here: the parser process, which imports this module, needs none

    sink = BadRowSink(bad_rows_path, strict)
    bar = tqdm(
        desc=f"load {Path(path).name}",
        unit=" rows",
        unit_scale=True,
        disable=not progress,
        mininterval=0.5,
    )
    try:
        report.resumed_from, bad_skipped = next(items)
        for bad in bad_skipped:  # the whole file's bad rows, as an uninterrupted load has them
            sink.add(bad)
        for batch in items:
            for bad in batch.bad:
                sink.add(bad)
            report.triples_loaded += store.write_prepared(batch.prepared, key, batch.position)
            report.triples_read += batch.triples
            bar.update(batch.triples)
        store.finish_load(key)
    finally:
        items.close()
        prepare.close()
        bar.close()
        sink.close()
    report.bad_rows, report.bad_examples = sink.count, sink.examples
    stats = store.stats()
    report.entities, report.relations = stats["entities"], stats["relations"]
    report.seconds = time.perf_counter() - started
    return report
