"""Twitch reader: the LiveChat dataset (Lalanne et al., "LiveChat: Video Comment Generation from
Audio-Visual Multimodal Contexts", arXiv 2311.12826), which SFAT (Fatima et al., "Semantic
Frame Aggregation-based Transformer for Live Video Comment Generation", IEEE TMM 2025) uses
as "VideoChat". Field names as the released loader (``StreamChatDataset`` in the LiveChat and
SFAT code) reads them.

Layout (the directory named; each ``*.json`` is ONE JSON array of clip records, read streamed)::

    train.json, val.json (or dev.json), test_with_candidates.json (else test.json)
        id_video          str: the Twitch VOD id
        start             number, seconds: where the clip's stretch of the VOD starts
        offset_start      number, seconds: the clip's offset in that stretch
        category          str: the Twitch category id, e.g. "509658" (the loader casts it to int)
        chat_context      list[str]: the chat messages of the clip's 20 s context window
        responses         list[str]: the messages of its 10 s response window (the targets)
        response_index    the loader's pointer into ``responses`` (not used here)
        transcript_audio  str: speech-to-text of the clip's audio
        candidates        list[str], test files only: 80 ranking candidates in this order: the
                          ground truth, 20 plausible, 20 popular, 39 random (SFAT's loader
                          slices them so)
    features/<category>/<id_video>_<start>_<offset_start>.npy
        float array (30, 2048): ResNet features of the clip's 30 seconds, one row per second
        (the name uses the JSON values as Python prints them, as the released loader does)

Mapping onto the canonical model; the release gives messages no timestamps, so:

* A video is a VOD; a record is one 30 s clip starting at ``start + offset_start`` (our reading
  of the two fields: the release does not document them; only the relative layout inside a clip
  matters to the samples).
* ``chat_context`` is spread evenly over the clip's first 20 s; ``responses`` are all placed at
  second 20 of the clip (the start of the response window), so that a sample there has the
  responses as ground truths and the chat as context; its ``candidates`` are keyed there with
  labels 1 (first), 3 (plausible), 2 (popular), 4 (random), the order of
  :data:`~model.data.candidates.TWITCH_SPEC`; a list of another length gets label 1 for its
  first candidate and 0 for the rest.
* ``transcript_audio`` is one transcript segment over the clip; the duration ends with the VOD's
  last clip. The same clip in two files (test.json and test_with_candidates.json) is read once.
* The split comes from the file. A VOD is one video, however many split files hold its clips:
  when they are all of one split, that is the video's ``split``; when they are of several, the
  video is split by time (``Video.split_ranges``, docs/data-contracts.md, section "Canonical
  corpus model"): each clip's 30 s ``[start, start + 30)`` belong to its file's split, so a
  sample belongs to the split of the clip it lies in, and training reads only the training
  clips. A clip's messages lie in its first 20 s and a sample's window reaches 5 s each side,
  so the window of a sample reads another clip's messages only when the two clips start less
  than 26 s apart, hence only when their 30 s overlap; clips of one split may, and then share
  their seconds (the frames of a neighbouring clip of another split are masked in a sample:
  :mod:`model.data.samples`). Clips of two splits that overlap cannot be told apart by time:
  that VOD's clips are then kept as one video per split (``<id_video>@<split>`` for the later
  splits), with a warning.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.data.candidates import TWITCH_SPEC
from model.data.fileio import (
    SPLIT_ALIASES,
    as_record,
    as_second,
    ident,
    iter_json_array,
    load_frames,
    number,
    text,
    text_list,
)
from model.data.schema import (
    Candidate,
    Comment,
    Corpus,
    DataError,
    Segment,
    SplitRange,
    Video,
    merge_ranges,
)

log = logging.getLogger(__name__)

#: split -> candidate file names, the first found is read
SPLIT_FILES = {
    "train": ("train.json",),
    "dev": ("val.json", "dev.json"),
    "test": ("test_with_candidates.json", "test.json"),
}
FEATURES_DIR = "features"
CLIP_SECONDS = 30
CONTEXT_SECONDS = 20
#: label of each released candidate, by position: ground truth, plausible, popular, random
RELEASED_LABELS = tuple(TWITCH_SPEC.ordered_labels())


def read_twitch(path: str | Path) -> Corpus:
    """Read a LiveChat/SFAT dataset directory, or one of its JSON files."""
    root, files = _files(Path(path))
    builder = _Builder(root)
    for split, file in files:
        for index, line, value in iter_json_array(file):
            builder.add(value, split, f"{file}: record {index} (line {line})")
    return builder.corpus()


def _files(path: Path) -> tuple[Path, list[tuple[str | None, Path]]]:
    if path.is_file():
        stem = path.stem.split("_")[0].lower()
        return path.parent, [(SPLIT_ALIASES.get(stem), path)]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or directory (expected the Twitch dataset)")
    found = []
    for split, names in SPLIT_FILES.items():
        file = next((path / n for n in names if (path / n).exists()), None)
        if file is not None:
            found.append((split, file))
    if not found:
        names = ", ".join(n for ns in SPLIT_FILES.values() for n in ns)
        raise DataError(f"{path}: no Twitch dataset files (expected some of {names})")
    return path, found


@dataclass
class _Clip:
    """One clip record, placed on its VOD's timeline."""

    start_s: float
    split: str | None
    category: str
    comments: list[Comment]
    transcript: list[Segment]
    features: Path
    candidates: list[Candidate] | None

    @property
    def answer_at(self) -> float:
        return self.start_s + CONTEXT_SECONDS


