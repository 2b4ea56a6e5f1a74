"""``python -m model.data.ingest``: the user's own videos and the comment files the usual
downloaders save -> a corpus in the MovieLC layout that every command reads
(``--corpus OUT --format movielc``).

    python -m model.data.ingest --videos DIR [--comments DIR] --out DIR
        [--split 0.8,0.1,0.1] [--seed S] [--strict] [--json]
        [--visual-backbone NAME] [--visual-weights FILE] [--device auto]

Pairing, by name (files are looked for in the folders and below them):

* a video is a file with a video extension (:data:`VIDEO_EXTENSIONS`); its id is its stem, and
  two videos with one stem are one skip (the second);
* a comment file belongs to the video whose stem its name starts with, followed by the end
  of the name or by one of ``. _ - `` and a space (``film.xml``, ``film.live_chat.json``,
  ``film_danmaku.xml``), the longest such stem winning; or to the video named by a folder it
  lies in (``film/1.so``, ``film/2.so``: Bilibili's protobuf segments);
* its format is detected from its content (:mod:`model.data.comment_files`); a ``.srt``, or an
  ``.ass`` that is not a danmaku overlay (most of its lines do not ``\\move``), is the video's
  subtitles instead.

Each video's duration comes from its container (else from its frames), its per-second frame
features from :mod:`model.data.features` (cached under ``$DANMAKU_DATA/features``, so a second run
decodes nothing), and the split is seeded and per video: videos are ordered by a hash of the
seed and their id and cut by the ratios, so a video never has samples in two splits and
adding a video moves few others.

Nothing is dropped silently. An undecodable file, a comment before 0 or past the video's end,
a record a reader could not use, a video without comments, a comment file without a video and
any other file the folders hold are skips, each with its file and reason: printed, in
``--json`` and in ``OUT/ingest.json``. They are not fatal unless ``--strict``, which fails
before anything is written. The corpus is built in a hidden folder beside ``OUT`` and renamed
into place at the end, so an interrupted run leaves ``OUT`` as it was (a corpus a previous run
wrote is replaced; any other non-empty ``OUT`` is refused).

Layout written (docs/data-contracts.md, sections "MovieLC" and "Comment files"): ``meta.json``,
``comment/``, ``division/``, ``processed_data/vid_duration.json``,
``processed_data/movie101.pkl`` (the frame features, whatever backbone made them),
``extras/`` (``comment_meta/``, ``subtitles.json``, ``transcripts.json``, and
``features.json``: the backbone, its weights and the dimension, which ``model.generate
--video-file`` reads to extract the same features from a new video) and ``ingest.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.atomic import write_json
from common.cli import print_json, run
from model.data.comment_files import (
    CommentFile,
    Skip,
    read_comment_files,
    read_subtitles,
)
from model.data.features import (
    DEFAULT_BACKBONE,
    FeatureConfig,
    FrameFeatureExtractor,
    video_duration,
)
from model.data.frame_encoders import VISUAL_BACKBONES, FeatureError
from model.data.movielc import write_movielc
from model.data.pairing import VideoFiles, pair_files
from model.data.schema import SPLITS, Comment, Corpus, DataError, Segment, Video

log = logging.getLogger(__name__)

MANIFEST = "ingest.json"
FEATURES_INFO = "extras/features.json"
INGEST_VERSION = 1


@dataclass
class Ingested:
    """What a run made: the corpus, its features, and everything it did not keep."""

    corpus: Corpus
    features: dict[str, dict[int, np.ndarray]]
    skipped: list[Skip]
    formats: Counter
    backbone: str
    dim: int
    cached: int

    def summary(self, out: Path, elapsed_s: float) -> dict:
        splits = Counter(v.split for v in self.corpus)
        return {
            "out": str(out),
            "videos": len(self.corpus.videos),
            "comments": self.corpus.n_comments,
            "seconds": round(self.corpus.seconds, 3),
            "elapsed_s": round(elapsed_s, 3),
            "splits": {s: splits.get(s, 0) for s in SPLITS},
            "formats": dict(sorted(self.formats.items())),
            "features": {"backbone": self.backbone, "dim": self.dim, "cached": self.cached},
            "skipped": [
                {"file": s.file, "reason": s.reason, "count": s.count} for s in self.skipped
            ],
        }


# --- split -----------------------------------------------------------------------------------


def parse_ratios(text: str) -> tuple[float, float, float]:
    """``--split train,dev,test``: three non-negative numbers that sum to 1."""
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or any(not math.isfinite(x) or x < 0 for x in parts):
        raise DataError(f"--split {text!r}: expected three non-negative numbers, e.g. 0.8,0.1,0.1")
    if abs(sum(parts) - 1) > 1e-6:
        raise DataError(f"--split {text!r}: the ratios sum to {sum(parts):g}, not 1")
    return parts  # type: ignore[return-value]


def assign_splits(ids: list[str], ratios: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Video id -> split: the videos ordered by sha256(seed, id), cut into runs whose sizes are
    the ratios' shares rounded by largest remainder; a split with a non-zero ratio gets a video
    whenever there are enough videos for each such split to have one."""
    n = len(ids)
    quotas = [r * n for r in ratios]
    sizes = [math.floor(q) for q in quotas]
    order = sorted(range(3), key=lambda i: -(quotas[i] - sizes[i]))
    for i in order[: n - sum(sizes)]:
        sizes[i] += 1
    wanted = [i for i in range(3) if ratios[i] > 0]
    if n >= len(wanted):
        for i in wanted:
            if sizes[i] == 0:  # take one from the largest split
                donor = max(range(3), key=lambda j: sizes[j])
                sizes[donor] -= 1
                sizes[i] += 1

    def key(vid: str) -> str:
        return hashlib.sha256(f"{seed}\0{vid}".encode()).hexdigest()

    ranked = sorted(ids, key=key)
    out, start = {}, 0
    for split, size in zip(SPLITS, sizes, strict=True):
        for vid in ranked[start : start + size]:
            out[vid] = split
        start += size
    return out


