"""Load throughput and memory of ``python -m kg.load`` on synthetic Ownthink rows.

Usage: ``python bench/kg_load.py --rows 1000000 [--neo4j]``

Generates ``--rows`` rows in the Ownthink CSV format (header ``实体,属性,值``; quoted values
with commas, quotes and newlines; long descriptions), then measures, each in a fresh child
process: CSV parsing alone (``kg.sources.read_ownthink``), the embedded load through the real
CLI, and the same load at ``--rows / 10`` for the streaming check (peak RSS ratio, summed over
the loader and its parser process, sampled every 20 ms), and the two halves of the load apart
(parsing and preparing batches; writing prepared batches, then building the final indexes),
which bound what the two-process load can reach. With
``--neo4j`` it also loads into a Bolt server (``NEO4J_URI`` or a local ArcadeDB started here).
Prints a table, then one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RELATIONS = [
    "描述",
    "标签",
    "中文名",
    "别名",
    "类型",
    "出生日期",
    "国籍",
    "职业",
    "代表作品",
    "主演",
    "导演",
    "上映时间",
    "出品公司",
    "外文名",
    "所属地区",
    "成立时间",
    "主要成就",
]
CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动"
    "同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自"
    "二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日"
    "那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变"
    "条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总"
    "次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指"
    "几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器"
    "压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安"
    "场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集"
    "温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连"
    "断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精"
    "值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属"
    "圆包火住调满县局照参红细引听该铁价严龙飞"
)


def generate(path: Path, rows: int, seed: int = 0) -> None:
    """Deterministic Ownthink-like rows: ~10 facts per head, some values entity names."""
    rng = random.Random(seed)

    def word(lo: int, hi: int) -> str:
        return "".join(rng.choice(CHARS) for _ in range(rng.randint(lo, hi)))

    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["实体", "属性", "值"])
        head, left, names = "", 0, []
        for _ in range(rows):
            if left == 0:
                head = word(2, 6) + (f"（{word(4, 10)}）" if rng.random() < 0.2 else "")
                left = rng.randint(3, 20)
                names.append(head)
                names = names[-1000:]
            left -= 1
            rel = rng.choice(RELATIONS)
            r = rng.random()
            if r < 0.35:
                tail = rng.choice(names)
            elif r < 0.7:
                tail = word(1, 8)
            elif r < 0.95:
                tail = "，".join(word(5, 20) for _ in range(rng.randint(2, 6))) + ', "引号", 逗号'
            else:
                tail = word(30, 60) + "\n" + word(10, 40)
            w.writerow([head, rel, tail])


def child(code: str, *args: str) -> tuple[str, float, int]:
    """Run python code in a child; return its stdout, wall seconds and the peak of the summed
    RSS (KiB) of the child and all its descendants (the loader's parser process included)."""
    import psutil

    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out_file:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            cwd=ROOT,
            stdout=out_file,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        root, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            try:
                procs = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass  # a process ended between listing and reading
            time.sleep(0.02)
        if proc.returncode != 0:
            raise SystemExit(f"child failed: {code} {args}")
        out_file.seek(0)
        return out_file.read(), time.perf_counter() - t0, peak // 1024


PARSE = """
import sys, time
from kg.sources import read_ownthink
t = time.perf_counter(); n = sum(1 for _ in read_ownthink(sys.argv[1]))
print(n, time.perf_counter() - t)
"""
# The two halves of a load apart, in one process: parsing, preparing each batch (ids, aliases,
# pickling, all of it in the parser process during a load) and the store's writing of batches
# already prepared, with its final index builds. A two-process load can go no faster than the
# slower of the two, plus the index builds, which run alone at the end.
HALVES = """
import gc, json, pickle, sys, time
from itertools import islice
from kg.embedded import EmbeddedStore
from kg.loader import DEFAULT_BATCH
from kg.sources import read_source
from kg.triples import batch_alias_pairs
gc.disable()
store = EmbeddedStore(sys.argv[2])
prepare = store.batch_preparer("bench")
records = read_source("ownthink", sys.argv[1])
t = time.perf_counter()
chunks = []
while chunk := list(islice(records, DEFAULT_BATCH)):
    chunks.append(chunk)
parse = time.perf_counter() - t
t = time.perf_counter()
batches = [pickle.dumps(prepare(c, batch_alias_pairs(c)), protocol=5) for c in chunks]
prep = time.perf_counter() - t
t, position = time.perf_counter(), 0
for batch, chunk in zip(batches, chunks):
    position += len(chunk)
    store.write_prepared(pickle.loads(batch), "bench", position)
write = time.perf_counter() - t
t = time.perf_counter()
store.finish_load("bench")
finish = time.perf_counter() - t
prepare.close()
store.close()
print(json.dumps({"parse_s": parse, "prepare_s": prep, "write_s": write, "index_s": finish}))
"""
LOAD = """
import sys
from kg.load import main
main(sys.argv[1:])
"""


def load_figures(csv_path: Path, workdir: Path, extra: list[str]) -> tuple[dict, int]:
    out, _, rss = child(
        LOAD, "--kg", "ownthink", "--path", str(csv_path), "--json", "--no-progress", *extra
    )
    summary = json.loads(out.strip().splitlines()[-1])
    return summary, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--neo4j", action="store_true", help="also load over Bolt")
    ap.add_argument("--neo4j-rows", type=int, default=100_000, help="rows for the Bolt load")
    ap.add_argument("--workdir", help="keep generated files here (default: a temp dir)")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="kg_load_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    small_rows = max(1, args.rows // 10)
    big, small = work / f"ownthink_{args.rows}.csv", work / f"ownthink_{small_rows}.csv"
    for path, n in ((big, args.rows), (small, small_rows)):
        if not path.exists():
            generate(path, n)

    out, _, _ = child(PARSE, str(big))
    parsed, parse_s = out.split()
    parse_rate = int(parsed) / float(parse_s)

    figures: dict[str, object] = {"rows": args.rows, "csv_parse_rows_per_s": round(parse_rate)}
    for label, path in (("small", small), ("big", big)):
        db = work / f"db_{label}"
        subprocess.run(["rm", "-rf", str(db)], check=True)
        summary, rss = load_figures(path, work, ["--db", str(db)])
        figures[f"{label}_rows_per_s"] = round(summary["triples_read"] / summary["seconds"])
        figures[f"{label}_peak_rss_mib"] = round(rss / 1024, 1)
        figures[f"{label}_summary"] = summary
    figures |= lookup_figures(work / "db_big")
    figures |= halves_figures(big, work / "db_halves", args.rows)
    figures["rows_per_s"] = figures.pop("big_rows_per_s")
    figures["peak_rss_mib"] = figures.pop("big_peak_rss_mib")
    figures["load_to_parse_ratio"] = round(figures["rows_per_s"] / parse_rate, 3)
    figures["rss_ratio_vs_tenth"] = round(
        figures["peak_rss_mib"] / figures["small_peak_rss_mib"], 3
    )
    if args.neo4j:
        figures |= neo4j_figures(work, args.neo4j_rows)

    print(f"{'figure':<28} value")
    for k, v in figures.items():
        if not isinstance(v, dict):
            print(f"{k:<28} {v}")
    print(json.dumps({k: v for k, v in figures.items() if not isinstance(v, dict)}))


def halves_figures(csv_path: Path, db: Path, rows: int) -> dict[str, float]:
    """Rates of a load's two halves apart (see HALVES): what bounds the two-process load."""
    subprocess.run(["rm", "-rf", str(db)], check=True)
    out, _, _ = child(HALVES, str(csv_path), str(db))
    s = json.loads(out.strip().splitlines()[-1])
    parser_side = s["parse_s"] + s["prepare_s"]
    return {
        "parser_side_rows_per_s": round(rows / parser_side),
        "writer_side_rows_per_s": round(rows / s["write_s"]),
        "final_index_build_s": round(s["index_s"], 2),
        "writer_alone_rows_per_s": round(rows / (s["write_s"] + s["index_s"])),
        # the slower half throughout, then the index builds alone
        "two_process_bound_rows_per_s": round(
            rows / (max(parser_side, s["write_s"]) + s["index_s"])
        ),
    }


def lookup_figures(db: Path, n: int = 2000) -> dict[str, float]:
    """Latency of ``facts(name, limit=20)`` and ``search(prefix)`` on the loaded store."""
    sys.path.insert(0, str(ROOT))
    from kg.embedded import EmbeddedStore

    with EmbeddedStore(db, create=False) as store:
        names = [f.head for f in islice(store.iter_facts(), 0, None, 97)][:n]
        t0 = time.perf_counter()
        for name in names:
            store.facts(name, limit=20)
        facts_ms = (time.perf_counter() - t0) / len(names) * 1000
        t0 = time.perf_counter()
        for name in names:
            store.search(name[:2], limit=20)
        search_ms = (time.perf_counter() - t0) / len(names) * 1000
    return {"facts_lookup_ms": round(facts_ms, 4), "prefix_search_ms": round(search_ms, 4)}


def neo4j_figures(work: Path, rows: int) -> dict[str, object]:
    path = work / f"ownthink_{rows}.csv"
    if not path.exists():
        generate(path, rows)
    sys.path.insert(0, str(ROOT))
    from tests.bolt_server import bolt_server_env

    with bolt_server_env(work / "bolt") as env:
        os.environ.update(env)
        summary, rss = load_figures(path, work, ["--store", "neo4j"])
    return {
        "neo4j_rows": rows,
        "neo4j_rows_per_s": round(summary["triples_read"] / summary["seconds"]),
        "neo4j_server": os.environ.get("NEO4J_URI", ""),
    }


if __name__ == "__main__":
    main()
