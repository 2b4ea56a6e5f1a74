"""Ranking and generation evaluation (docs/evaluation.md; KLVCG §V-A; LiveBot §5).

The command line of :mod:`model.evaluation`: it opens a checkpoint over the corpus it was
trained on (unless ``--corpus``/``--format`` say otherwise), evaluates it on a split and prints
the metrics table (:mod:`model.evaluation_report`), then with ``--json`` one JSON object.

    python -m model.evaluate --checkpoint DIR [--split test] [--json]
"""

from __future__ import annotations

import argparse

from common.cli import print_json, run
from common.settings import RunSettings
from model.checkpoint import (
    add_checkpoint_args,
    load_checkpoint,
    open_checkpoint,
    with_trained_corpus,
)
from model.evaluation import GENERATION_SAMPLES, evaluate_model
from model.evaluation_report import EvaluationReport, format_table
from retrieval.bootstrap import open_bootstrapped_store


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__.split("\n")[0])
    add_checkpoint_args(p)
    p.add_argument("--split", default="test", choices=("dev", "test"))
    p.add_argument("--generation-samples", type=int, default=GENERATION_SAMPLES)
    p.add_argument("--eval-samples", type=int, help="rank only this many spread samples")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    return p.parse_args(argv)


def evaluate_checkpoint(args: argparse.Namespace) -> tuple[EvaluationReport, dict]:
    """The checkpoint of ``args`` evaluated on the data its flags name: the report, and its
    JSON record (the report, then the checkpoint and its ablation)."""
    ckpt = load_checkpoint(args.checkpoint)  # fails before anything is built
    settings = with_trained_corpus(RunSettings.from_args(args), ckpt)
    opened = open_checkpoint(ckpt, settings, open_bootstrapped_store(settings))
    report = evaluate_model(
        opened.model,
        opened.data,
        opened.device,
        split=args.split,
        use_kg=ckpt.train_config.kg_in_finetune,
        generation_samples=args.generation_samples,
        eval_samples=args.eval_samples,
        progress=settings.progress,
    )
    record = {
        **report.as_dict(),
        "checkpoint": str(ckpt.directory),
        "ablation": ckpt.train_config.ablation,
    }
    return report, record


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report, record = evaluate_checkpoint(args)
    print(format_table(report))
    if args.json:
        print_json(record)
    return 0


if __name__ == "__main__":
    run(main)