# --- one video -------------------------------------------------------------------------------


def _merge_skips(skips: list[Skip]) -> list[Skip]:
    counts: Counter = Counter()
    for s in skips:
        counts[(s.file, s.reason)] += s.count
    return [Skip(f, r, c) for (f, r), c in counts.items()]


def _read_together(paths: list[Path]) -> tuple[list[CommentFile], list[Skip]]:
    """Files of one format and video read as one (:func:`read_comment_files`); when one of
    them is unreadable, each is read alone and the unreadable ones are skips."""
    try:
        return [read_comment_files(paths)], []
    except DataError as e:
        if len(paths) == 1:
            return [], [Skip(str(paths[0]), f"unreadable: {e}")]
    parsed, skipped = [], []
    for path in paths:
        try:
            parsed.append(read_comment_files([path]))
        except DataError as e:
            skipped.append(Skip(str(path), f"unreadable: {e}"))
    return parsed, skipped


def read_comments(
    files: VideoFiles, duration: float, formats: Counter
) -> tuple[list[Comment], list[Skip]]:
    """The video's comments from all its comment files (the files of one format read together,
    so a comment repeated across Bilibili's segments is kept once), those outside
    ``[0, duration]`` a skip per file; an unreadable file is a skip."""
    groups: dict[str | None, list[Path]] = {}
    for path, fmt in files.comments.items():
        groups.setdefault(fmt, []).append(path)
    comments: list[Comment] = []
    skipped = [Skip(str(p), "unrecognised comment file") for p in groups.pop(None, [])]
    for fmt, paths in groups.items():
        parsed_files, unreadable = _read_together(paths)
        skipped += unreadable
        for parsed in parsed_files:
            formats[fmt] += 1
            skipped += parsed.skipped
            late = [c for c in parsed.comments if c.time_s > duration]
            if late:
                reason = f"past the video's end ({duration:g} s)"
                skipped.append(Skip(str(parsed.path), reason, len(late)))
            comments += [c for c in parsed.comments if c.time_s <= duration]
    comments.sort(key=lambda c: c.time_s)
    return comments, skipped


def read_subtitle_files(files: VideoFiles) -> tuple[list[Segment], list[Skip]]:
    segments: list[Segment] = []
    skipped = []
    for path in files.subtitles:
        try:
            segments += read_subtitles(path)
        except DataError as e:
            skipped.append(Skip(str(path), f"unreadable subtitles: {e}"))
    segments.sort(key=lambda s: (s.start_s, s.end_s))
    return segments, skipped


