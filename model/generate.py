"""Comments for any second of any video, with the facts the model used (KLVCG §V-A: beam 5).

The command line of :mod:`model.generator`: it opens the checkpoint over the corpus it was
trained on (unless ``--corpus``/``--format`` say otherwise) and prints the beam's comments and
the facts used, or one JSON object.

    python -m model.generate --checkpoint DIR (--video ID | --video-file FILE.mp4
        [--comments FILE] [--visual-backbone NAME [--visual-weights FILE] | --no-frames])
        (--t SECONDS | --every N) [--out FILE.ass|FILE.xml] [--beam 5] [--json]

``--video`` is a video of that corpus. ``--video-file`` is a video the corpus lacks
(:mod:`model.new_video`): its frames are extracted with the backbone the corpus records (or
``--visual-backbone``), the viewers' comments of ``--comments`` (any format
:mod:`model.data.comment_files` reads) are its window comments, linked to the KG like a corpus
video's. ``--every N`` comments at 0, N, 2N, ... before the video's end; ``--out`` writes the
best comment of each of those seconds, at that second, as an ASS overlay or Bilibili XML
danmaku, which players show over the video.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import numpy as np

from common.cli import print_json, run
from common.errors import UserError
from common.settings import RunSettings
from model.checkpoint import Checkpoint, add_checkpoint_args, load_checkpoint, with_trained_corpus
from model.data.frame_encoders import VISUAL_BACKBONES
from model.data.schema import Comment, Video
from model.generator import Generation, Generator
from model.new_video import (
    VisualSettings,
    context_with_video,
    extract_frames,
    trained_visual_settings,
    video_from_file,
)
from retrieval.bootstrap import open_bootstrapped_store
from retrieval.context import build_context

log = logging.getLogger(__name__)

OUT_FORMATS = {".ass": "ASS subtitles", ".xml": "Bilibili XML danmaku"}
FILE_ONLY = ("comments", "visual_backbone", "visual_weights", "no_frames")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m model.generate", description=__doc__.split("\n")[0])
    add_checkpoint_args(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--video", help="id of a video of the corpus")
    which.add_argument("--video-file", type=Path, help="a video file the corpus lacks (mp4, ...)")
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--t", type=float, help="second of the video")
    when.add_argument("--every", type=int, metavar="N", help="at 0, N, 2N, ... seconds")
    p.add_argument("--comments", type=Path, help="viewers' comments of --video-file (danmaku file)")
    p.add_argument(
        "--visual-backbone",
        choices=sorted(VISUAL_BACKBONES),
        help="frame encoder of --video-file (default: what the corpus records, else "
        "efficientnet-lite0)",
    )
    p.add_argument("--visual-weights", type=Path, help="its weights file (torchvision format)")
    p.add_argument("--no-frames", action="store_true", help="generate with every frame masked")
    p.add_argument("--out", type=Path, help="write the best comments: FILE.ass or FILE.xml")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """What the options ask is possible, before any work."""
    if args.video is not None:
        given = [f"--{name.replace('_', '-')}" for name in FILE_ONLY if getattr(args, name)]
        if given:
            raise UserError(f"{', '.join(given)}: only with --video-file (not --video)")
    if args.no_frames and (args.visual_backbone or args.visual_weights):
        raise UserError("--no-frames extracts no frames: drop --visual-backbone/--visual-weights")
    if args.every is not None and args.every < 1:
        raise UserError(f"--every {args.every}: must be a whole number of seconds, at least 1")
    if args.out is not None and args.out.suffix.lower() not in OUT_FORMATS:
        raise UserError(
            f"--out {args.out}: unknown extension {args.out.suffix or '(none)'!r}; "
            f"use {' or '.join(OUT_FORMATS)}"
        )


def read_comments(path: Path) -> list[Comment]:
    """The viewers' comments of a danmaku or chat file, in any supported format."""
    from model.data.comment_files import read_comment_file

    found = read_comment_file(path)
    for skip in found.skipped:
        log.warning("%s: %d skipped: %s", skip.file, skip.count, skip.reason)
    log.info("%s: %d comments (%s)", path, len(found.comments), found.format)
    return found.comments