@dataclass
class _Builder:
    root: Path
    clips: dict[str, list[_Clip]] = field(default_factory=dict)  # VOD -> its clips, read order
    seen: set[tuple[str, str, str]] = field(default_factory=set)

    def add(self, value: object, split: str | None, loc: str) -> None:
        rec = as_record(value, loc)
        vod = ident(rec, "id_video", loc)
        start = number(rec, "start", loc)
        offset = number(rec, "offset_start", loc)
        category = ident(rec, "category", loc)
        chat = [m.strip() for m in text_list(rec, "chat_context", loc) if m.strip()]
        responses = [m.strip() for m in text_list(rec, "responses", loc) if m.strip()]
        transcript = text(rec, "transcript_audio", loc, default="").strip()
        candidates = None
        if "candidates" in rec:
            texts = [c.strip() for c in text_list(rec, "candidates", loc)]
            if not texts:
                raise DataError(f"{loc}: field 'candidates': empty list")
            candidates = _labelled(texts)
        key = (vod, str(rec["start"]), str(rec["offset_start"]))
        if key in self.seen:
            return
        self.seen.add(key)
        clip_start = start + offset
        step = CONTEXT_SECONDS / max(len(chat), 1)
        comments = [Comment(clip_start + i * step, m) for i, m in enumerate(chat)]
        comments += [Comment(clip_start + CONTEXT_SECONDS, m) for m in responses]
        segments = (
            [Segment(clip_start, clip_start + CLIP_SECONDS, transcript)] if transcript else []
        )
        feature_file = self.root / FEATURES_DIR / category / f"{key[0]}_{key[1]}_{key[2]}.npy"
        clip = _Clip(clip_start, split, category, comments, segments, feature_file, candidates)
        self.clips.setdefault(vod, []).append(clip)

    def corpus(self) -> Corpus:
        videos: dict[str, Video] = {}
        features: dict[str, list[tuple[float, Path]]] = {}
        candidates: dict[tuple[str, int], list[Candidate]] = {}
        for vod, clips in self.clips.items():
            for vid, own, split, ranges in _videos_of(vod, clips):
                video = Video(vid, "", 0.0, category=own[0].category, split=split)
                video.split_ranges = ranges
                for clip in own:
                    video.comments += clip.comments
                    video.transcript += clip.transcript
                    video.duration_s = max(video.duration_s, clip.start_s + CLIP_SECONDS)
                    features.setdefault(vid, []).append((clip.start_s, clip.features))
                    if clip.candidates is not None:
                        candidates[(vid, int(clip.answer_at))] = clip.candidates
                video.comments.sort(key=lambda c: c.time_s)
                video.transcript.sort(key=lambda s: s.start_s)
                videos[vid] = video
        clip_features = ClipFeatures(features) if (self.root / FEATURES_DIR).is_dir() else None
        return Corpus("twitch", str(self.root), videos, clip_features, candidates)


def _videos_of(
    vod: str, clips: list[_Clip]
) -> list[tuple[str, list[_Clip], str | None, list[SplitRange]]]:
    """``(video id, clips, split, split ranges)`` of each video a VOD's clips make: one, split
    as a whole or by time; one per split when clips of two splits overlap (module docstring)."""
    splits = list(dict.fromkeys(c.split for c in clips))
    if len(splits) == 1:
        return [(vod, clips, splits[0], [])]
    ranges = [SplitRange(c.start_s, c.start_s + CLIP_SECONDS, c.split) for c in clips if c.split]
    try:
        return [(vod, clips, None, merge_ranges(ranges))]
    except ValueError as e:
        log.warning(
            "VOD %s has clips of the splits %s that overlap in time (%s): kept apart, one video"
            " per split",
            vod,
            ", ".join(map(str, splits)),
            e,
        )
    return [
        (vod if i == 0 else f"{vod}@{split}", [c for c in clips if c.split == split], split, [])
        for i, split in enumerate(splits)
    ]


def _labelled(texts: list[str]) -> list[Candidate]:
    if len(texts) != len(RELEASED_LABELS):
        return [Candidate(t, 1 if i == 0 else 0) for i, t in enumerate(texts)]
    return [Candidate(t, label) for t, label in zip(texts, RELEASED_LABELS, strict=True)]


class ClipFeatures:
    """Frame features from the per-clip ``.npy`` files, loaded on demand (a few cached).

    :meth:`get` returns None for a second no clip covers and for a missing file, never raising
    for them; a file that is not a (seconds, dim) array is a :class:`DataError`.
    """

    def __init__(self, clips: dict[str, list[tuple[float, Path]]], cache_size: int = 32) -> None:
        self._clips = {vid: sorted(items) for vid, items in clips.items()}
        self._starts = {vid: [s for s, _ in items] for vid, items in self._clips.items()}
        self._cache: OrderedDict[Path, np.ndarray | None] = OrderedDict()
        self._cache_size = cache_size
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            files = (f for items in self._clips.values() for _, f in items if f.exists())
            first = next(files, None)
            self._dim = 0 if first is None else int(self._array(first).shape[1])
        return self._dim

    def get(self, video_id: str, second: int) -> np.ndarray | None:
        s = as_second(second)
        if s is None:
            return None
        starts = self._starts.get(video_id)
        if not starts:
            return None
        i = bisect_right(starts, s) - 1
        if i < 0 or s >= starts[i] + CLIP_SECONDS:
            return None
        clip_start, path = self._clips[video_id][i]
        arr = self._array(path)
        row = math.floor(s - clip_start)
        if arr is None or not 0 <= row < arr.shape[0]:
            return None
        return np.asarray(arr[row], dtype=np.float32)

    def _array(self, path: Path) -> np.ndarray | None:
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        arr = load_frames(path) if path.exists() else None
        self._cache[path] = arr
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return arr
