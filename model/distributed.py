"""Data-parallel training over several processes: ``torchrun --nproc_per_node N -m model.train``.

Design: docs/architecture.md, section "Model" (training on several GPUs). torchrun starts N
copies of ``model.train`` and tells each its place in ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; :func:`start` reads them (none set, or one process: :data:`SINGLE`, the
one-process run, nothing started) and joins the process group: NCCL when the device is CUDA
(each process on ``cuda:LOCAL_RANK``), gloo on the CPU. What the processes agree on goes
through a gloo group in every case (``control``): barriers and rank 0's decisions are small
CPU messages, and waiting on them (rank 0 building the data caches or evaluating on dev) must
not run into NCCL's watchdog.

The batch stays the global batch (``--batch-size``, so a run's results do not depend on how
many processes share it): every process draws the same seeded order, and each trains on its
shard of every global batch (:func:`shard`: positions ``rank, rank + N, ...``, as PyTorch's
``DistributedSampler`` deals them; no padding, so no sample counts twice).

Gradients are averaged by ``DistributedDataParallel``, which syncs only what runs inside its
``forward``; the trainer calls the backbone's own methods (``encode``, ``Memory.select``,
``loss``), so the whole step runs inside :class:`TrainingStep`'s forward, a closure over the
backbone (:meth:`Distributed.data_parallel`): its gradients are all-reduced while the backward
pass runs, parameters a stage leaves unused included (``find_unused_parameters``). DDP takes the
mean of the processes' gradients; each process's loss is the mean over its shard's target
words, so it is weighted by its share of the global batch's words (:func:`shard_weight`):
the mean of the weighted gradients is the gradient of the global batch's word mean, which is
what one process computes. That is exact for the losses that are a mean over target words
(every backbone's generation loss) and a word-weighted mean of the shards' means for the
others (masked-word prediction, the copy gate's two sides, contrastive terms).
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from common.device import resolve_device
from common.errors import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")
#: How long a process waits for the others at a barrier or for rank 0's word: rank 0 builds a
#: large corpus's caches while the others wait. A process that fails ends the others sooner
#: (torchrun stops them all).
WAIT = timedelta(hours=12)

LossOf = Callable[[nn.Module], torch.Tensor]  # a step's loss, computed from the backbone


class TrainingStep(nn.Module):
    """A training step as a ``forward``: ``step(loss_of)`` is ``loss_of(backbone)``, so that
    ``DistributedDataParallel`` around it syncs the gradients of whatever the backbone's own
    methods computed inside."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, loss_of: LossOf) -> torch.Tensor:
        return loss_of(self.backbone)


def shard(batch: np.ndarray, rank: int, world: int) -> np.ndarray:
    """The positions in ``batch`` (a global batch) that process ``rank`` of ``world`` trains
    on: every ``world``-th from ``rank``. The shards are disjoint, their union is the batch,
    and their sizes differ by one at most."""
    return np.arange(rank, len(batch), world)


def shard_weight(words: np.ndarray, mine: np.ndarray, world: int) -> float:
    """What a shard's mean loss is multiplied by so that DDP's mean over ``world`` processes is
    the global batch's mean over its words: ``world`` times the shard's share of the words
    (``words``: each sample's target words in the global batch; ``mine``: the shard's
    positions)."""
    total = float(words.sum())
    return world * float(words[mine].sum()) / total if total > 0 else 0.0


@dataclass(frozen=True)
class Distributed:
    """This process's place among the training processes, and what they do together; one
    process (``world`` 1) does everything alone and every method is a no-op."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    control: Any = None  # the gloo group the processes agree through (None: the default one)

    @property
    def is_main(self) -> bool:
        """Rank 0: it builds the data first, evaluates, logs, and writes every file."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier(group=self.control)

    def in_order(self, build: Callable[[], T]) -> T:
        """``build()`` on every process, rank 0 first while the others wait, then the first
        process of each other machine (where ``$DANMAKU_DATA`` is not shared), then the rest:
        whatever ``build`` caches on disk is written by one process and read by the others,
        never written by two at once."""
        if self.world == 1:
            return build()
        result = None
        for turn in (self.is_main, not self.is_main and self.local_rank == 0):
            if turn:
                result = build()
            self.barrier()
        return build() if result is None else result

    def broadcast(self, value: float) -> float:
        """Rank 0's ``value`` on every process."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        dist.broadcast(t, src=0, group=self.control)
        return float(t.item())

    def sum(self, values: list[float]) -> list[float]:
        """Each of ``values`` summed over the processes."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t, group=self.control)
        return t.tolist()

    def data_parallel(self, backbone: nn.Module) -> Callable[[LossOf], torch.Tensor]:
        """What runs a step's loss: ``loss_of(backbone)`` itself in one process; in several,
        through ``DistributedDataParallel`` (module docstring), which first gives every
        process rank 0's weights."""
        if self.world == 1:
            return lambda loss_of: loss_of(backbone)
        return nn.parallel.DistributedDataParallel(
            TrainingStep(backbone), find_unused_parameters=True
        )

    def rank_seed(self, *parts: object) -> None:
        """Seed torch's generators for this process's own draws (dropout) from ``parts``:
        rank 0 keeps the one-process stream (what ``state.pt`` saves), the others get their
        own."""
        if self.rank:
            key = ":".join(str(p) for p in (*parts, "rank", self.rank))
            torch.manual_seed(zlib.crc32(key.encode()))

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


SINGLE = Distributed()


def start(device_name: str) -> tuple[Distributed, torch.device]:
    """This process's :class:`Distributed` (torchrun's variables; without them
    :data:`SINGLE`) and its device (``--device``; under torchrun a CUDA device is
    ``cuda:LOCAL_RANK``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world <= 1:
        return SINGLE, device
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
        control = dist.new_group(backend="gloo", timeout=WAIT)
    elif device.type == "cpu":
        dist.init_process_group("gloo", timeout=WAIT)
        control = None
    else:
        raise UserError(f"--device {device_name}: several processes train on cpu or cuda only")
    log.info("process %d of %d on %s", rank, world, device)
    return Distributed(rank, world, local, control), device
