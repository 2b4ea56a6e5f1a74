"""Live mode from a viewer's side: a corpus video replayed in real time (or faster) against
the API's live endpoint, with the latency of every bot comment.

    python -m model.live --checkpoint DIR --video ID [--speed 1] [--from SECONDS]
        [--seconds N] [--url ws://HOST:PORT] [--api-key KEY] [--policy JSON]
        [--max-per-minute N] [--min-gap-s S] [--min-score X] [--quiet-after-seek-s S]
        [--repeat] [--beam N] [--json]

Without ``--url`` it starts ``python -m api`` on a free loopback port with the checkpoint over
the corpus it was trained on (:mod:`model.api_process`; ``--corpus``/``--format``, the
embedder and the store options say otherwise), waits until the model is loaded, replays, and
stops it. With ``--url`` it replays against a server already running, whose own model
answers (``--checkpoint`` then only names the corpus). The video's viewer comments are read
here, from that corpus, and sent over a ``/live`` WebSocket session with a position tick each
video second, each at (its second - ``--from``) / ``--speed`` wall seconds
(:mod:`model.live_replay`). The policy knobs are the server's (in video time); the flags and
``--policy`` change them for this session.

The report: every bot comment (its second, text, score, the facts it drew on, what triggered
it, its latency as the client measured it and as the server did), p50/p99/max latency over
all of them and by trigger, bot comments per minute of video, how many state a fact, and the
server's counts (received, generated, emitted, dropped by reason). ``--json``: the last line
is one JSON object with all of it. A session the server refuses (an unknown video, a bad
policy, a wrong key) is one ``error:`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import tempfile
import urllib.parse
from dataclasses import replace
from pathlib import Path

from common.cli import print_json, run
from common.errors import UserError
from common.settings import RunSettings
from kg.cli import add_store_args
from model.api_process import ApiProcess, ServerOptions
from model.data.readers import FORMATS
from model.data.schema import Video
from model.live_replay import SessionFailed, replay, replay_cues, stated_fact, summarise

log = logging.getLogger(__name__)

KNOBS = {  # flag -> the policy knob it sets (the server checks the values)
    "max_per_minute": "max_per_minute",
    "min_gap_s": "min_gap_s",
    "min_score": "min_score",
    "quiet_after_seek_s": "quiet_after_seek_s",
    "beam": "beam",
}
MAX_SPEED = 64.0
NORMAL_CLOSE = 1000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m model.live", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", help="checkpoint directory (required unless --url)")
    p.add_argument("--video", required=True, help="id of a video of the corpus")
    p.add_argument("--speed", type=float, default=1.0, help="playback speed: 1, 4, 16 ... (1)")
    p.add_argument("--from", dest="start", type=float, default=0.0, help="start at this second (0)")
    p.add_argument("--seconds", type=float, help="video seconds to replay (default: to the end)")
    p.add_argument("--url", help="a running API, ws://HOST:PORT (default: start python -m api)")
    p.add_argument("--api-key", help="the server's API_KEY (default: $API_KEY)")
    p.add_argument("--policy", help="policy knobs as a JSON object, e.g. '{\"min_gap_s\": 0}'")
    p.add_argument("--max-per-minute", type=int, help="policy: most bot comments a video minute")
    p.add_argument("--min-gap-s", type=float, help="policy: least video seconds between them")
    p.add_argument("--min-score", type=float, help="policy: lowest beam score emitted")
    p.add_argument("--quiet-after-seek-s", type=float, help="policy: silence after a seek")
    p.add_argument("--repeat", action="store_true", help="policy: allow repeated comments")
    p.add_argument("--beam", type=int, help="policy: beam size")
    p.add_argument("--corpus", help="dataset directory (default: the checkpoint's corpus)")
    p.add_argument(
        "--format", choices=FORMATS, help="format of --corpus (default: the checkpoint's)"
    )
    p.add_argument("--embedder", help="comment index embedder (default: the checkpoint's)")
    p.add_argument("--device", help="device the server generates on (default: its own, cpu)")
    add_store_args(p)
    p.set_defaults(kg=None, store=None)  # unset: the server's environment decides
    p.add_argument("--server-log", type=Path, help="keep the started server's output here")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    if args.checkpoint is None and args.url is None:
        raise UserError("--checkpoint DIR is required to start a server (or give --url)")
    if not 0 < args.speed <= MAX_SPEED:
        raise UserError(f"--speed {args.speed:g}: must be above 0 and at most {MAX_SPEED:g}")
    if args.start < 0:
        raise UserError(f"--from {args.start:g}: must be 0 or more")
    if args.seconds is not None and args.seconds <= 0:
        raise UserError(f"--seconds {args.seconds:g}: must be above 0")


def policy_of(args: argparse.Namespace) -> dict:
    """``--policy``'s knobs with the knob flags on top."""
    policy: dict = {}
    if args.policy is not None:
        try:
            policy = json.loads(args.policy)
        except json.JSONDecodeError as e:
            raise UserError(f"--policy: not JSON ({e})") from None
        if not isinstance(policy, dict):
            raise UserError("--policy: must be a JSON object of knobs")
    for flag, knob in KNOBS.items():
        if getattr(args, flag) is not None:
            policy[knob] = getattr(args, flag)
    if args.repeat:
        policy["no_repeat"] = False
    return policy


