"""Does knowledge matter? The full KLVCG against the ``+mlm`` ablation (no KG, no AC) on the demo
corpus, on the knowledge-bearing test subset and overall.

Usage: ``python bench/knowledge_ablation.py [--ablations full +mlm] [--out-root DIR]
[-- TRAIN-ARGS...]``

Each ablation is trained and evaluated by the main job, ``python -m model.train --kg filmkg
--ablation NAME --json`` (same preset, seed and budget; arguments after ``--`` go to every
run; a finished run in the default checkpoint directory is only re-evaluated). Prints the
MRR with its bootstrap 95 % interval per ablation and subset, the random-ranker anchor, and
whether the full model's interval on the knowledge subset lies entirely above the others'
(the issue's claim), then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def train(ablation: str, extra: list[str], out_root: str | None) -> dict:
    cmd = [sys.executable, "-m", "model.train", "--kg", "filmkg", "--ablation", ablation]
    cmd += ["--json", "--no-progress", *extra]
    if out_root:
        cmd += ["--out", str(Path(out_root) / ablation.lstrip("+"))]
    print("$", " ".join(cmd[1:]), file=sys.stderr, flush=True)
    done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ablations", nargs="+", default=["full", "+mlm"])
    p.add_argument("--out-root", help="one checkpoint directory per ablation under this one")
    args = p.parse_args(own)
    reports = {name: train(name, extra, args.out_root) for name in args.ablations}

    print(f"{'ablation':<10}{'subset':<12}{'MRR':>8}{'95 % interval':>20}{'R@1':>8}{'n':>6}")
    for name, rep in reports.items():
        for subset, block in (("all", rep), ("knowledge", rep["knowledge_subset"])):
            lo, hi = block["ci"]["mrr"]
            print(
                f"{name:<10}{subset:<12}{block['mrr']:>8.3f}{f'[{lo:.3f}, {hi:.3f}]':>20}"
                f"{block['r1']:>8.2f}{block['n']:>6}"
            )
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
