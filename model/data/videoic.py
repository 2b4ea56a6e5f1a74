"""VideoIC reader (Wang, Chen & Jin, "VideoIC: A Video Interactive Comments Dataset and
Multimodal Multitask Learning for Comments Generation", ACM MM 2020): the raw release of
AIM3-RUC/VideoIC, field names as its ``data/README.md``, ``tasks/README.md`` and MML-CG code
(``src/MML-CG/utils.py``, ``dataset.py``) give them.

Layout (the directory named: VideoIC's ``data/``)::

    info.json            {"<aid>": {...}}, one entry per video, keyed by its aid (the Bilibili
                         video id: www.bilibili.com/video/av<aid>):
                         cid            the id of the video's comment file on Bilibili
                         title          the title shown on Bilibili
                         duration       seconds
                         total_danmaku  the number of comments collected (not used)
                         v_class        the category (one of six)
                         v_key          the search keyword the video was collected with
    comments/<aid>.json  {"<second>": ["comment", ...]}: the comments at each second
    image.pkl            optional: torch.save({video: {second: 2048-d vector}}), the per-second
                         ResNet features MML-CG loads; saved in torch's legacy format holding
                         numpy arrays pickled by numpy 1.x, so it loads only with
                         ``torch.load(..., weights_only=False)``. Keyed by the id MML-CG's
                         records use: looked up by aid, then by cid
    division/{train,val,test}.json   optional: the comments-generation split
                         (tasks/comments_generation/division/ in the VideoIC repository, also
                         found there: ``<data>/../tasks/comments_generation/division``); each
                         file lists videos as objects with an ``aid`` (also ``cid``, ``title``,
                         ``duration``, ``comment_number``, ``class``): a JSON array, an object
                         keyed by aid, or JSON lines. ``dev.json`` is read as ``val.json``.

Comment texts are raw (not segmented) and kept as they are, stripped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from model.data.fileio import (
    SPLIT_ALIASES,
    PickledFeatures,
    as_record,
    bad,
    describe,
    ident,
    load_json,
    number,
    require_dir,
    text,
)
from model.data.schema import Comment, Corpus, DataError, Video

INFO_FILE = "info.json"
COMMENTS_DIR = "comments"
FEATURES_FILE = "image.pkl"
DIVISION_DIRS = ("division", "../tasks/comments_generation/division")
DIVISION_FILES = ("train.json", "val.json", "dev.json", "test.json")


def read_videoic(path: str | Path) -> Corpus:
    """Read a VideoIC ``data/`` directory into the canonical corpus."""
    root = require_dir(path, "the VideoIC data directory")
    info_path = root / INFO_FILE
    if not info_path.exists():
        raise DataError(f"{info_path}: missing (not a VideoIC data directory?)")
    info = load_json(info_path)
    if not isinstance(info, dict):
        raise DataError(f"{info_path}: expected an object keyed by aid, got {describe(info)}")
    split = _read_division(root)
    videos: dict[str, Video] = {}
    aliases: dict[str, str] = {}
    for aid, entry in info.items():
        loc = f"{info_path}: video {aid}"
        video = _video(str(aid), as_record(entry, loc), root, loc)
        video.split = split.get(video.id)
        videos[video.id] = video
        if "cid" in entry:
            aliases[video.id] = ident(entry, "cid", loc)
    features = None
    if (root / FEATURES_FILE).exists():
        # weights_only=False runs code from the file: acceptable only because it is a file
        # inside the directory the user named, never one found elsewhere
        # (docs/data-contracts.md, section "Frame features").
        features = PickledFeatures(root / FEATURES_FILE, trusted=True, aliases=aliases)
    return Corpus("videoic", str(root), videos, features=features)


def _video(aid: str, entry: dict, root: Path, loc: str) -> Video:
    comments = _read_comments(root / COMMENTS_DIR / f"{aid}.json")
    if "duration" in entry:
        duration = number(entry, "duration", loc)
    else:
        duration = float(int(comments[-1].time_s) + 1) if comments else 0.0
    category = entry.get("v_class")
    if category is not None and not isinstance(category, str | int):
        raise bad(loc, "v_class", "a category name", category)
    return Video(
        id=aid,
        title=text(entry, "title", loc, default=""),
        duration_s=duration,
        comments=comments,
        category=None if category is None else str(category),
    )


def _read_comments(path: Path) -> list[Comment]:
    if not path.exists():
        raise DataError(f"{path}: missing (every video of info.json has a comment file)")
    per_second = load_json(path)
    if not isinstance(per_second, dict):
        raise DataError(f'{path}: expected {{"<second>": [comments]}}, got {describe(per_second)}')
    comments: list[Comment] = []
    for key, texts in per_second.items():
        try:
            second = float(key)
        except ValueError:
            second = math.nan
        if not math.isfinite(second) or second < 0:
            raise DataError(f"{path}: key {describe(key)}: expected a second (a number >= 0)")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise bad(path.as_posix(), str(key), "a list of comment strings", texts)
        comments.extend(Comment(second, t.strip()) for t in texts if t.strip())
    comments.sort(key=lambda c: c.time_s)
    return comments


def _read_division(root: Path) -> dict[str, str]:
    """aid -> split, from the first division folder found (none: no split)."""
    for folder in (root / d for d in DIVISION_DIRS):
        if not folder.is_dir():
            continue
        split: dict[str, str] = {}
        for name in DIVISION_FILES:
            if (folder / name).exists():
                for aid in _division_ids(folder / name):
                    split[aid] = SPLIT_ALIASES[name.removesuffix(".json")]
        return split
    return {}


def _division_ids(path: Path) -> list[str]:
    raw = path.read_text(encoding="utf-8-sig")
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError:  # JSON lines
        doc = []
        for lineno, line in enumerate(raw.splitlines(), 1):
            if line.strip():
                try:
                    doc.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{lineno}: invalid JSON: {e.msg}") from None
    if isinstance(doc, dict):  # one JSON-lines record, or an object keyed by aid
        doc = [doc] if "aid" in doc else list(doc)
    if not isinstance(doc, list):
        raise DataError(f"{path}: expected a list of videos with an 'aid', got {describe(doc)}")
    ids = []
    for i, item in enumerate(doc):
        if isinstance(item, str | int) and not isinstance(item, bool):
            ids.append(str(item))
        else:
            ids.append(ident(as_record(item, f"{path}: record {i}"), "aid", f"{path}: record {i}"))
    return ids
