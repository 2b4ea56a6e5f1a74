"""The training loop of any backbone (:mod:`model.backbones`): its stages in order (KLVCG,
§IV-C: MLM pre-training, then generation fine-tuning; :meth:`Backbone.stages`).

Each stage runs AdamW at the configured learning rate with UniVL's ``warmup_linear`` schedule
(linear warm-up over the first ``warmup`` fraction of the stage's steps, then linear decay to
zero), teacher forcing and gradient clipping at 1.0, over (sample, ground truth) pairs in a
seeded order. During fine-tuning the model is evaluated on a fixed dev subset (ranking MRR:
selection on dev MRR, not on dev loss; docs/evaluation.md, section "Checkpoint selection")
at the end of every epoch or every ``eval_every`` steps, and the best weights are saved as
the checkpoint.

The training state (weights, optimiser, schedule, stage, step, best dev MRR, RNG) is saved to
``state.pt`` regularly and at every evaluation, so an interrupted run resumes where it stopped
when the same command is run again.

Under torchrun the same loop runs in every process (:mod:`model.distributed`): each trains on
its shard of the global batch; rank 0 alone evaluates on dev, logs and writes the files, and
the others take its word (the dev MRR, its step time, so that a time budget stops every
process at the same step); every process resumes from the ``state.pt`` rank 0 saved.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from model.backbones import (
    FINETUNE,
    LEGACY_BACKBONE,
    BackboneConfig,
    Stage,
    TrainingBatch,
    build_backbone,
)
from model.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    LEGACY_WEIGHTS,
    STATE,
    WEIGHTS,
    CheckpointError,
    atomic_torch_save,
    safe_torch_load,
    save_checkpoint,
)
from model.config import TrainConfig
from model.data.vocab import PAD
from model.distributed import SINGLE, Distributed, shard, shard_weight
from model.model_data import ModelData
from model.ranking import rank
from model.train_log import TrainingLog

log = logging.getLogger(__name__)
STATE_EVERY_S = 120.0
#: Training settings that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = frozenset(
    {"epochs", "pretrain_epochs", "max_steps", "eval_every", "time_budget_s"}
)


def warmup_linear(step: int, total: int, warmup: float) -> float:
    """UniVL's schedule: ``step/warm`` during warm-up, then linear decay to 0 at ``total``."""
    warm = max(1, int(total * warmup))
    if step < warm:
        return (step + 1) / warm
    return max(0.0, (total - step) / max(1, total - warm))


@dataclass
class Progress:
    stage: str = FINETUNE  # the name of the stage running
    step: int = 0
    best_mrr: float = -1.0
    seconds: float = 0.0  # in training steps, every stage (dev evaluations left out)
    samples: int = 0  # contexts trained on, every stage


