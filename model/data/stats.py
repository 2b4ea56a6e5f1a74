"""``python -m model.data.stats``: what a corpus holds, in any supported format.

    python -m model.data.stats --format {demo,livebot,videoic,movielc,twitch,iqiyi} PATH [--json]
                               [--livebot-split {auto,new,original}]

Prints a human summary (videos, comments, seconds of video covered, per split when the data
defines one, shipped candidate sets, likes, subtitles, transcripts, whether frame features are
present); with ``--json`` the last line is one JSON object with the same figures.

``streams`` counts the distinct videos (streams, recordings): a video is one however many
splits it has samples in. A split's ``videos`` are those with samples in it, its
``comments`` and ``seconds`` those of its part of them (``Corpus.split``): for a video split by
time (a Twitch VOD with clips in several split files), only that split's ranges, so the
splits' video counts may add up to more than ``streams``; ``split_by_time`` counts such
videos. Bad input is
one ``error:`` line naming the file, record and field, exit status 2
(docs/data-contracts.md, section "Command-line conventions").
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field

from common.cli import print_json, run
from model.data.livebot import SPLIT_CHOICES
from model.data.readers import FORMATS, read_corpus
from model.data.schema import SPLITS, Corpus, DataError, Video


@dataclass
class SplitStats:
    videos: int = 0
    comments: int = 0
    seconds: float = 0.0

    def add(self, part: Video) -> None:
        """Add a video's part in this split (:meth:`Video.part`)."""
        self.videos += 1
        self.comments += len(part.comments)
        self.seconds += _covered(part)


def _covered(part: Video) -> float:
    """Seconds of video in ``part``: the whole video, or the split's ranges within it."""
    if not part.split_ranges:
        return part.duration_s
    end = part.duration_s
    return sum(max(0.0, min(r.end_s, end) - max(r.start_s, 0.0)) for r in part.split_ranges)


@dataclass
class CorpusStats:
    format: str
    path: str
    videos: int
    streams: int  # distinct videos, each counted once whatever its splits (module docstring)
    comments: int
    seconds: float
    splits: dict[str, SplitStats] = field(default_factory=dict)  # only the splits present
    unsplit_videos: int = 0
    split_by_time: int = 0  # videos whose samples fall in several splits by time
    candidate_sets: int = 0
    comments_with_likes: int = 0
    subtitles: int = 0
    transcript_segments: int = 0
    features: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def corpus_stats(corpus: Corpus) -> CorpusStats:
    splits: dict[str, SplitStats] = {}
    for name in sorted({n for v in corpus for n in v.splits}, key=_split_order):
        for part in corpus.split(name):
            splits.setdefault(name, SplitStats()).add(part)
    for sp in splits.values():
        sp.seconds = round(sp.seconds, 3)
    return CorpusStats(
        format=corpus.format,
        path=corpus.path,
        videos=len(corpus.videos),
        streams=len(corpus.videos),
        comments=corpus.n_comments,
        seconds=round(corpus.seconds, 3),
        splits=splits,
        unsplit_videos=sum(not v.splits for v in corpus),
        split_by_time=sum(bool(v.split_ranges) for v in corpus),
        candidate_sets=len(corpus.candidates),
        comments_with_likes=sum(c.likes is not None for v in corpus for c in v.comments),
        subtitles=sum(len(v.subtitles) for v in corpus),
        transcript_segments=sum(len(v.transcript) for v in corpus),
        features=corpus.features is not None,
    )


def _split_order(name: str) -> tuple[int, str]:
    return (SPLITS.index(name) if name in SPLITS else len(SPLITS), name)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 3600 else f"{seconds / 3600:.2f} h"


def _print_human(s: CorpusStats) -> None:
    print(f"{s.format} corpus at {s.path}")
    print(f"  videos {s.videos}, comments {s.comments}, {_duration(s.seconds)} of video")
    split_by_time = f", {s.split_by_time} split by time" if s.split_by_time else ""
    print(f"  streams {s.streams}{split_by_time} (a split counts the videos with samples in it)")
    for name, sp in s.splits.items():
        print(f"  {name:<6} videos {sp.videos}, comments {sp.comments}, {_duration(sp.seconds)}")
    if s.splits and s.unsplit_videos:
        print(f"  no split: {s.unsplit_videos} videos")
    print(f"  candidate sets {s.candidate_sets}, comments with likes {s.comments_with_likes}")
    print(f"  subtitle lines {s.subtitles}, transcript segments {s.transcript_segments}")
    print(f"  frame features: {'yes' if s.features else 'no'}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m model.data.stats",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--format", required=True, choices=FORMATS, help="the corpus layout")
    p.add_argument("path", help="the corpus directory (or file, for twitch)")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    p.add_argument(
        "--livebot-split",
        choices=SPLIT_CHOICES,
        help="LiveBot only: auto (default) takes the de-duplicated split when the video ids"
        " are the Bilibili chat ids it lists, else LiveBot's own split with a warning (it puts"
        " duplicate videos in train and test); new insists on the de-duplicated split;"
        " original takes LiveBot's own without the warning",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = {}
    if args.livebot_split is not None:
        if args.format != "livebot":
            raise DataError("--livebot-split applies to --format livebot only")
        options["split"] = args.livebot_split
    summary = corpus_stats(read_corpus(args.format, args.path, **options))
    _print_human(summary)
    if args.json:
        print_json(summary.as_dict())
    return 0


if __name__ == "__main__":
    run(main)
