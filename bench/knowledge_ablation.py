"""Does knowledge matter? The main job's model (``+copy``) against the paper's full KLVCG and the
``+mlm`` ablation (no KG, no AC) on the demo corpus, on the knowledge-bearing test subset and
overall.

Usage: ``python bench/knowledge_ablation.py [--ablations +copy full +mlm] [--out-root DIR]
[--jobs N] [-- TRAIN-ARGS...]``

Each ablation is trained and evaluated by the main job, ``python -m model.train --kg filmkg
--ablation NAME --json`` (same preset, seed and budget; arguments after ``--`` go to every
run; a finished run in the default checkpoint directory is only re-evaluated). ``--jobs 2``
builds the data once, then trains two ablations at a time, the cores split between them.
Prints the MRR with its bootstrap 95 % interval per ablation and subset, the random-ranker
anchor, the value-swap ranking, the generation knowledge metrics, and whether the first
ablation's interval on the knowledge subset lies entirely above the others', then one JSON
line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def start(ablation: str, extra: list[str], out_root: str | None, threads: int | None):
    cmd = [sys.executable, "-m", "model.train", "--kg", "filmkg", "--ablation", ablation]
    cmd += ["--json", "--no-progress", *extra]
    if out_root:
        cmd += ["--out", str(Path(out_root) / ablation.lstrip("+"))]
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    print("$", " ".join(cmd[1:]), file=sys.stderr, flush=True)
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)


def report_of(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(proc.args[1:])} failed with exit status {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1])


def build_data(extra: list[str]) -> None:
    """Build what every run reads (store, corpus, index, recalled knowledge) once, up front,
    so parallel runs do not each build it."""
    from common.settings import RunSettings
    from model.model_data import build_data, preset_lengths
    from model.train import parse_args
    from retrieval.bootstrap import open_bootstrapped_store

    args = parse_args(["--kg", "filmkg", "--no-progress", *extra])
    settings = RunSettings.from_args(args)
    data = build_data(settings, open_bootstrapped_store(settings), preset_lengths(args.preset))
    for split in ("train", "dev", "test"):
        data.split(split)
    data.ctx.store.close()


def train_all(ablations: list[str], extra: list[str], out_root: str | None, jobs: int) -> dict:
    """Reports of every ablation, ``jobs`` trainings at a time sharing the CPU cores."""
    if jobs > 1:
        build_data(extra)
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    reports, pending = {}, list(ablations)
    while pending:
        batch, pending = pending[:jobs], pending[jobs:]
        procs = [(name, start(name, extra, out_root, threads)) for name in batch]
        reports.update((name, report_of(proc)) for name, proc in procs)
    return reports


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ablations", nargs="+", default=["+copy", "full", "+mlm"])
    p.add_argument("--out-root", help="one checkpoint directory per ablation under this one")
    p.add_argument(
        "--jobs", type=int, default=1, help="trainings at a time, sharing the cores (default 1)"
    )
    args = p.parse_args(own)
    if len(args.ablations) < 2:
        p.error("--ablations: name at least two (the first is compared with the others)")
    reports = train_all(args.ablations, extra, args.out_root, max(1, args.jobs))

    print(f"{'ablation':<10}{'subset':<12}{'MRR':>8}{'95 % interval':>20}{'R@1':>8}{'n':>6}")
    for name, rep in reports.items():
        for subset, block in (("all", rep), ("knowledge", rep["knowledge_subset"])):
            lo, hi = block["ci"]["mrr"]
            print(
                f"{name:<10}{subset:<12}{block['mrr']:>8.3f}{f'[{lo:.3f}, {hi:.3f}]':>20}"
                f"{block['r1']:>8.2f}{block['n']:>6}"
            )
    print(f"\n{'ablation':<10}{'value swap R@1':>16}{'MRR':>8}{'95 % interval (R@1)':>22}{'n':>6}")
    for name, rep in reports.items():
        vs = rep.get("value_swap", {})
        if vs.get("n"):
            lo, hi = vs["ci"]["r1"]
            print(
                f"{name:<10}{vs['r1']:>16.2f}{vs['mrr']:>8.3f}{f'[{lo:.2f}, {hi:.2f}]':>22}"
                f"{vs['n']:>6}"
            )
    anchors = [rep["value_swap"]["random"] for rep in reports.values() if rep.get("value_swap")]
    if anchors and anchors[0]:
        print(f"random ranker on the value-swap sets: R@1 {anchors[0]['r1']:.2f}")
    keys = ("fact_copy", "supported_values", "unsupported_values", "knowledge_f1")
    print(f"\n{'ablation':<10}" + "".join(f"{k:>20}" for k in keys))
    for name, rep in reports.items():
        gen = rep.get("generation", {})
        print(f"{name:<10}" + "".join(f"{gen.get(k, float('nan')):>20.4f}" for k in keys))
    first = args.ablations[0]
    anchor = reports[first]["knowledge_subset"]["random"]["mrr"]
    print(f"random ranker on the knowledge subset's candidates: MRR {anchor:.3f}")
    low_full = reports[first]["knowledge_subset"]["ci"]["mrr"][0]
    separated = all(
        low_full > rep["knowledge_subset"]["ci"]["mrr"][1]
        for name, rep in reports.items()
        if name != first
    )
    beat_random = all(rep["knowledge_subset"]["mrr"] > anchor for rep in reports.values())
    print(f"{first} above the others on the knowledge subset, intervals apart: {separated}")
    print(f"every ablation above the random ranker on it: {beat_random}")
    summary = {
        name: {
            "mrr": rep["mrr"],
            "mrr_ci": rep["ci"]["mrr"],
            "knowledge_mrr": rep["knowledge_subset"]["mrr"],
            "knowledge_mrr_ci": rep["knowledge_subset"]["ci"]["mrr"],
            "value_swap": rep.get("value_swap"),
            "generation": rep.get("generation"),
            "checkpoint": rep["checkpoint"],
        }
        for name, rep in reports.items()
    }
    print(
        json.dumps(
            {
                "ablations": summary,
                "random_knowledge_mrr": anchor,
                "separated": separated,
                "beat_random": beat_random,
            }
        )
    )


if __name__ == "__main__":
    main()