def ingest(
    videos_dir: Path,
    comments_dir: Path | None = None,
    *,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    features: FeatureConfig | None = None,
) -> Ingested:
    """Pair, read and featurise every video (module docstring); nothing is written but the
    feature cache."""
    from tqdm import tqdm

    for folder, what in ((videos_dir, "--videos"), (comments_dir, "--comments")):
        if folder is not None and not folder.is_dir():
            raise DataError(f"{folder}: {what}: no such directory")
    paired, skipped = pair_files(videos_dir, comments_dir or videos_dir)
    config = features or FeatureConfig()
    extractor = FrameFeatureExtractor(config)
    videos: dict[str, Video] = {}
    feats: dict[str, dict[int, np.ndarray]] = {}
    formats: Counter = Counter()
    cached = 0
    progress = None if config.progress is None else not config.progress
    with tqdm(total=len(paired), unit="video", desc="ingest", disable=progress) as bar:
        for vid, files in sorted(paired.items()):
            bar.set_postfix_str(files.path.name)
            bar.update(1)
            if not files.comments:
                skipped.append(Skip(str(files.path), "no comment file of the same name"))
                continue
            try:
                array, hit = extractor.video(files.path)
                duration = video_duration(files.path)
            except FeatureError as e:
                skipped.append(Skip(str(files.path), f"undecodable video: {e}"))
                continue
            comments, more = read_comments(files, duration, formats)
            skipped += more
            if not comments:
                skipped.append(Skip(str(files.path), "no usable comment in its comment files"))
                continue
            subtitles, more = read_subtitle_files(files)
            skipped += more
            cached += hit
            videos[vid] = Video(vid, vid, duration, comments, subtitles=subtitles)
            feats[vid] = {s: row for s, row in enumerate(array.astype(np.float32, copy=False))}
    split = assign_splits(sorted(videos), ratios, seed)
    for vid, video in videos.items():
        video.split = split[vid]
    corpus = Corpus("movielc", str(videos_dir), videos)
    return Ingested(
        corpus,
        feats,
        _merge_skips(skipped),
        formats,
        extractor.spec.name,
        extractor.dim,
        cached,
    )


# --- writing ---------------------------------------------------------------------------------


def check_out(out: Path) -> None:
    """``OUT`` may be absent, empty, or a corpus an earlier run wrote (replaced)."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: --out exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise DataError(f"{out}: --out is not empty and was not written by model.data.ingest")


def write_corpus(result: Ingested, out: Path, settings: dict) -> None:
    """Write the corpus into a hidden folder beside ``out``, then rename it into place."""
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.partial-*"):  # an interrupted run's
        shutil.rmtree(stale, ignore_errors=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        write_movielc(result.corpus, tmp, result.features)
        write_json(
            tmp / FEATURES_INFO,
            {"backbone": result.backbone, "dim": result.dim, "weights": settings["weights"]},
            indent=1,
        )
        skips = [{"file": s.file, "reason": s.reason, "count": s.count} for s in result.skipped]
        write_json(
            tmp / MANIFEST,
            {"version": INGEST_VERSION, "settings": settings, "skipped": skips},
            indent=1,
        )
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- command line ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m model.data.ingest",
        description="Videos and their comment files -> a corpus in the MovieLC layout.",
    )
    p.add_argument("--videos", type=Path, required=True, help="folder of video files")
    p.add_argument("--comments", type=Path, help="folder of comment files (default: --videos)")
    p.add_argument("--out", type=Path, required=True, help="corpus folder to write")
    p.add_argument("--split", default="0.8,0.1,0.1", help="train,dev,test ratios per video")
    p.add_argument("--seed", type=int, default=0, help="seed of the video-level split")
    p.add_argument("--strict", action="store_true", help="any skip is an error")
    p.add_argument("--visual-backbone", choices=sorted(VISUAL_BACKBONES), default=DEFAULT_BACKBONE)
    p.add_argument("--visual-weights", type=Path, help="torchvision-format weights (ResNets)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda[:N]")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ratios = parse_ratios(args.split)
    check_out(args.out)
    start = time.perf_counter()
    config = FeatureConfig(
        backbone=args.visual_backbone,
        weights=args.visual_weights,
        device=args.device,
        progress=False if args.no_progress else None,
    )
    result = ingest(args.videos, args.comments, ratios=ratios, seed=args.seed, features=config)
    if args.strict and result.skipped:
        first = result.skipped[0]
        raise DataError(f"{first.file}: {first.reason} (--strict; {len(result.skipped)} skips)")
    if not result.corpus.videos:
        raise DataError(f"{args.videos}: no video with comments to ingest")
    settings = {
        "videos": str(args.videos.resolve()),
        "comments": str((args.comments or args.videos).resolve()),
        "split": list(ratios),
        "seed": args.seed,
        "backbone": args.visual_backbone,
        "weights": str(args.visual_weights) if args.visual_weights else None,
    }
    write_corpus(result, args.out, settings)
    summary = result.summary(args.out, time.perf_counter() - start)
    for s in result.skipped:
        log.warning("skipped %s: %s%s", s.file, s.reason, f" (x{s.count})" if s.count > 1 else "")
    if args.json:
        print_json(summary)
    else:
        sp = summary["splits"]
        print(
            f"wrote {summary['videos']} videos ({sp['train']} train, {sp['dev']} dev, "
            f"{sp['test']} test), {summary['comments']} comments, "
            f"{summary['seconds']:g} s of video to {args.out}; "
            f"{len(result.skipped)} skips"
        )
    return 0


if __name__ == "__main__":
    run(main)