def ws_url(url: str) -> str:
    """``url`` as ws:// or wss:// (an http(s) URL of the API is accepted)."""
    parts = urllib.parse.urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.hostname:
        raise UserError(f"--url {url}: must be ws://HOST:PORT (or http://HOST:PORT)")
    return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def server_settings(args: argparse.Namespace) -> tuple[RunSettings, ServerOptions]:
    """The corpus settings (the checkpoint's corpus and embedder unless given) and the
    started server's options."""
    settings = RunSettings(
        kg=args.kg or "filmkg",
        store=args.store or "embedded",
        db=args.db,
        neo4j_uri=args.neo4j_uri,
        neo4j_user=args.neo4j_user,
        neo4j_password=args.neo4j_password,
        neo4j_database=args.neo4j_database,
        corpus=args.corpus,
        format=args.format,
        progress=False,
    )
    embedder = args.embedder
    if args.checkpoint is not None:
        from model.checkpoint import load_checkpoint, with_trained_corpus

        ckpt = load_checkpoint(args.checkpoint)  # a bad checkpoint fails before the server
        settings = with_trained_corpus(settings, ckpt)
        embedder = embedder or (ckpt.data.get("encoding") or {}).get("embedder")
    settings = replace(settings, format=settings.format or "demo")
    if embedder:
        settings = replace(settings, embedder=embedder)
    options = ServerOptions(
        checkpoint=args.checkpoint,
        corpus=settings.corpus,
        format=settings.format,
        embedder=embedder,
        device=args.device,
        kg=args.kg,
        store=args.store,
        db=args.db,
        neo4j_uri=args.neo4j_uri,
        neo4j_user=args.neo4j_user,
        neo4j_password=args.neo4j_password,
        neo4j_database=args.neo4j_database,
    )
    return settings, options


def corpus_video(settings: RunSettings, video_id: str) -> Video:
    """The video of the corpus (the demo corpus generated first if it is the one and is
    missing)."""
    from retrieval.bootstrap import ensure_demo_corpus
    from retrieval.context import load_corpus

    ensure_demo_corpus(settings)
    corpus = load_corpus(settings)
    video = corpus.videos.get(video_id)
    if video is None:
        some = ", ".join(sorted(corpus.videos)[:5])
        raise UserError(
            f"--video {video_id}: not in the corpus {corpus.path} (videos: {some}, ...)"
        )
    return video


