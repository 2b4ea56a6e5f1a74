"""``python -m model.train --kg filmkg``: the main job. Builds whatever is missing (the bundled
FilmKG sample in the embedded store, the demo corpus, keyword sets, the FAISS index of other
videos' comments, the vocabulary and candidate sets, the recalled knowledge of every sample),
trains the backbone (``--backbone``, KLVCG by default: MLM pre-training, then fine-tuning),
selects the checkpoint on dev MRR, evaluates it on the test split and prints the metrics with
95 % intervals, overall and on the knowledge-bearing subset. Running it again resumes an
interrupted run, or only re-evaluates a finished one; one run at a time per output directory
(it holds ``run.lock`` there: :func:`run_lock`).

    python -m model.train --kg filmkg [--corpus PATH --format FMT] [--preset cpu|paper]
        [--backbone klvcg|livebot_transformer|s2s_i|s2s_c|s2s_ic|engaging]
        [--ablation basic|+mlm|+kg|+ac|+period|full|+copy]
        [--epochs N] [--max-steps N] [--budget-minutes N]
        [--out DIR] [--tensorboard DIR] [--device auto] [--seed N] [--json]

Defaults (``--backbone klvcg``, ``--preset cpu``, ``--ablation +copy``: the full model with the
copy path of :mod:`model.backbones.klvcg_copy`) are sized for a 2-core CPU, data building
included (the results pages under ``docs/`` give the measured time); ``--preset paper`` is the
paper's model (d = 384, batch 128, lr 1e-4), ``--ablation full`` the paper's full model.
``--backbone livebot_transformer`` is LiveBot's Unified Transformer: it has one row only
(``unified``, its default), and any other ``--ablation`` is refused.
The LiveBot baselines (``s2s_*``, :mod:`model.backbones.s2s`) have one row, ``default``.
``--backbone engaging`` (:mod:`model.backbones.engaging`) has the paper's table 4 losses as
rows: ``isg`` (default), ``jsg1``, ``jsg2``, ``mle``.

``torchrun --nproc_per_node N -m model.train ...`` trains the same run in N data-parallel
processes (:mod:`model.distributed`): ``--batch-size`` is the global batch, rank 0 builds the
data caches first, and it alone holds the lock, evaluates, logs and prints the results.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

from common.cli import print_json, run
from common.lock import LockHeld, describe_holder, hold_lock
from common.paths import data_dir
from common.settings import RunSettings
from model.backbones import (
    BACKBONES,
    DEFAULT_BACKBONE,
    BackboneConfig,
    backbone_class,
    describe_rows,
)
from model.checkpoint import CheckpointError, build_model, load_checkpoint, write_metrics
from model.config import PRESETS, TrainConfig
from model.distributed import Distributed, start
from model.evaluation import GENERATION_SAMPLES, evaluate_model
from model.evaluation_report import EvaluationReport, format_generation, format_table
from model.model_data import (
    ModelData,
    add_data_args,
    build_data,
    preset_lengths,
    seed_everything,
)
from model.trainer import Trainer
from model.word_ids import Lengths, frequent_words
from retrieval.bootstrap import open_bootstrapped_store
from retrieval.context import DEFAULT_EMBEDDER

log = logging.getLogger(__name__)
RUN_LOCK = "run.lock"
#: Options named in the default run name when given (name -> short form).
NAMED_OPTIONS = {
    "lr": "lr",
    "max_steps": "steps",
    "budget_minutes": "min",
    "epochs": "ep",
    "pretrain_epochs": "pep",
    "batch_size": "bs",
}
#: Other options that change what is trained, and their defaults: when one differs, the run
#: name ends with a short hash of them.
OTHER_OPTIONS = {
    "eval_every": None,
    "dev_samples": None,
    "min_word_count": None,
    "copy_gate_weight": None,
    "gate_copy_side": None,
    "kg_in": "both",
    "copy_known_comment_words": False,
    "embedder": DEFAULT_EMBEDDER,
    "kg": "filmkg",
    "store": "embedded",
    "db": None,
    "neo4j_uri": None,
    "neo4j_database": None,
}


def legacy_run_name(args: argparse.Namespace, corpus_fingerprint: str) -> str:
    """The default run name before the seed and the settings were part of it."""
    ablation = backbone_class(args.backbone).canonical_ablation(args.ablation)
    slug = "full" if ablation == "+period" else ablation.lstrip("+")
    return f"{args.backbone}-{slug}-{args.preset}-{args.format}-{corpus_fingerprint[:8]}"


def run_name(args: argparse.Namespace, corpus_fingerprint: str) -> str:
    """The default ``--out`` name: model, preset, corpus, seed and every setting given that
    changes what is trained, so two runs that differ never share a directory
    (``klvcg-copy-cpu-demo-1a2b3c4d-seed0-lr0.001-steps50``)."""
    parts = [legacy_run_name(args, corpus_fingerprint), f"seed{args.seed}"]
    for name, short in NAMED_OPTIONS.items():
        if getattr(args, name) is not None:
            parts.append(f"{short}{getattr(args, name):g}")
    other = {k: getattr(args, k, v) for k, v in OTHER_OPTIONS.items()}
    changed = {k: v for k, v in other.items() if v != OTHER_OPTIONS[k]}
    if changed:
        blob = json.dumps(changed, sort_keys=True, default=str).encode()
        parts.append("o" + hashlib.sha256(blob).hexdigest()[:6])
    return "-".join(parts)


@contextmanager
def run_lock(out: Path):
    """Hold ``out/run.lock`` (:mod:`common.lock`) while the block runs: a second run into the
    same directory is refused at once, naming the holder; a lock left by a run that died is
    taken over."""
    try:
        with hold_lock(out / RUN_LOCK, command="model.train") as left_behind:
            if left_behind:
                log.warning(
                    "%s: taking over from a run that ended without finishing (%s)",
                    out,
                    describe_holder(left_behind),
                )
            yield
    except LockHeld as e:
        raise CheckpointError(
            f"{out}: another model.train run is using this directory "
            f"({describe_holder(e.holder)}); wait for it to end or pass another --out"
        ) from None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.split("\n")[0])
    add_data_args(p)
    p.add_argument(
        "--backbone",
        choices=sorted(BACKBONES),
        default=DEFAULT_BACKBONE,
        help=f"the model (default: {DEFAULT_BACKBONE})",
    )
    p.add_argument("--preset", choices=PRESETS, default="cpu", help="model size (default: cpu)")
    p.add_argument(
        "--ablation",
        default=None,
        help=f"the backbone's row (default: its first); {describe_rows()}",
    )
    p.add_argument("--epochs", type=float, help="fine-tuning epochs")
    p.add_argument("--pretrain-epochs", type=float, help="MLM pre-training epochs")
    p.add_argument("--max-steps", type=int, help="at most this many steps per stage")
    p.add_argument(
        "--budget-minutes",
        type=float,
        help="at most this many minutes of training steps over all stages (each stage its "
        "share of the planned steps); the schedule stays planned for the epochs",
    )
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--eval-every", type=int, help="steps between dev evaluations (default: epoch)")
    p.add_argument("--dev-samples", type=int, help="dev samples for checkpoint selection")
    p.add_argument(
        "--copy-known-comment-words",
        action="store_true",
        help="+copy: also copy the window's comment words the model has an id for",
    )
    p.add_argument(
        "--copy-gate-weight", type=float, help="+copy: the copy-gate loss's weight (default: 1)"
    )
    p.add_argument(
        "--gate-copy-side",
        type=float,
        help="+copy: the gate loss's copy side against its generate side (default: 1)",
    )
    p.add_argument(
        "--min-word-count",
        type=int,
        help="training words seen fewer times are <UNK> to the model (default: 2; 1 keeps all)",
    )
    p.add_argument(
        "--kg-in",
        choices=("both", "pretrain"),
        default="both",
        help="feed facts in both stages (default) or in pre-training only (the released code)",
    )
    p.add_argument("--generation-samples", type=int, default=GENERATION_SAMPLES)
    p.add_argument("--eval-samples", type=int, help="rank only this many spread test samples")
    p.add_argument("--out", help="checkpoint directory (default: $DANMAKU_DATA/checkpoints/RUN)")
    p.add_argument("--overwrite", action="store_true", help="discard a previous run in --out")
    p.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="also write the training curves as TensorBoard event files in DIR "
        "(metrics.csv in --out holds them always)",
    )
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = p.parse_args(argv)
    try:
        backbone_class(args.backbone).canonical_ablation(args.ablation)
    except ValueError as e:
        p.error(str(e))
    positive = ("epochs", "pretrain_epochs", "max_steps", "batch_size", "lr", "min_word_count")
    for name in (*positive, "budget_minutes"):
        value = getattr(args, name)
        if value is not None and value <= 0 and not (name == "pretrain_epochs" and value == 0):
            p.error(f"--{name.replace('_', '-')} must be positive")
    for name in ("copy_gate_weight", "gate_copy_side"):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    dist, device = start(args.device)  # one process, or one of torchrun's
    if not dist.is_main:  # rank 0 reports
        logging.getLogger().setLevel(logging.WARNING)
        args.no_progress = True
    try:
        with ExitStack() as held:
            if args.out and dist.is_main:  # known now: refuse a second run before building data
                held.enter_context(run_lock(Path(args.out)))
            return _train(args, started, held, dist, device)
    finally:
        dist.close()


def _train(
    args: argparse.Namespace, started: float, held: ExitStack, dist: Distributed, device
) -> int:
    seed_everything(args.seed)
    settings = RunSettings.from_args(args)
    lengths = preset_lengths(args.preset, args.backbone)
    data = dist.in_order(lambda: _data(settings, lengths))
    model_cfg, train_cfg = _configs(args, data)
    lock = held if dist.is_main else None  # rank 0 holds the run's lock
    out = Path(args.out) if args.out else _default_out(args, data, lock)
    progress = not args.no_progress
    tensorboard = Path(args.tensorboard) if args.tensorboard else None
    trainer = Trainer(model_cfg, train_cfg, data, device, out, progress, tensorboard, dist)
    trainer.fit(overwrite=args.overwrite)
    if not dist.is_main:
        return 0
    trained_s = time.perf_counter() - started
    report, record = _evaluate(args, out, data, device, train_cfg)
    record.update(
        parameters=sum(p.numel() for p in trainer.model.parameters()),
        world_size=dist.world,
        **trainer.throughput(),
        train_seconds=round(trained_s, 1),
        seconds=round(time.perf_counter() - started, 1),
    )
    write_metrics(out, record)
    _print_report(out, report, record, args.json)
    return 0


def _data(settings: RunSettings, lengths: Lengths) -> ModelData:
    """The run's data, with the training and dev splits encoded: every cache training reads
    is on disk when it returns (what rank 0 builds first, :meth:`Distributed.in_order`)."""
    data = build_data(settings, open_bootstrapped_store(settings), lengths)
    data.split("train")
    data.split("dev")
    return data


def _configs(args: argparse.Namespace, data: ModelData) -> tuple[BackboneConfig, TrainConfig]:
    """The model and training configurations of the command line, for ``data``."""
    model_cfg, train_cfg = backbone_class(args.backbone).configure(
        args.preset,
        args.ablation,
        vocab_size=len(data.vocab) + 2,
        frame_dim=data.frame_dim,
        epochs=args.epochs,
        pretrain_epochs=args.pretrain_epochs,
        max_steps=args.max_steps,
        time_budget_s=args.budget_minutes * 60 if args.budget_minutes else None,
        batch_size=args.batch_size,
        lr=args.lr,
        eval_every=args.eval_every,
        dev_samples=args.dev_samples,
        min_word_count=args.min_word_count,
        copy_gate_weight=args.copy_gate_weight,
        gate_copy_side=args.gate_copy_side,
        seed=args.seed,
        kg_in_finetune=args.kg_in == "both",
    )
    # with a word cut-off (the copy path), the model has ids for the frequent words only
    kept = frequent_words(data.vocab, data.split("train").targets, train_cfg.min_word_count)
    model_cfg = replace(
        model_cfg, vocab_size=kept + 2, copy_known_comment_words=args.copy_known_comment_words
    )
    return model_cfg, train_cfg


def _default_out(args: argparse.Namespace, data: ModelData, held: ExitStack | None) -> Path:
    """The run's default directory (:func:`run_name`), its lock held by ``held`` (None: a
    process other than rank 0, which holds it); a run under its name of before
    (:func:`legacy_run_name`) is pointed out, not used."""
    runs = data_dir() / "checkpoints"
    out = runs / run_name(args, data.encoding_key["corpus"])
    legacy = runs / legacy_run_name(args, data.encoding_key["corpus"])
    if held is None:
        return out
    if not out.exists() and legacy.is_dir():
        log.warning(
            "%s holds a run named the way runs were before the seed and settings were in "
            "the name; pass --out %s to resume or re-evaluate it",
            legacy,
            legacy,
        )
    held.enter_context(run_lock(out))
    return out


def _evaluate(
    args: argparse.Namespace, out: Path, data: ModelData, device, train_cfg: TrainConfig
) -> tuple[EvaluationReport, dict]:
    """The test metrics of the checkpoint selected in ``out``, and their JSON record with
    what it is."""
    ckpt = load_checkpoint(out)
    report = evaluate_model(
        build_model(ckpt, device),
        data,
        device,
        use_kg=train_cfg.kg_in_finetune,
        generation_samples=args.generation_samples,
        eval_samples=args.eval_samples,
        progress=not args.no_progress,
    )
    record = {
        **report.as_dict(),
        "checkpoint": str(out),
        "ablation": train_cfg.ablation,
        "preset": train_cfg.preset,
        "dev_mrr": ckpt.dev.get("mrr"),
    }
    return report, record


def _print_report(out: Path, report: EvaluationReport, record: dict, as_json: bool) -> None:
    print(f"checkpoint: {out}")
    print(format_table(report))
    if report.generation is not None:
        print(format_generation(report.generation))
    if as_json:
        print_json(record)


if __name__ == "__main__":
    run(main)
