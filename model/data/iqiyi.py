"""iQIYI "engaging comments" reader: the data of "Engaging Live Video Comments Generation"
(ACM MM 2024, §3 "Dataset"): 180,276 live comments from iQIYI with their "like" counts,
7,769 subtitles and audio records, video frames, split 8/1/1 into train/val/test, samples
built per clip from subtitle start/end times.

The data is not public, so the project defines the layout from what the paper describes; a
user with the data converts it into this (a directory)::

    train/<clip_id>.json, val/<clip_id>.json (or dev/), test/<clip_id>.json
                         one JSON object per clip; ``<dir>/<clip_id>.json`` outside these
                         folders is read too, with no split
        clip_id          str: the clip's id (required, unique)
        title            str, optional: the programme / episode title
        duration         number > 0: the clip's length in seconds
        comments         [{"time", "text", "likes"}]: time in seconds from the clip's start
                         (0 <= time <= duration), text (str), likes (integer >= 0: the
                         "like" count as collected, not normalised)
        subtitles        [{"start", "end", "text"}], optional: subtitle lines, seconds from the
                         clip's start (start <= end)
        transcript       [{"start", "end", "text"}], optional: the audio records as text
    features/<clip_id>.npy   optional: float array (seconds, dim), row i = second i of the clip

Each clip is one canonical video: likes go to ``Comment.likes``, subtitles to
``Video.subtitles``, the transcript to ``Video.transcript``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.data.fileio import (
    SPLIT_ALIASES,
    as_record,
    as_second,
    bad,
    count,
    ident,
    load_frames,
    load_json,
    number,
    require_dir,
    text,
)
from model.data.schema import Comment, Corpus, DataError, Segment, Video

FEATURES_DIR = "features"
SPLIT_DIRS = ("train", "val", "dev", "test")


def read_iqiyi(path: str | Path) -> Corpus:
    """Read a directory of iQIYI clip files (layout in the module docstring)."""
    root = require_dir(path, "the iQIYI clips directory")
    files: list[tuple[str | None, Path]] = [(None, f) for f in sorted(root.glob("*.json"))]
    for name in SPLIT_DIRS:
        files += [(SPLIT_ALIASES[name], f) for f in sorted((root / name).glob("*.json"))]
    if not files:
        raise DataError(f"{root}: no clip files (expected train/, val/, test/ with <clip_id>.json)")
    videos: dict[str, Video] = {}
    for split, file in files:
        video = _clip(file)
        if video.id in videos:
            raise DataError(f"{file}: field 'clip_id': {video.id!r} is also in another file")
        video.split = split
        videos[video.id] = video
    features = NpyFeatures(root / FEATURES_DIR) if (root / FEATURES_DIR).is_dir() else None
    return Corpus("iqiyi", str(root), videos, features=features)


def _clip(path: Path) -> Video:
    rec = as_record(load_json(path), str(path))
    loc = str(path)
    clip_id = ident(rec, "clip_id", loc)
    duration = number(rec, "duration", loc)
    if duration <= 0:
        raise bad(loc, "duration", "a number > 0", rec["duration"])
    comments = [
        _comment(c, f"{loc}: comments[{i}]", duration)
        for i, c in enumerate(_list(rec, "comments", loc))
    ]
    comments.sort(key=lambda c: c.time_s)
    return Video(
        id=clip_id,
        title=text(rec, "title", loc, default=""),
        duration_s=duration,
        comments=comments,
        subtitles=_segments(rec, "subtitles", loc),
        transcript=_segments(rec, "transcript", loc),
    )


def _list(rec: dict, field: str, loc: str, required: bool = True) -> list:
    if field not in rec and not required:
        return []
    if field not in rec:
        raise DataError(f"{loc}: field {field!r}: missing")
    if not isinstance(rec[field], list):
        raise bad(loc, field, "a list", rec[field])
    return rec[field]


def _comment(value: object, loc: str, duration: float) -> Comment:
    rec = as_record(value, loc)
    time = number(rec, "time", loc)
    if time > duration:
        raise bad(loc, "time", f"a time within the clip (<= {duration:g} s)", rec["time"])
    return Comment(time, text(rec, "text", loc).strip(), likes=count(rec, "likes", loc))


def _segments(rec: dict, field: str, loc: str) -> list[Segment]:
    out = []
    for i, value in enumerate(_list(rec, field, loc, required=False)):
        where = f"{loc}: {field}[{i}]"
        seg = as_record(value, where)
        start, end = number(seg, "start", where), number(seg, "end", where)
        if end < start:
            raise bad(where, "end", f"a time >= start ({start:g})", seg["end"])
        out.append(Segment(start, end, text(seg, "text", where)))
    return sorted(out, key=lambda s: s.start_s)


class NpyFeatures:
    """``features/<video>.npy`` arrays (seconds, dim), loaded on demand and kept.

    :meth:`get` returns None for a missing file or second, never raising for them; a file that
    is not a 2-d array is a :class:`DataError`.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._arrays: dict[str, np.ndarray | None] = {}
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            first = next(iter(sorted(self.folder.glob("*.npy"))), None)
            self._dim = 0 if first is None else int(self._array(first.stem).shape[1])
        return self._dim

    def get(self, video_id: str, second: int) -> np.ndarray | None:
        s = as_second(second)
        if s is None:
            return None
        arr = self._array(str(video_id))
        if arr is None or not 0 <= s < arr.shape[0]:
            return None
        return np.asarray(arr[s], dtype=np.float32)

    def _array(self, video_id: str) -> np.ndarray | None:
        if video_id not in self._arrays:
            path = self.folder / f"{video_id}.npy"
            ok = "/" not in video_id and path.is_file()
            self._arrays[video_id] = load_frames(path) if ok else None
        return self._arrays[video_id]
