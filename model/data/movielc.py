"""MovieLC / KLVCG layout: reader and writer (KLVCG, Chen et al., §III "Datasets").

The released MovieLC data (AIM3-RUC/MovieLC, ``data/README.md``) is laid out as::

    meta.json                      the movies (ours: [{"video", "title", "duration", "category"}])
    comment/<video>.json           {"<second>": ["comment", ...]}: the raw comments per second
    division/{train,val,test}.json the split: one JSON object per line with the video id
    processed_data/
        vid_duration.json          {"<video>": seconds}  (KLVCG's period buckets use it)
        movie101.pkl               torch.save {video: {second: np.ndarray}} (ResNet-101 features;
                                   KLVCG loads the file ending in ``101.pkl``)
        setup/, setup_knowledge_enhanced/
                                   sample records {video, time, context, comment | candidate, kg}
                                   (:mod:`model.data.movielc_records`)

The directory named may also be ``processed_data/`` itself, the folder KLVCG's own code is
pointed at (its ``--data_path``): it is recognised by a ``vid_duration.json`` or a ``setup*/``
folder directly inside and no ``processed_data/`` of its own. ``meta.json``, ``comment/``,
``division/`` and ``extras/`` are then looked for in its parent, when the parent holds any of
them; otherwise the corpus is read from the processed records alone.

The project extends the layout (for the demo corpus, so that every backbone finds its inputs)
with ``extras/``: ``comment_meta/<video>.json`` ({"<second>": [{"likes", "knowledge"}]}, aligned
with ``comment/<video>.json``), ``subtitles.json`` and ``transcripts.json``
({"<video>": [[start, end, text], ...]}). Real MovieLC data has no ``extras/``; the reader
then leaves likes, subtitles and transcripts empty.

Feature files hold numpy arrays pickled by numpy 1.x inside ``torch.save``: they load with
``torch.load(..., weights_only=False)`` only, which can run code from the file, so they are
read only from the directory the user names (docs/data-contracts.md, section "Frame features").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common.atomic import atomic_open, write_json, write_text
from model.data.fileio import PickledFeatures, load_json
from model.data.movielc_records import read_records, setup_dir
from model.data.schema import Comment, Corpus, DataError, Segment, Video

SPLIT_FILES = {"train": "train.json", "dev": "val.json", "test": "test.json"}
FEATURES_FILE = "movie101.pkl"
#: What the release directory holds beside processed_data/ (found in a processed folder's parent)
RELEASE_ENTRIES = ("meta.json", "comment", "division")


def _read_split(root: Path) -> dict[str, str]:
    split: dict[str, str] = {}
    for name, file in SPLIT_FILES.items():
        path = root / "division" / file
        if not path.exists():
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{i}: invalid JSON: {e.msg}") from None
            vid = rec.get("video") if isinstance(rec, dict) else rec
            if not isinstance(vid, str | int):
                raise DataError(f"{path}:{i}: field 'video': expected a video id")
            split[str(vid)] = name
    return split


def _read_comments(path: Path, meta_path: Path) -> list[Comment]:
    per_second = load_json(path)
    metas = load_json(meta_path) if meta_path.exists() else {}
    comments = []
    for key, texts in per_second.items():
        try:
            second = int(key)
        except ValueError:
            raise DataError(f"{path}: key {key!r}: expected a second (integer)") from None
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise DataError(f"{path}: second {key}: expected a list of comment strings")
        meta = metas.get(key, [{}] * len(texts))
        if len(meta) != len(texts):
            raise DataError(f"{meta_path}: second {key}: {len(meta)} entries for {len(texts)}")
        for text, m in zip(texts, meta, strict=True):
            comments.append(Comment(float(second), text, m.get("likes"), bool(m.get("knowledge"))))
    comments.sort(key=lambda c: c.time_s)
    return comments


def _segments(rows, where: str) -> list[Segment]:
    try:
        return [Segment(float(s), float(e), str(t)) for s, e, t in rows]
    except (TypeError, ValueError):
        raise DataError(f"{where}: expected [[start, end, text], ...]") from None


def read_movielc(path: str | Path) -> Corpus:
    """Read a MovieLC directory (or the demo corpus, which uses the same layout), or its
    ``processed_data/`` folder (module docstring).

    Comments come from ``comment/`` when present, else from the processed sample records
    (:mod:`model.data.movielc_records`), which also give released candidates.
    """
    root, processed = _layout(Path(path))
    durations = load_json(processed / "vid_duration.json")
    records = read_records(processed)
    raw_comments = (root / "comment").is_dir()
    if not raw_comments and records is None:
        raise DataError(f"{root}: neither comment/ nor processed_data/setup*/ records")
    if (root / "meta.json").exists() or records is None:
        meta = load_json(root / "meta.json")
    else:  # records only: the videos are those with a duration
        meta = [{"video": vid} for vid in durations]
    split = _read_split(root) or (records.split if records else {})
    subs = _extra(root / "extras" / "subtitles.json")
    trans = _extra(root / "extras" / "transcripts.json")
    videos: dict[str, Video] = {}
    for i, m in enumerate(meta):
        vid = str(m.get("video", "")) if isinstance(m, dict) else ""
        if not vid:
            raise DataError(f"{root / 'meta.json'}: record {i}: field 'video': missing")
        if vid not in durations:
            raise DataError(f"{processed / 'vid_duration.json'}: no duration for {vid!r}")
        if raw_comments:
            comments = _read_comments(
                root / "comment" / f"{vid}.json", root / "extras" / "comment_meta" / f"{vid}.json"
            )
        else:
            comments = records.comments.get(vid, [])
        videos[vid] = Video(
            id=vid,
            title=str(m.get("title", vid)),
            duration_s=float(durations[vid]),
            comments=comments,
            subtitles=_segments(subs.get(vid, []), f"extras/subtitles.json[{vid}]"),
            transcript=_segments(trans.get(vid, []), f"extras/transcripts.json[{vid}]"),
            category=m.get("category"),
            split=split.get(vid),
        )
    if videos and not any(v.split for v in videos.values()):
        raise DataError(_no_split(root))
    corpus = Corpus("movielc", str(root), videos, features=_read_features(processed))
    if records is not None:
        corpus.candidates = records.candidates
    return corpus


def _layout(path: Path) -> tuple[Path, Path]:
    """``(release directory, processed_data/ folder)`` of the directory the user named: the
    release directory, or its ``processed_data/`` folder (module docstring)."""
    if not path.is_dir():
        raise DataError(f"{path}: no such directory")
    inside = (path / "vid_duration.json").exists() or setup_dir(path) is not None
    if (path / "processed_data").is_dir() or not inside:
        return path, path / "processed_data"
    parent = path.parent if path.name not in ("", "..") else path.resolve().parent
    if any((parent / name).exists() for name in RELEASE_ENTRIES):
        return parent, path
    return path, path  # the processed folder alone: records only


def _no_split(root: Path) -> str:
    """Why no video of ``root`` has a split (training, evaluation and candidate sets all need
    one, and a guessed split would not be the released one), and what to add."""
    division = root / "division"
    files = ", ".join(SPLIT_FILES.values())
    if not division.is_dir():
        what = "division/ is missing"
    elif not any((division / f).exists() for f in SPLIT_FILES.values()):
        what = f"division/ has none of {files}"
    else:
        what = "division/ names none of its videos"
    return (
        f"{root}: no usable split: {what} (and no processed_data/setup*/ records give one): "
        f'add division/{{{files}}}, one {{"video": ID}} per line'
    )


def _extra(path: Path) -> dict:
    return load_json(path) if path.exists() else {}


def _read_features(processed: Path) -> PickledFeatures | None:
    files = sorted(p for p in processed.glob("*101.pkl") if "audio" not in p.name)
    # trusted: a file inside the directory the user named (see the module docstring)
    return PickledFeatures(files[0], trusted=True) if files else None


def write_movielc(
    corpus: Corpus, out: str | Path, features: dict[str, dict[int, np.ndarray]] | None = None
) -> Path:
    """Write ``corpus`` (and optional per-second features) in the MovieLC layout, which splits
    by video: a video split by time (``Video.split_ranges``) is refused."""
    timed = next((v.id for v in corpus if v.split_ranges), None)
    if timed is not None:
        raise DataError(f"video {timed!r} is split by time: the MovieLC layout splits by video")
    root = Path(out)
    meta = [
        {"video": v.id, "title": v.title, "duration": v.duration_s, "category": v.category}
        for v in corpus
    ]
    write_json(root / "meta.json", meta)
    write_json(root / "processed_data" / "vid_duration.json", {v.id: v.duration_s for v in corpus})
    for v in corpus:
        texts: dict[str, list[str]] = {}
        metas: dict[str, list[dict]] = {}
        for c in v.comments:
            texts.setdefault(str(c.second), []).append(c.text)
            metas.setdefault(str(c.second), []).append({"likes": c.likes, "knowledge": c.knowledge})
        write_json(root / "comment" / f"{v.id}.json", texts)
        write_json(root / "extras" / "comment_meta" / f"{v.id}.json", metas)
    for name, file in SPLIT_FILES.items():
        lines = [json.dumps({"video": v.id}) for v in corpus if v.split == name]
        write_text(root / "division" / file, "\n".join(lines) + "\n")
    for name, attr in (("subtitles.json", "subtitles"), ("transcripts.json", "transcript")):
        rows = {v.id: [[s.start_s, s.end_s, s.text] for s in getattr(v, attr)] for v in corpus}
        write_json(root / "extras" / name, rows)
    if features is not None:
        import torch

        with atomic_open(root / "processed_data" / FEATURES_FILE) as f:
            torch.save(features, f)
    return root
