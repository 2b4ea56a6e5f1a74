"""Ownthink at full scale: ``kg.load``'s neo4j-admin import files and the embedded store on
synthetic rows, and what the 140,919,781 rows of ``ownthink_v2.csv`` would take.

Usage: ``python bench/kg_scale.py [--rows 10000000] [--workdir DIR] [--keep]``
(``--rows 100000`` for a quick check)

Writes ``--rows`` Ownthink-like rows to disk (:mod:`ownthink_synth`; kept in ``--workdir`` and
reused by a later run of the same size), and a file of a tenth of them, then runs each job in
a child process of its own and measures it there:

- ``python -m kg.load --neo4j-import-csv DIR``: rows/s, peak RSS, size of the files written;
- ``python -m kg.load --db DIR``, the embedded load of the same file: rows/s, peak RSS, size of
  the store;
- lookups in the loaded store, opened read-only as ``kg.query`` and the API open it, with the
  calls retrieval and the API make: ``facts`` with the linker's limit, ``heads_among`` of their
  tails (the linker's second hop), ``resolve`` of an alias, ``neighbors`` at one hop and a
  two-character ``search``: p50 and p99 over heads and aliases sampled across the whole file.

Rates are rows of the source (bad ones included) over the seconds the command reports itself.
Peak RSS is per job: the largest single process (``wait4``'s ``ru_maxrss``, exact) and the
sum over the job's processes, the loader's parser process included (sampled every 20 ms).
The 140 M figures: time and disk scale linearly with rows from the full run (SQLite's final
index sorts grow a little faster than that); peak memory follows the line through the tenth
and the full run. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ownthink_synth import Generated, generate  # bench/ is the script's sys.path[0]

ROOT = Path(__file__).resolve().parent.parent
OWNTHINK_ROWS = 140_919_781  # lines of ownthink_v2.csv (kg/sources.py)
SAMPLE_S = 0.02


@dataclass
class Job:
    """One child process's run: its output, wall time and peak memory."""

    stdout: str
    wall_s: float
    peak_rss_mib: float  # the job's processes summed, sampled
    max_process_rss_mib: float  # the largest single process, exact


@dataclass
class LoadFigures:
    rows: int
    rows_per_s: float
    seconds: float
    wall_s: float
    peak_rss_mib: float
    max_process_rss_mib: float
    bytes: int
    summary: dict


def run_job(argv: list[str]) -> Job:
    """Run ``argv`` (a Python command) from the repository root and measure it."""
    import psutil

    path = os.environ.get("PYTHONPATH")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + (os.pathsep + path if path else ""))
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=err, text=True, env=env)
        root, peak = psutil.Process(proc.pid), 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            with contextlib.suppress(psutil.Error):  # a process ended between list and read
                peak = max(peak, sum(p.memory_info().rss for p in [root, *root.children(True)]))
            time.sleep(SAMPLE_S)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(argv)}: exit {proc.returncode}\n{err.read()[-3000:]}")
        out.seek(0)
        text = out.read()
    max_rss = usage.ru_maxrss / 1024  # KiB on Linux
    return Job(text, wall, round(peak / 2**20, 1), round(max_rss, 1))


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def load_job(csv_path: Path, rows: int, target: list[str], out: Path) -> LoadFigures:
    """``kg.load`` of ``csv_path`` (``target``: where to) in a child; figures of it."""
    shutil.rmtree(out, ignore_errors=True)
    argv = [sys.executable, "-m", "kg.load", "--kg", "ownthink", "--path", str(csv_path)]
    job = run_job([*argv, *target, "--json", "--no-progress"])
    summary = json.loads(job.stdout.strip().splitlines()[-1])
    read = summary["triples_read"] + summary["bad_rows"]
    if read != rows:
        raise SystemExit(f"{csv_path}: kg.load read {read} rows, the file has {rows}")
    return LoadFigures(
        rows=rows,
        rows_per_s=round(read / summary["seconds"]),
        seconds=summary["seconds"],
        wall_s=round(job.wall_s, 2),
        peak_rss_mib=job.peak_rss_mib,
        max_process_rss_mib=job.max_process_rss_mib,
        bytes=tree_bytes(out),
        summary={k: v for k, v in summary.items() if not isinstance(v, list)},
    )