def run_replay(url: str, video: Video, args: argparse.Namespace, policy: dict) -> dict:
    cues = replay_cues(video, args.start, args.seconds)
    span = video.duration_s - args.start
    span = span if args.seconds is None else min(args.seconds, span)
    key = args.api_key if args.api_key is not None else os.environ.get("API_KEY")
    log.info(
        "replaying %s from %g s for %g s at %gx (%d viewer comments)",
        video.id,
        args.start,
        span,
        args.speed,
        sum(c.kind == "comment" for c in cues),
    )
    try:
        result = asyncio.run(replay(url, video.id, cues, args.speed, policy, key, args.start, span))
    except SessionFailed as e:
        raise UserError(f"{url}/live: {e}") from None
    except OSError as e:
        raise UserError(f"{url}/live: cannot connect ({e})") from None
    return summarise(result) | {"title": video.title, "url": url}


def format_report(report: dict) -> str:
    lines = [
        f"{report['video']} {report['title']}: {report['seconds']:g} s from {report['from_s']:g} s"
        f" at {report['speed']:g}x in {report['wall_s']:.1f} s (session {report['session']})",
        f"policy {json.dumps(report['policy'], ensure_ascii=False, sort_keys=True)}",
        f"sent {report['sent']['comment']} viewer comments, {report['sent']['position']} "
        "position ticks",
    ]
    for c in report["comments"]:
        client = "-" if c["client_ms"] is None else f"{c['client_ms']:.1f}"
        server = "-" if c["server_ms"] is None else f"{c['server_ms']:.1f}"
        fact = stated_fact(c["text"], c["facts"])
        said = f"  [{fact['head']} | {fact['relation']} | {fact['tail']}]" if fact else ""
        score = "-" if c["score"] is None else f"{c['score']:.2f}"
        lines.append(
            f"  {c['t']:>7.1f}  {c['text']}   ({score}; {client} ms, server {server} ms, "
            f"{c['trigger']}){said}"
        )
    per_min = report["comments_per_minute"]
    lines.append(
        f"bot comments: {report['bot_comments']} ({per_min if per_min is not None else '-'} per "
        f"minute of video); {report['states_fact']} state a fact, {report['drew_on_fact']} drew "
        "on one"
    )
    for kind, lat in [("all", report["latency"]), *report["latency_by_trigger"].items()]:
        client, server = lat["client"], lat["server"]
        if client["n"] or server["n"]:
            lines.append(
                f"latency ({kind}{' triggers' if kind == 'all' else '-triggered'}): client p50 "
                f"{client['p50_ms']} ms, p99 {client['p99_ms']} ms, max {client['max_ms']} ms; "
                f"server p50 {server['p50_ms']} ms, p99 {server['p99_ms']} ms ({server['n']})"
            )
    lines.append(
        f"server: received {report['received']}, generated {report['generated']}, emitted "
        f"{report['emitted']}, dropped {json.dumps(report['dropped'], sort_keys=True)}"
    )
    for e in report["errors"]:
        lines.append(f"server error {e.get('code')}: {e.get('detail')}")
    if report["close_code"] != NORMAL_CLOSE:
        lines.append(
            f"the session ended with close code {report['close_code']}: "
            f"{report['close_reason'] or '(no reason)'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_args(args)
    policy = policy_of(args)
    url = ws_url(args.url) if args.url is not None else None
    settings, options = server_settings(args)
    video = corpus_video(settings, args.video)  # a bad --video fails before the server
    if args.start >= video.duration_s:
        raise UserError(f"--from {args.start:g}: {video.id} ends at {video.duration_s:g} s")
    if url is not None:
        report = run_replay(url, video, args, policy)
    else:
        with tempfile.TemporaryDirectory(prefix="live-") as tmp:
            log_path = args.server_log or Path(tmp) / "api.log"
            log.info("starting python -m api (log: %s)", log_path)
            with ApiProcess(options, log_path) as server:
                report = run_replay(server.ws_url, video, args, policy)
    if args.json:
        print_json(report)
    else:
        print(format_report(report))
    return 0


if __name__ == "__main__":
    run(main)
