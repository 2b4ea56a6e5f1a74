"""A backbone's speed on this machine: ranking throughput, beam-5 generation latency, training
throughput.

Usage: ``python bench/model_speed.py [--backbone klvcg|NAME|all] [--ablation ROW]
[--preset paper|cpu] [--rank-samples 200] [--gen-samples 50] [--train-steps 5] [--device auto]``

On the demo corpus (built on first use, as the main job does) with a randomly initialised
model of the preset (speed does not depend on the weights):

- ranking: test samples per second, each with its 100 candidates scored by mean token
  cross-entropy (context encoded once, all candidates in one batched decoder pass);
- generation: per-comment latency of beam search (beam 5, g = 20) from a sample's context,
  recall excluded (it is cached per window; ``bench/recall_windows.py`` measures it), p50/p99;
- training: samples per second of the backbone's last stage (fine-tuning: forward with its own
  loss, backward, AdamW step) at the preset's batch size.

``--backbone all`` measures every registered backbone at its default row, one after another.
Prints a table, then one JSON line per backbone. Targets (issue 5): generation p50 <= 100 ms at
paper size on CPU (the iQIYI paper reports 87-122 ms per comment).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.device import resolve_device
from common.settings import RunSettings  # noqa: E402
from model.backbones import (  # noqa: E402
    BACKBONES,
    DEFAULT_BACKBONE,
    TrainingBatch,
    backbone_class,
    build_backbone,
)
from model.generator import banned_ids  # noqa: E402
from model.model_data import build_data, preset_lengths  # noqa: E402
from model.ranking import rank, spread  # noqa: E402
from model.word_ids import frequent_words  # noqa: E402
from retrieval.bootstrap import open_bootstrapped_store  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, choices=(*sorted(BACKBONES), "all"))
    p.add_argument("--ablation", help="the backbone's row (default: its default row)")
    p.add_argument("--preset", default="paper", choices=("paper", "cpu"))
    p.add_argument("--rank-samples", type=int, default=200)
    p.add_argument("--gen-samples", type=int, default=50)
    p.add_argument("--train-steps", type=int, default=5)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    names = sorted(BACKBONES) if args.backbone == "all" else [args.backbone]
    for name in names:
        measure(args, name, None if args.backbone == "all" else args.ablation)


def measure(args: argparse.Namespace, name: str, ablation: str | None) -> None:
    device = resolve_device(args.device)
    torch.manual_seed(0)
    settings = RunSettings(device=args.device, progress=False)  # the demo corpus
    lengths = preset_lengths(args.preset, name)
    data = build_data(settings, open_bootstrapped_store(settings), lengths)
    model_cfg, train_cfg = backbone_class(name).configure(
        args.preset, ablation, len(data.vocab) + 2, data.frame_dim
    )
    train = data.split("train")
    kept = frequent_words(data.vocab, train.targets, train_cfg.min_word_count)
    model_cfg = replace(model_cfg, vocab_size=kept + 2)
    model = build_backbone(model_cfg).to(device)
    params = sum(p.numel() for p in model.parameters())
    test = data.split("test")
    ids, truth = data.candidates("test", test)
    rank_rate = rank_rate_of(model, test, ids, truth, device, args.rank_samples)
    latencies = generation_latencies(model, test, device, args.gen_samples)
    b = train_cfg.batch_size
    train_rate = train_rate_of(model, train, train_cfg, device, args.train_steps)

    result = {
        "backbone": name,
        "preset": args.preset,
        "ablation": train_cfg.ablation,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "parameters": params,
        "rank_samples_per_s": round(rank_rate, 2),
        "candidates": int(ids.shape[1]),
        "generation_ms_p50": round(float(np.percentile(latencies, 50)), 1),
        "generation_ms_p99": round(float(np.percentile(latencies, 99)), 1),
        "train_samples_per_s": round(train_rate, 1),
        "batch_size": b,
    }
    print(
        f"{name} [{train_cfg.ablation}] {args.preset} ({params / 1e6:.1f} M parameters) on {device}"
    )
    print(f"  ranking     {rank_rate:8.1f} samples/s ({ids.shape[1]} candidates each)")
    print(
        f"  generation  p50 {result['generation_ms_p50']} ms, p99 {result['generation_ms_p99']} ms"
        f" (beam 5, {len(latencies)} samples)"
    )
    print(f"  training    {train_rate:8.1f} samples/s (batch {b})")
    print(json.dumps(result), flush=True)


def rank_rate_of(model, test, ids, truth, device, samples: int) -> float:
    """Test samples ranked per second (after a warm-up)."""
    model.eval()
    idx = spread(len(test), samples)
    rank(model, test, ids, truth, device, idx=idx[:8])  # warm-up
    started = time.perf_counter()
    rank(model, test, ids, truth, device, idx=idx)
    return len(idx) / (time.perf_counter() - started)


@torch.no_grad()
def generation_latencies(model, test, device, samples: int) -> list[float]:
    """Milliseconds of beam-5 search from a sample's context, for ``samples`` samples (two
    more run first as a warm-up)."""
    space = test.space(model.cfg)
    banned = banned_ids(space)
    latencies = []
    for i in spread(len(test), samples + 2):
        started = time.perf_counter()
        enc = model.encode(test.batch([i], device, space))
        model.generate(enc, beam=5, banned=banned)
        latencies.append(1000 * (time.perf_counter() - started))
    return latencies[2:]  # warm-up


def train_rate_of(model, train, train_cfg, device, steps: int) -> float:
    """Samples per second of the backbone's last stage at the preset's batch size (after one
    warm-up step), its loss built as the trainer builds it."""
    model.train()
    space = train.space(model.cfg)
    stage = model.stages(train_cfg)[-1]
    b = train_cfg.batch_size
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr)
    rng = np.random.default_rng(0)
    times = []
    for step in range(steps + 1):
        samples = np.sort(rng.choice(len(train), b, replace=False))
        started = time.perf_counter()  # as the trainer: each context encoded once
        memory = model.encode(train.batch(samples, device, space), use_kg=stage.use_kg)
        gen = torch.Generator().manual_seed(step)
        truths = TrainingBatch.of(train, samples, space, train_cfg, gen)
        memory = memory.select(torch.as_tensor(truths.owner, device=device))
        loss = model.loss(memory, truths, stage.name)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return b / float(np.mean(times[1:]))


if __name__ == "__main__":
    main()
