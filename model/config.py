"""Training configuration (:class:`TrainConfig`) and the training side of the presets.

Design: docs/architecture.md, section "Model". A backbone's own configuration (sizes,
switches, ablation rows) lives with the backbone (:mod:`model.backbones`); KLVCG's, with the
paper's defaults, in :mod:`model.backbones.klvcg_config`.

Paper defaults (KLVCG, Chen et al., §V-A "Training setup"): lr 1e-4 with warm-up and linear
decay (UniVL's ``warmup_linear``), AdamW, batch 128; pre-training masks 30 % of the target
words. ``--preset paper`` is exactly that; the default ``cpu`` preset trains with a higher
learning rate and fewer epochs, for the small number of steps a 2-core machine gets in the 15
minutes the main job has.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

PRESETS = ("cpu", "paper")


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "cpu"
    ablation: str = "+period"
    batch_size: int = 64
    lr: float = 1e-4
    warmup: float = 0.1  # fraction of the steps of a stage
    weight_decay: float = 0.01
    pretrain_epochs: float = 1.0  # MLM stage (skipped by "basic")
    epochs: float = 2.0  # generation fine-tuning
    max_steps: int | None = None  # caps each stage
    # training-step seconds at most over all stages (model.compare's equal budget): each
    # stage stops at its share of the planned steps' time; None: no limit
    time_budget_s: float | None = None
    mask_prob: float = 0.3
    eval_every: int = 0  # steps between dev evaluations (0: at the end of each epoch)
    dev_samples: int = 256  # dev samples for the checkpoint selection (MRR)
    seed: int = 0
    kg_in_finetune: bool = True  # False: the released code's setup (facts in pre-training only)
    # the copy path's training (COPY_TRAINING with +copy; the paper's rows keep these)
    copy_gate_weight: float = 0.0  # the copy-gate loss (model.backbones.klvcg_copy.gate_targets)
    gate_copy_side: float = 1.0  # its copy side's mean, weighted against the generate side's
    knowledge_dropout: float = 0.0  # share of training windows whose facts are dropped
    # training words seen fewer times are <UNK> to the model, in every row: the papers keep
    # the 30,000 most frequent words of a corpus of millions of comments, so rare words are
    # <UNK> in their training targets and an unseen word in a test comment has a learned
    # probability; a corpus with fewer words than the cap keeps them all, <UNK> is never a
    # target, and a comment naming a film training never saw sinks below a random ranker
    # (held-out KdConv dialogues: docs/results-2026-12-04.md). On the papers' corpora the
    # 30,000th word is far more frequent than this, so the cut changes nothing there.
    min_word_count: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


def preset_training(preset: str) -> dict:
    if preset == "paper":
        return {"batch_size": 128, "lr": 1e-4, "epochs": 10.0, "pretrain_epochs": 5.0}
    if preset == "cpu":
        return {
            "batch_size": 64,
            "lr": 1e-3,
            "pretrain_epochs": 0.25,
            "epochs": 1.25,
            # dev MRR at the end of each epoch only: on 256 dev samples its steps-apart
            # differences are within its own interval, and each evaluation costs steps
        }
    raise ValueError(f"unknown preset {preset!r}: one of {', '.join(PRESETS)}")
