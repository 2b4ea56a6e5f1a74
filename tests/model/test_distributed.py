"""Training in several processes (``torchrun -m model.train``, :mod:`model.distributed`): the
shards of a global batch, the one-process no-ops, rank 0 building first, and end to end on a
small demo corpus with 2 CPU processes (gloo): the same losses as one process with the same
global batch, and an interrupted run that resumes to the uninterrupted one's end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from model.checkpoint import STATE
from model.distributed import SINGLE, Distributed, shard, shard_weight
from model.train_log import METRICS_CSV, read_log
from tests.conftest import cli_env
from tests.model.conftest import METRICS, train_quietly


@pytest.mark.parametrize("world", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [1, 2, 7, 8, 64])
def test_each_process_takes_its_shard_of_the_global_batch(world, size):
    batch = np.random.default_rng(size).permutation(1000)[:size]
    shards = [shard(batch, rank, world) for rank in range(world)]
    taken = np.concatenate(shards)
    assert sorted(taken.tolist()) == list(range(size))  # the whole batch, nothing twice
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert [batch[s].tolist() for s in shards] == [batch[r::world].tolist() for r in range(world)]
    rng = np.random.default_rng(world)
    words = rng.integers(1, 20, size)  # each sample's target words
    sums = rng.random(size) * words  # and its summed word losses
    weights = [shard_weight(words, s, world) for s in shards]
    assert sum(weights) == pytest.approx(world)
    # each process's loss is its shard's word mean (an empty shard's weight is 0); DDP's mean
    # of the weighted ones is the global batch's word mean
    means = [sums[s].sum() / words[s].sum() if len(s) else 0.0 for s in shards]
    ddp = sum(w * m for w, m in zip(weights, means, strict=True)) / world
    assert ddp == pytest.approx(sums.sum() / words.sum())


def test_one_process_does_everything_alone():
    calls = []
    assert SINGLE.in_order(lambda: calls.append(1) or "built") == "built" and calls == [1]
    assert SINGLE.broadcast(0.25) == 0.25 and SINGLE.sum([1.5, 2.0]) == [1.5, 2.0]
    model = torch.nn.Linear(2, 1)
    assert SINGLE.data_parallel(model)(lambda m: m) is model  # the backbone itself, no wrapper
    assert SINGLE.is_main and shard(np.arange(5), 0, 1).tolist() == [0, 1, 2, 3, 4]
    state = torch.get_rng_state()
    SINGLE.rank_seed(0, "finetune", 3)  # rank 0 keeps its stream
    assert torch.equal(torch.get_rng_state(), state)


def _build_in_order(rank: int, store: str, log: str) -> None:
    """Rank ``rank`` of 3 over two machines: ranks 0 (local 0) and 1 (local 0) and 2 (local 1)."""
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=3)
    try:

        def build():
            with open(log, "a") as f:
                f.write(f"start {rank} {time.monotonic()}\n")
            time.sleep(0.3)
            with open(log, "a") as f:
                f.write(f"end {rank} {time.monotonic()}\n")
            return rank

        assert Distributed(rank, 3, local_rank=(0, 0, 1)[rank]).in_order(build) == rank
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # three processes that each import torch
def test_rank_0_builds_first_while_the_others_wait(tmp_path):
    log = tmp_path / "log"
    mp.spawn(_build_in_order, args=(str(tmp_path / "store"), str(log)), nprocs=3)
    events = [line.split() for line in log.read_text().splitlines()]
    at = {(kind, int(rank)): float(t) for kind, rank, t in events}
    assert len(at) == 6  # each built once
    # rank 0 alone, then the other machine's first process, then the rest
    assert at[("end", 0)] < at[("start", 1)] < at[("end", 1)] < at[("start", 2)]


# ----------------------------------------------------------------------- end to end


def train_args(env, out, *extra) -> list[str]:
    # the basic row: fine-tuning only, no random draws in its loss; the cpu preset has no
    # dropout. A batch of 7 makes shards of 4 and 3 samples with different word counts.
    args = ["--kg", "filmkg", *env["common"], "--out", str(out), "--ablation", "basic"]
    args += ["--batch-size", "7", "--max-steps", "4", "--eval-every", "2", "--dev-samples", "8"]
    return [*args, "--eval-samples", "24", "--generation-samples", "0", "--json", *extra]


def torchrun(module: str, argv: list[str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--standalone", "-m", module, *argv]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=cli_env(OMP_NUM_THREADS="1"),
        cwd=os.getcwd(),
        timeout=900,
    )


def losses(out) -> list[tuple]:
    return [
        (r["stage"], r["step"], r["loss"])
        for r in read_log(out / METRICS_CSV)
        if r["loss"] is not None
    ]


def flat(state: dict) -> torch.Tensor:
    return torch.cat([v.flatten().double() for v in state["model_state"].values()])


@pytest.mark.slow
def test_two_processes_train_like_one_and_an_interrupted_run_resumes(env):
    one, two = env["root"] / "one", env["root"] / "two"
    single = json.loads(train_quietly(train_args(env, one)).strip().splitlines()[-1])
    ran = torchrun("model.train", train_args(env, two))
    assert ran.returncode == 0, ran.stderr
    printed = ran.stdout.strip().splitlines()
    assert sum(line.startswith("{") for line in printed) == 1  # rank 0 alone reports
    double = json.loads(printed[-1])

    # The same losses at every step: the loss has no random draws and the shards' means are
    # weighted by their words, so the two runs differ by float32 rounding only (sums taken in
    # another order, per-shard padding), far below the 6 significant digits metrics.csv
    # keeps; 2e-5 of the loss allows a last-digit difference, and is an order of magnitude
    # below what equal shard weights (shards of 4 and 3 samples) already give at step 1.
    a, b = losses(one), losses(two)
    assert [r[:2] for r in a] == [r[:2] for r in b] == [("finetune", s) for s in (1, 2, 3, 4)]
    for (_, step, x), (_, _, y) in zip(a, b, strict=True):
        assert y == pytest.approx(x, rel=2e-5), f"step {step}"
    for key in METRICS:
        assert double[key] == pytest.approx(single[key], abs=1e-3), key
    assert double["dev_mrr"] == pytest.approx(single["dev_mrr"], abs=1e-3)
    assert double["train_samples"] == single["train_samples"] == 4 * 7
    assert double["world_size"] == 2 and single["world_size"] == 1

    resumed = env["root"] / "resumed"
    stopped = torchrun("tests.model.interrupted_train", train_args(env, resumed))
    assert stopped.returncode != 0
    assert stopped.stderr.count("interrupted: run the same command again to resume") == 2
    mid = torch.load(resumed / STATE, weights_only=True)
    assert (mid["stage"], mid["step"]) == ("finetune", 3)
    again = torchrun("model.train", train_args(env, resumed))
    assert again.returncode == 0, again.stderr
    end = torch.load(resumed / STATE, weights_only=True)
    straight = torch.load(two / STATE, weights_only=True)
    assert (end["stage"], end["step"]) == ("finetune", 4)
    steps = losses(resumed)  # each step once, the same values
    assert [r[:2] for r in steps] == [r[:2] for r in b]
    assert [r[2] for r in steps] == pytest.approx([r[2] for r in b], rel=2e-5)
    moved = (flat(straight) - flat(mid)).norm()  # what the last step moved the weights
    assert (flat(straight) - flat(end)).norm() < 0.05 * moved


@pytest.mark.slow
def test_a_time_budget_stops_every_process_at_the_same_step(env):
    """Rank 0's step time is every process's: with a budget spent after the first step, both
    stop there (a process that went on would wait for the other forever)."""
    out = env["root"] / "budget"
    ran = torchrun("model.train", train_args(env, out, "--budget-minutes", "0.0001"))
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout.strip().splitlines()[-1])
    assert report["train_samples"] == 7 and report["dev_mrr"] is not None
    assert [r[1] for r in losses(out)] == [1]