def lookup_latencies(db: Path, meta: Path, seed: int = 0) -> dict[str, object]:
    """The lookup job (run in a child by :func:`lookup_job`): p50/p99 per call, in ms."""
    from kg.embedded import EmbeddedStore
    from retrieval.linker import LinkerConfig

    probes = json.loads(meta.read_text(encoding="utf-8"))
    heads, aliases = probes["probe_heads"], [a for a, _ in probes["probe_aliases"]]
    random.Random(seed).shuffle(heads)
    t0 = time.perf_counter()
    store = EmbeddedStore(db, create=False, mode="read")
    opened = time.perf_counter() - t0
    limit = LinkerConfig().facts_per_entity
    tails: dict[str, list[str]] = {}

    def facts(name: str) -> bool:
        tails[name] = [f.tail for f in store.facts(name, limit=limit)]
        return bool(tails[name])

    calls = [
        ("facts", heads, facts),
        ("heads_among", heads, lambda h: store.heads_among(tails[h]) is not None),
        ("resolve_alias", aliases, lambda a: store.resolve(a) is not None),
        ("neighbors", heads, lambda h: bool(store.neighbors(h, hops=1))),
        ("search", heads, lambda h: bool(store.search(h[:2], limit=20))),
    ]
    figures: dict[str, object] = {"open_ms": round(opened * 1000, 2), "stats": store.stats()}
    for name, names, call in calls:
        times, found = [], 0
        for n in names:
            t = time.perf_counter()
            found += call(n)
            times.append(time.perf_counter() - t)
        times.sort()
        figures[name] = {
            "n": len(times),
            "found": round(found / max(1, len(times)), 3),
            "p50_ms": round(times[len(times) // 2] * 1000, 3),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1000, 3),
            "mean_ms": round(sum(times) / max(1, len(times)) * 1000, 3),
        }
    store.close()
    return figures


def lookup_job(db: Path, meta: Path) -> tuple[dict, Job]:
    job = run_job([sys.executable, __file__, "--lookup-job", str(db), str(meta)])
    return json.loads(job.stdout.strip().splitlines()[-1]), job


def rss_at(rows: int, small: LoadFigures, big: LoadFigures, key: str) -> float:
    """Peak RSS at ``rows`` on the line through the tenth and the full run (never below the
    full run's)."""
    slope = max(0.0, (getattr(big, key) - getattr(small, key)) / max(1, big.rows - small.rows))
    return round(getattr(big, key) + slope * (rows - big.rows), 1)


def at_ownthink(label: str, small: LoadFigures, big: LoadFigures, source_bytes: int) -> dict:
    """The 140 M figures of one job, from its two runs."""
    scale = OWNTHINK_ROWS / big.rows
    return {
        f"{label}_140m_hours": round(OWNTHINK_ROWS / big.rows_per_s / 3600, 2),
        f"{label}_140m_gib": round(big.bytes * scale / 2**30, 1),
        f"{label}_140m_peak_rss_mib": rss_at(OWNTHINK_ROWS, small, big, "peak_rss_mib"),
        f"{label}_bytes_per_source_byte": round(big.bytes / source_bytes, 3),
    }


def ensure_file(work: Path, rows: int, seed: int) -> tuple[Path, Generated, float]:
    """The synthetic file of ``rows`` rows in ``work`` (made unless a run made it already)."""
    csv_path = work / f"ownthink_{rows}.csv"
    meta = csv_path.with_suffix(".meta.json")
    t0 = time.perf_counter()
    if csv_path.exists() and meta.exists():
        gen = Generated.from_json(meta)
        if gen.rows == rows and gen.seed == seed and gen.bytes == csv_path.stat().st_size:
            return csv_path, gen, 0.0
    gen = generate(csv_path, rows, seed=seed)
    gen.to_json(meta)
    return csv_path, gen, time.perf_counter() - t0


def measure(work: Path, rows: int, seed: int, keep: bool) -> dict[str, object]:
    """Generate (or reuse) the two files, run every job, and gather the figures. Outputs not
    needed any more are removed as soon as they are measured, unless ``keep``."""
    small_rows = max(1, rows // 10)
    big_csv, gen, gen_s = ensure_file(work, rows, seed)
    small_csv, _, small_gen_s = ensure_file(work, small_rows, seed)
    runs: dict[str, LoadFigures] = {}
    for label, csv_path, n in (("small", small_csv, small_rows), ("big", big_csv, rows)):
        out = work / f"import_{n}"
        runs[f"import_{label}"] = load_job(csv_path, n, ["--neo4j-import-csv", str(out)], out)
        db = work / f"db_{n}"
        # the parser process in both runs, as in any load of a large file: comparable peaks
        target = ["--db", str(db), "--parser-process", "yes"]
        runs[f"embedded_{label}"] = load_job(csv_path, n, target, db)
        if not keep:
            shutil.rmtree(out)
            if label == "small":
                shutil.rmtree(db)
    lookups, lookup_run = lookup_job(work / f"db_{rows}", big_csv.with_suffix(".meta.json"))
    figures: dict[str, object] = {
        "rows": rows,
        "seed": seed,
        "source_bytes": gen.bytes,
        "generated": {k: v for k, v in asdict(gen).items() if not k.startswith("probe")},
        "generate_s": round(gen_s + small_gen_s, 1),
        "runs": {k: asdict(v) for k, v in runs.items()},
        "lookups": lookups,
        "lookup_wall_s": round(lookup_run.wall_s, 2),
        "lookup_peak_rss_mib": lookup_run.peak_rss_mib,
    }
    for label in ("import", "embedded"):
        small, big = runs[f"{label}_small"], runs[f"{label}_big"]
        figures |= at_ownthink(label, small, big, gen.bytes)
    # what neo4j-admin will skip as repeated nodes (each a "bad entry" to it)
    written, stats = runs["import_big"].summary, lookups["stats"]
    repeated = written["entity_rows"] - stats["entities"] + written["alias_rows"] - stats["aliases"]
    figures["import_repeated_node_rows"] = repeated
    figures["import_140m_repeated_node_rows"] = round(repeated * OWNTHINK_ROWS / rows)
    return figures


def print_table(f: dict) -> None:
    runs, g = f["runs"], f["generated"]
    print(
        f"{f['rows']:,} synthetic Ownthink rows, {f['source_bytes'] / 2**20:,.1f} MiB "
        f"({g['bad_rows']} bad, {g['multiline_rows']} over several lines, "
        f"{g['duplicate_rows']} repeated); "
        + (f"generated in {f['generate_s']} s" if f["generate_s"] else "reused")
    )
    print(f"\n{'job':<24}{'rows':>12}{'rows/s':>10}{'s':>9}{'RSS MiB sum/max':>18}{'MiB out':>10}")
    for key, r in runs.items():
        job = "neo4j-admin files " if key.startswith("import") else "embedded load "
        rss = f"{r['peak_rss_mib']:.0f}/{r['max_process_rss_mib']:.0f}"
        print(
            f"{job:<24}{r['rows']:>12,}{r['rows_per_s']:>10,}{r['seconds']:>9.1f}{rss:>18}"
            f"{r['bytes'] / 2**20:>10.1f}"
        )
    lk = f["lookups"]
    print(f"\nlookups in the {f['rows']:,}-row store (opened in {lk['open_ms']} ms): {lk['stats']}")
    print(f"{'call':<16}{'n':>6}{'found':>7}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    for call in ("facts", "heads_among", "resolve_alias", "neighbors", "search"):
        c = lk[call]
        print(
            f"{call:<16}{c['n']:>6}{c['found']:>7}{c['p50_ms']:>9.3f}{c['p99_ms']:>9.3f}"
            f"{c['mean_ms']:>9.3f}"
        )
    print(
        f"\nneo4j-admin would skip {f['import_repeated_node_rows']:,} repeated node rows "
        f"({f['import_140m_repeated_node_rows']:,} at {OWNTHINK_ROWS:,} rows)"
    )
    print(f"\n{OWNTHINK_ROWS:,} rows (Ownthink), scaled from these runs:")
    if f["rows"] < 1_000_000:
        print("(from runs this small, start-up costs dominate: these mean little)")
    print(f"{'job':<24}{'hours':>8}{'GiB out':>9}{'peak RSS MiB':>14}{'out B/source B':>16}")
    for label, job in (("import", "neo4j-admin files"), ("embedded", "embedded load")):
        print(
            f"{job:<24}{f[f'{label}_140m_hours']:>8}{f[f'{label}_140m_gib']:>9}"
            f"{f[f'{label}_140m_peak_rss_mib']:>14}{f[f'{label}_bytes_per_source_byte']:>16}"
        )


def flat(f: dict) -> dict[str, object]:
    """The figures as one flat JSON object."""
    out = {k: v for k, v in f.items() if not isinstance(v, dict)}
    out |= {k: f["generated"][k] for k in ("bad_rows", "multiline_rows", "duplicate_rows")}
    for key, r in f["runs"].items():
        for field in ("rows_per_s", "seconds", "peak_rss_mib", "max_process_rss_mib", "bytes"):
            out[f"{key}_{field}"] = r[field]
    big = f["runs"]["import_big"]["summary"]
    for k in ("entity_rows", "relationship_rows", "alias_rows", "names_over_index_limit"):
        out[f"import_{k}"] = big.get(k)
    out |= {f"store_{k}": v for k, v in f["lookups"]["stats"].items()}
    for call in ("facts", "heads_among", "resolve_alias", "neighbors", "search"):
        for q in ("p50_ms", "p99_ms"):
            out[f"lookup_{call}_{q}"] = f["lookups"][call][q]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", help="generated files here, reused by later runs (default: temp)")
    ap.add_argument("--keep", action="store_true", help="keep the import files and stores")
    ap.add_argument("--lookup-job", nargs=2, metavar=("DB", "META"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.lookup_job:
        print(json.dumps(lookup_latencies(Path(args.lookup_job[0]), Path(args.lookup_job[1]))))
        return
    if args.rows < 10:
        ap.error("--rows must be at least 10")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="kg_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        figures = measure(work, args.rows, args.seed, args.keep)
    finally:
        if not args.keep:
            for p in [*work.glob("import_*"), *work.glob("db_*")]:
                shutil.rmtree(p, ignore_errors=True)
            if not args.workdir:
                shutil.rmtree(work, ignore_errors=True)
    figures["bench_wall_s"] = round(time.perf_counter() - t0, 1)
    print_table(figures)
    print(json.dumps(flat(figures), ensure_ascii=False))


if __name__ == "__main__":
    main()