def visual_settings(args: argparse.Namespace, settings: RunSettings) -> VisualSettings:
    """``--visual-backbone``/``--visual-weights``, else what the trained corpus records."""
    recorded = trained_visual_settings(settings.corpus)
    if args.visual_backbone is None:
        weights = args.visual_weights or recorded.weights
        source = recorded.source if args.visual_weights is None else "--visual-weights"
        return VisualSettings(recorded.backbone, weights, source)
    return VisualSettings(args.visual_backbone, args.visual_weights, "--visual-backbone")


def every_seconds(duration_s: float, n: int) -> list[int]:
    """0, n, 2n, ... before the video's end."""
    return list(range(0, math.ceil(duration_s), n))


def format_generation(result: Generation) -> str:
    """The comments with their scores (and copied shares), then the facts used."""
    lines = [f"video {result.video} t={result.t}"]
    for c in result.comments:
        copied = f", {c.copy.copied:.0%} copied" if c.copy is not None else ""
        lines.append(f"  {c.text}   ({c.score:.3f}{copied})")
    if result.facts:
        by = "copy mass in the best comment" if result.facts_by == "copy" else "attention"
        lines.append(f"facts, by the {by}:")
        for f in result.facts:
            lines.append(f"  {f.weight:.3f}  {f.head} | {f.relation} | {f.tail}")
    return "\n".join(lines)


def best_comments(results: list[Generation]) -> list[Comment]:
    """The best comment of each generated second, at that second."""
    return [Comment(float(r.t), r.comments[0].text) for r in results if r.comments]


def write_comments(path: Path, comments: list[Comment]) -> None:
    """``comments`` as an ASS overlay or Bilibili XML danmaku, by ``path``'s extension."""
    from model.data.comment_files import write_ass, write_bilibili_xml

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".ass":
        write_ass(comments, path)
    else:
        write_bilibili_xml(comments, path)
    log.info("wrote %d comments to %s (%s)", len(comments), path, OUT_FORMATS[path.suffix.lower()])


def new_video(
    args: argparse.Namespace, ckpt: Checkpoint, settings: RunSettings
) -> tuple[Video, np.ndarray | None]:
    """The ``--video-file``'s video and frames (None with ``--no-frames``)."""
    comments = read_comments(args.comments) if args.comments is not None else None
    video = video_from_file(args.video_file, comments)
    if args.no_frames:
        return video, None
    progress = None if settings.progress else False
    visual = visual_settings(args, settings)
    return video, extract_frames(args.video_file, ckpt, visual, settings.device, progress)


def generate(
    args: argparse.Namespace, gen: Generator, video_id: str, progress: bool
) -> list[Generation]:
    """The generations of ``--t`` or ``--every`` (a progress bar for several)."""
    from tqdm import tqdm

    if args.t is not None:
        return [gen.generate(video_id, int(args.t), beam=args.beam)]
    seconds = every_seconds(gen.video(video_id).duration_s, args.every)
    bar = tqdm(seconds, unit="window", desc="comments", disable=None if progress else True)
    return [gen.generate(video_id, t, beam=args.beam) for t in bar]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_args(args)
    ckpt = load_checkpoint(args.checkpoint)  # fails before anything is built
    settings = with_trained_corpus(RunSettings.from_args(args), ckpt)
    video = frames = None
    if args.video_file is not None:
        video, frames = new_video(args, ckpt, settings)
    ctx = build_context(settings, open_bootstrapped_store(settings))
    try:
        if video is not None:
            ctx = context_with_video(ctx, video, frames, ckpt)
        gen = Generator.load(ckpt, ctx, settings.device)
        video_id = args.video if video is None else video.id
        results = generate(args, gen, video_id, settings.progress)
        duration = gen.video(video_id).duration_s
    finally:
        ctx.store.close()
    if args.out is not None:
        write_comments(args.out, best_comments(results))
    if args.json:
        single = args.t is not None
        items = [r.as_dict() for r in results]
        print_json(
            items[0] if single else {"video": video_id, "duration_s": duration, "items": items}
        )
    else:
        print("\n\n".join(format_generation(r) for r in results))
    return 0


if __name__ == "__main__":
    run(main)