class _Unlogged:
    """The curves of a process other than rank 0, which logs them: nowhere."""

    def step(self, *args) -> None: ...

    def dev(self, *args) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class Trainer:
    def __init__(
        self,
        model_cfg: BackboneConfig,
        train_cfg: TrainConfig,
        data: ModelData,
        device: torch.device,
        out: Path,
        progress: bool = True,
        tensorboard: Path | None = None,
        dist: Distributed = SINGLE,
    ) -> None:
        self.model_cfg, self.train_cfg, self.data = model_cfg, train_cfg, data
        self.device, self.out, self.show = device, out, progress and dist.is_main
        self.dist = dist
        self.tensorboard = tensorboard  # TensorBoard event files there too (model.train_log)
        self.log: TrainingLog | _Unlogged | None = None
        self.model = build_backbone(model_cfg).to(device)
        self._step = dist.data_parallel(self.model)  # runs a step's loss (gradients synced)
        self.stage_of: dict[str, Stage] = {s.name: s for s in self.model.stages(train_cfg)}
        self.stages = list(self.stage_of)  # their names, in order
        self.state = Progress(stage=self.stages[0])
        self.train = data.split("train")
        self.space = self.train.space(model_cfg)
        self.samples = np.unique(self.train.target_sample)  # samples with a ground truth
        if len(self.samples) == 0:
            raise CheckpointError(f"{data.ctx.corpus.path}: no training comments")
        self.dev = data.split("dev")
        n_dev = len(self.dev)
        rng = np.random.default_rng(train_cfg.seed)
        self.dev_idx = np.sort(rng.permutation(n_dev)[: train_cfg.dev_samples])
        self.dev_cands = data.candidates("dev", self.dev) if n_dev and dist.is_main else None
        self.words = None  # each sample's target words: what a shard's loss is weighted by
        if dist.world > 1:
            words = (self.train.targets != PAD).sum(axis=1) - 1  # <BOS> is never predicted
            self.words = np.bincount(self.train.target_sample, words, minlength=len(self.train))

    # -- persistence ------------------------------------------------------------------------

    def _record(self) -> dict:
        return {
            "backbone": self.model_cfg.name,
            "model": self.model_cfg.to_dict(),
            "train": self.train_cfg.to_dict(),
            "data": self.data.encoding_key,
        }

    def _data_record(self) -> dict:
        return {**self.data.source, "encoding": self.data.encoding_key}

    def resume(self) -> dict | None:
        """Load ``state.pt`` when it belongs to this run (weights, progress, RNG) and return
        it; refuse the state of another run."""
        path = self.out / STATE
        if not path.exists():
            if (self.out / WEIGHTS).exists() or (self.out / LEGACY_WEIGHTS).exists():
                raise CheckpointError(
                    f"{self.out}: holds a checkpoint but no training state: pass another --out "
                    "or --overwrite (nothing was overwritten)"
                )
            return None
        saved = safe_torch_load(path)
        mine = self._record()
        backbone = saved.get("backbone", LEGACY_BACKBONE)  # saved before backbones had names
        if (
            backbone != mine["backbone"]
            or saved.get("model") != mine["model"]
            or saved.get("data") != mine["data"]
        ):
            raise CheckpointError(
                f"{path}: a run with another model configuration or data; pass another --out "
                "or --overwrite (nothing was overwritten)"
            )
        theirs = saved.get("train") or {}
        changed = {
            k for k in set(mine["train"]) | set(theirs) if theirs.get(k) != mine["train"].get(k)
        }
        if changed - RESUMABLE_CHANGES:
            raise CheckpointError(
                f"{path}: a run with other training settings ({', '.join(sorted(changed))}); "
                "pass another --out or --overwrite (nothing was overwritten)"
            )
        self.model.load_state_dict(saved["model_state"])
        self.state = Progress(
            saved["stage"],
            saved["step"],
            saved["best_mrr"],
            saved.get("seconds", 0.0),  # states saved before these were counted: from now
            saved.get("samples", 0),
        )
        torch.set_rng_state(saved["rng"])
        log.info("resuming %s at %s step %d", self.out, self.state.stage, self.state.step)
        return saved

    def _save_state(self, optimizer, scheduler) -> None:
        if not self.dist.is_main:
            return
        if self.log is not None:
            self.log.flush()  # the curves hold every step the state has
        atomic_torch_save(
            {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                **self._record(),
                "stage": self.state.stage,
                "step": self.state.step,
                "best_mrr": self.state.best_mrr,
                "seconds": self.state.seconds,
                "samples": self.state.samples,
                "model_state": self.model.state_dict(),
                "optim_state": optimizer.state_dict(),
                "sched_state": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
            },
            self.out / STATE,
        )

    # -- the loop ---------------------------------------------------------------------------

    def out_of_time(self, stage: str) -> bool:
        """Whether the time budget's share of the stages up to ``stage`` is spent."""
        budget = self.train_cfg.time_budget_s
        if budget is None:
            return False
        last = self.stages[-1]
        share = self.global_step(stage, self.stage_steps(stage)[0]) / max(
            1, self.global_step(last, self.stage_steps(last)[0])
        )
        return self.state.seconds >= budget * share

    def global_step(self, stage: str, step: int) -> int:
        """``step`` of ``stage`` counted across stages (after the earlier stages' totals)."""
        earlier = self.stages[: self.stages.index(stage)]
        return sum(self.stage_steps(s)[0] for s in earlier) + step

    def stage_steps(self, stage: str) -> tuple[int, int]:
        """(steps of the stage, steps per epoch)."""
        cfg = self.train_cfg
        per_epoch = max(1, math.ceil(len(self.samples) / cfg.batch_size))
        total = max(1, math.ceil(self.stage_of[stage].epochs * per_epoch))
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)
        return total, per_epoch

    def _optimizer(self, stage: str):
        cfg = self.train_cfg
        total, _ = self.stage_steps(stage)
        decay = [p for n, p in self.model.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in self.model.named_parameters() if p.ndim < 2]
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay}],
            lr=self.stage_of[stage].lr,
            weight_decay=0.0,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: warmup_linear(s, total, cfg.warmup)
        )
        return optimizer, scheduler

    def _order(self, stage: str, epoch: int) -> np.ndarray:
        seed = [self.train_cfg.seed, self.stages.index(stage), epoch]
        return np.random.default_rng(seed).permutation(self.samples)

    def _loss(self, stage: str, samples: np.ndarray, gen: torch.Generator) -> torch.Tensor:
        """The loss of a batch of samples over all their ground truths: each context is
        encoded once however many comments were posted at its second. In several processes,
        this process's weighted share of it (:meth:`_shard`)."""
        cfg, space = self.train_cfg, self.space
        use_kg = self.stage_of[stage].use_kg
        drop = None  # knowledge dropout (the copy path's training): these windows lose their facts
        if stage == FINETUNE and use_kg and cfg.knowledge_dropout > 0:
            drop = (torch.rand(len(samples), generator=gen) < cfg.knowledge_dropout).numpy()
        weight = None
        if self.dist.world > 1:
            samples, drop, weight = self._shard(samples, drop, gen)
        batch = self.train.batch(samples, self.device, space, drop)
        truths = TrainingBatch.of(self.train, samples, space, cfg, gen, drop)
        owner = torch.as_tensor(truths.owner, device=self.device)

        def loss_of(model) -> torch.Tensor:
            memory = model.encode(batch, use_kg=use_kg)
            return model.loss(memory.select(owner), truths, stage)

        loss = self._step(loss_of)
        return loss if weight is None else loss * weight

    def _shard(
        self, samples: np.ndarray, drop: np.ndarray | None, gen: torch.Generator
    ) -> tuple[np.ndarray, np.ndarray | None, float]:
        """This process's shard of the global batch ``samples`` (with its part of ``drop``,
        drawn for the global batch), and the weight of its loss (:func:`shard_weight`). A
        process whose shard is empty (a batch smaller than the processes) trains on the
        batch's first sample with weight 0: every process must run the step. The loss's own
        draws (masks) come from a generator of this process's own after this."""
        mine = shard(samples, self.dist.rank, self.dist.world)
        weight = shard_weight(self.words[samples], mine, self.dist.world)
        if len(mine) == 0:
            mine = np.arange(1)
        if self.dist.rank:
            gen.manual_seed(gen.initial_seed() + self.dist.rank)
        return samples[mine], None if drop is None else drop[mine], weight

    def dev_mrr(self) -> float:
        """The dev MRR of the model now (NaN: no dev split); in several processes rank 0's,
        measured there alone."""
        if self.dist.world > 1:
            return self.dist.broadcast(self._dev_mrr() if self.dist.is_main else math.nan)
        return self._dev_mrr()

    def _dev_mrr(self) -> float:
        if self.dev_cands is None or len(self.dev_idx) == 0:
            return float("nan")
        ids, truth = self.dev_cands
        ranks = rank(
            self.model,
            self.dev,
            ids,
            truth,
            self.device,
            idx=self.dev_idx,
            use_kg=self.train_cfg.kg_in_finetune,
        )
        self.model.train()
        return float(np.mean(1.0 / ranks))

    def fit(self, overwrite: bool = False) -> dict:
        """Run (or resume) every stage; returns the dev record of the selected checkpoint."""
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if overwrite:
                for name in (STATE, WEIGHTS, LEGACY_WEIGHTS):
                    (self.out / name).unlink(missing_ok=True)
        self.dist.barrier()  # every process reads the state rank 0 left
        saved = self.resume()
        first = self.stages.index(self.state.stage)  # stages run in order, never revisited
        done = self.global_step(self.state.stage, self.state.step if saved is not None else 0)
        self.dist.rank_seed(self.train_cfg.seed, self.state.stage, done)
        if self.dist.is_main:
            self.log = TrainingLog(self.out, self.tensorboard, done)
        else:  # rank 0 logs
            self.log = _Unlogged()
        try:
            for stage in self.stages[first:]:
                optimizer, scheduler = self._optimizer(stage)
                if saved is not None:  # resuming this stage (a finished one may have more steps)
                    optimizer.load_state_dict(saved["optim_state"])
                    scheduler.load_state_dict(saved["sched_state"])
                    saved = None
                else:
                    self.state.stage, self.state.step = stage, 0
                self._run_stage(stage, optimizer, scheduler)
        finally:
            self.log.close()
        saved_weights = (self.out / w for w in (WEIGHTS, LEGACY_WEIGHTS))
        if self.dist.is_main and not any(w.exists() for w in saved_weights):  # no dev split
            self._save_checkpoint({"mrr": None, "step": self.state.step})
        return {"best_dev_mrr": self.state.best_mrr}

    def throughput(self) -> dict:
        """Training steps' time and contexts per second, every stage (resumed runs included)."""
        seconds = self.state.seconds
        return {
            "train_step_seconds": round(seconds, 1),
            "train_samples": self.state.samples,
            "train_samples_per_s": round(self.state.samples / seconds, 2) if seconds else None,
        }

    def _save_checkpoint(self, dev: dict) -> None:
        if not self.dist.is_main:
            return
        save_checkpoint(
            self.out,
            self.model,
            self.model_cfg,
            self.train_cfg,
            self.data.vocab,
            self._data_record(),
            dev,
        )

    def _run_stage(self, stage: str, optimizer, scheduler) -> None:
        """Steps of ``stage`` from the current one to its total. On Ctrl-C the state is saved
        first, so the same command resumes at the very step it was interrupted."""
        total, _ = self.stage_steps(stage)
        if self.state.step >= total:
            return
        self.model.train()
        bar = tqdm(
            total=total,
            initial=self.state.step,
            desc=stage,
            unit=" steps",
            disable=not self.show,
            dynamic_ncols=True,
        )
        try:
            self._steps(stage, total, optimizer, scheduler, bar)
        except (KeyboardInterrupt, torch.distributed.DistError):
            # another process's end (Ctrl-C reaches every process) stops this one in a
            # collective: before the optimiser's step or after the step's count, never between
            self._save_state(optimizer, scheduler)
            raise
        finally:
            bar.close()
        self._save_state(optimizer, scheduler)

    def _steps(self, stage: str, total: int, optimizer, scheduler, bar: tqdm) -> None:
        cfg = self.train_cfg
        eval_every = cfg.eval_every or self.stage_steps(stage)[1]
        gen = torch.Generator()
        n_samples = len(self.samples)
        last_save = time.monotonic()
        while self.state.step < total and not self.out_of_time(stage):
            started = time.perf_counter()
            step = self.state.step
            epoch, within = divmod(step * cfg.batch_size, n_samples)
            order = self._order(stage, epoch)
            batch = order[within : within + cfg.batch_size]
            gen.manual_seed(zlib.crc32(f"{cfg.seed}:{stage}:{step}".encode()))  # same on resume
            loss = self._loss(stage, batch, gen)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            lr = scheduler.get_last_lr()[0]  # this step's
            optimizer.step()
            scheduler.step()
            self.state.step += 1
            self.state.samples += len(batch)
            value, seconds = loss.item(), time.perf_counter() - started
            if self.dist.world > 1:  # the global batch's loss; rank 0's time (the budget's)
                mean, seconds = self.dist.sum([value, seconds if self.dist.is_main else 0.0])
                value = mean / self.dist.world
            self.state.seconds += seconds
            bar.update(1)
            bar.set_postfix(loss=f"{value:.3f}", lr=f"{lr:.1e}")
            at = self.global_step(stage, self.state.step)
            self.log.step(stage, self.state.step, at, value, lr)
            at_end = self.state.step == total or self.out_of_time(stage)
            if stage == FINETUNE and (self.state.step % eval_every == 0 or at_end):
                mrr = self.dev_mrr()
                if not math.isnan(mrr) and mrr > self.state.best_mrr:
                    self.state.best_mrr = mrr
                    self._save_checkpoint({"mrr": round(mrr, 4), "step": self.state.step})
                if self.dist.is_main:
                    bar.write(f"{stage} step {self.state.step}: dev MRR {mrr:.4f}")
                self.log.dev(stage, self.state.step, at, mrr)
                self._save_state(optimizer, scheduler)
                last_save = time.monotonic()
            elif time.monotonic() - last_save > STATE_EVERY_S:
                self._save_state(optimizer, scheduler)
                last_save = time.monotonic()
