"""Which files of a folder belong to which video, by name: the pairing rules of
``python -m model.data.ingest`` (its module docstring says them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from model.data.comment_files import Skip, detect_format

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mkv", ".flv", ".webm", ".mov", ".avi", ".m4v", ".ts", ".wmv", ".mpg", ".mpeg"}
)
SUBTITLE_EXTENSIONS = frozenset({".srt", ".vtt", ".ass", ".ssa"})
NAME_SEPARATORS = "._- "


@dataclass
class VideoFiles:
    """One video and the files paired with it."""

    path: Path
    #: each comment file with the format its content was recognised as (None: an ``.ass``
    #: file that is no format this reads)
    comments: dict[Path, str | None] = field(default_factory=dict)
    subtitles: list[Path] = field(default_factory=list)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def find_videos(root: Path) -> tuple[dict[str, Path], list[Skip]]:
    """The videos under ``root`` by id (file stem); a second video with a taken id is a skip."""
    videos: dict[str, Path] = {}
    skipped = []
    for path in _files(root):
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            continue
        if path.stem in videos:
            skipped.append(
                Skip(str(path), f"video id {path.stem!r} also used by {videos[path.stem]}")
            )
            continue
        videos[path.stem] = path
    return videos, skipped


def owner(path: Path, root: Path, stems: set[str]) -> str | None:
    """The video a file belongs to (module docstring), or None."""
    name = path.name
    matches = [
        stem
        for stem in stems
        if name.startswith(stem) and (len(name) == len(stem) or name[len(stem)] in NAME_SEPARATORS)
    ]
    if matches:
        return max(matches, key=len)
    for folder in path.relative_to(root).parents:
        if folder.name in stems:
            return folder.name
    return None


def is_danmaku_ass(path: Path) -> bool:
    """An ``.ass`` file is a danmaku overlay (danmaku2ass, biliass) when most of its dialogue
    lines move across the screen; subtitles do not."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError:
        return False
    lines = [x for x in text.splitlines() if x.startswith("Dialogue:")]
    return bool(lines) and sum("\\move(" in x for x in lines) * 2 > len(lines)


def pair_files(videos_dir: Path, comments_dir: Path) -> tuple[dict[str, VideoFiles], list[Skip]]:
    """Each video with its comment and subtitle files; what pairs with nothing is a skip."""
    videos, skipped = find_videos(videos_dir)
    paired = {vid: VideoFiles(path) for vid, path in videos.items()}
    stems = set(videos)
    taken = {p.resolve() for p in videos.values()}
    for path in _files(comments_dir):
        if path.resolve() in taken or path.suffix.lower() in VIDEO_EXTENSIONS:
            continue
        vid = owner(path, comments_dir, stems)
        suffix = path.suffix.lower()
        if suffix in (".srt", ".vtt") or (
            suffix in SUBTITLE_EXTENSIONS and not is_danmaku_ass(path)
        ):
            if vid is None:
                skipped.append(Skip(str(path), "subtitles without a video of the same name"))
            else:
                paired[vid].subtitles.append(path)
            continue
        fmt = detect_format(path)
        if suffix in SUBTITLE_EXTENSIONS or fmt is not None:
            if vid is None:
                skipped.append(Skip(str(path), "comment file without a video of the same name"))
            else:
                paired[vid].comments[path] = fmt
            continue
        skipped.append(Skip(str(path), "not a comment, subtitle or video file this reads"))
    return paired, skipped
