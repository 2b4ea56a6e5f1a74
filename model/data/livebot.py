"""LiveBot reader (Ma et al., "LiveBot: Generating Live Video Comments Based on Visual and
Textual Contexts", AAAI 2019, §3, §5): the processed release of lancopku/livebot, field
names as its ``data/preprocess.py``, ``data/add_candidate.py`` and ``codes/transformer.py``
write and read them.

Layout (a directory; every ``*.json`` is JSON lines, one object per line, keys sorted)::

    train-context.json   one record per training comment, in file order:
                         video    int: the video's crawl-order index (0..2360), NOT a Bilibili id
                         time     int: whole seconds (the .ass time floored, clamped to
                                  [1, number of frames])
                         comment  str: jieba words joined by single spaces
                         context  str: the comments of the records at i-1, i+1, ..., i-4, i+4,
                                  joined by " <&&&> " (neighbouring records, even of another video)
    dev-candidate.json,  one record per sampled second with >= 5 comments (dev 8000, test 5000):
    test-candidate.json  comment  list[str]: the first 5 comments of that second (duplicates
                                  kept: two viewers may write the same words)
                         context  str: up to 5 comments of the seconds t-1, t+1, t-2, t+2, t-3,
                                  t+3, in that order, joined by " <&&&> "
                         candidate {text: label}: 100 candidates; label 1 ground truth,
                                  2 popular, 3 plausible, 4 random. Keys are sorted (sort_keys):
                                  ground truths are found by label, never by position
    dev-context.json, test-context.json   the same records without ``candidate`` (optional)
    train.json, dev.json, test.json       {video, time, comment: str}: every comment of the
                         split (preprocess.py's intermediate files; optional, used when present)
    dicts-30000.json     {"word2id", "id2word"} with <PAD> 0, <BOS> 1, <EOS> 2, <UNK> 3, <&&&> 4:
                         validated only, the project builds its own vocabulary (model.data.vocab)
    res18.pkl            torch.save({video: {frame_index: 512-d tensor}}): ResNet-18 features of
                         the frames ffmpeg extracted at 1 fps; frame index j (0-based, image
                         ``j+1.bmp``) is second j, so ``features.get(video, t)`` is frame t (the
                         released training code reads frame t-1, its test code frame t). Tensors
                         only: loaded with torch's default (weights_only) unpickler, on first use

Choices, documented here because the release leaves them open:

* Texts are the words joined back without spaces. preprocess.py removed a comment's spaces
  before segmenting it, so this is the comment exactly as LiveBot kept it; the project's
  tokenizer re-segments it (candidate texts get the same treatment, so they still match).
* The per-video timeline is rebuilt without duplicates. A comment record is exact (``comment``
  at ``time``). Sources are combined by taking, for each (video, second, text), the largest count
  any single source gives: a per-comment file (train*.json, <split>.json) is one source whose
  records add up (two viewers writing "哈哈" at t are two records), and each per-second record is
  one source (the same second seen from dev-context.json and dev-candidate.json counts once).
  ``context`` of per-comment records is ignored: it holds neighbouring records, already read.
  ``context`` of per-second records holds comments of unknown seconds within ±3 s; those not
  already in the timeline within that window (as exact comments) are placed at t-1, the first
  second LiveBot draws them from. Such placements are approximate, and a comment shared by the
  contexts of two sampled seconds may still appear twice; with <split>.json present, none are
  needed.
* Duration is the last comment's second + 1 (the release stores no durations; reading the
  frame count would mean loading res18.pkl); titles are empty (none are released).
* The split (``split``): LiveBot's own split puts copies of the same video, crawled twice
  under different indices, in train and test (lancopku/livebot issue #2); the de-duplicated
  split of VideoIC (AIM3-RUC/VideoIC ``src/livebot_new_split``, bundled in
  ``model/data/splits/``) does not. Those files list Bilibili chat ids (cid) while the release
  numbers videos in crawl order (``extract.py`` counts the .flv/.ass files, which are named by
  title) and ships no cid: a video matches the new split only if its ``video`` value *is* a
  chat id (data re-keyed by cid). ``"auto"`` (the default) takes the de-duplicated split when
  some video id is a chat id it lists, and otherwise the file each video comes from
  (train/dev/test), LiveBot's own split, with a warning that names the leak; ``"new"`` insists
  on the de-duplicated split (reading fails when no video matches it); ``"original"`` takes
  the files' split without a warning. A video in two split files cannot be placed by the
  files' split: reading then fails.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from model.data.candidates import TRUTH, released_candidates, released_labels
from model.data.fileio import (
    PickledFeatures,
    as_record,
    bad,
    ident,
    iter_json_lines,
    join_words,
    load_json,
    number,
    require_dir,
)
from model.data.schema import SPLITS, Candidate, Comment, Corpus, DataError, Video
from model.data.vocab import VOCAB_FILE

log = logging.getLogger(__name__)

#: Released files of each split, the full per-comment dump first.
SPLIT_FILES = {
    "train": ("train.json", "train-context.json"),
    "dev": ("dev.json", "dev-candidate.json", "dev-context.json"),
    "test": ("test.json", "test-candidate.json", "test-context.json"),
}

FEATURES_FILE = "res18.pkl"
SEPARATOR = "<&&&>"
CONTEXT_REACH = 3  # preprocess.test_comments draws context from t±1, t±2, t±3
SPLIT_CHOICES = ("auto", "new", "original")
NEW_SPLIT_DIR = "splits/livebot_new_split"

Timeline = dict[str, dict[int, Counter]]  # video -> second -> {text: count}


@dataclass
class _Pending:
    """The context comments of one per-second record, placed once every exact comment is in."""

    video: str
    second: int
    texts: list[str]


@dataclass
class _State:
    mode: str
    exact: Timeline = field(default_factory=dict)
    pending: list[_Pending] = field(default_factory=list)
    candidates: dict[tuple[str, int], list[Candidate]] = field(default_factory=dict)
    origin: dict[str, tuple[str, str]] = field(default_factory=dict)  # video -> (split, where)
    conflicts: dict[str, str] = field(default_factory=dict)  # video in two split files -> why
    unlabelled: int = 0  # candidate records whose labels were all 1


def new_split() -> dict[str, str]:
    """The bundled de-duplicated LiveBot split: Bilibili chat id -> "train" | "dev" | "test"."""
    table: dict[str, str] = {}
    for name in SPLITS:
        resource = files("model.data").joinpath(f"{NEW_SPLIT_DIR}/{name}.txt")
        for cid in resource.read_text(encoding="utf-8").split():
            table[cid] = name
    return table


def read_livebot(path: str | Path, split: str = "auto") -> Corpus:
    """Read a LiveBot release directory; ``split`` is "auto" (default), "new" or "original"
    (module docstring)."""
    if split not in SPLIT_CHOICES:
        raise DataError(f"LiveBot split {split!r}: expected one of {', '.join(SPLIT_CHOICES)}")
    root = require_dir(path, "the LiveBot data directory")
    found = [
        (s, root / f) for s, names in SPLIT_FILES.items() for f in names if (root / f).exists()
    ]
    if not found:
        names = ", ".join(n for ns in SPLIT_FILES.values() for n in ns)
        raise DataError(f"{root}: no LiveBot files (expected some of {names})")
    if (root / VOCAB_FILE).exists():
        _check_vocab(root / VOCAB_FILE)
    state = _State(split)
    for name, file in found:
        _read_file(file, name, state)
    _place_contexts(state)
    videos = {vid: _video(vid, state.exact[vid]) for vid in sorted(state.exact, key=_id_order)}
    _assign_splits(videos, state, root)
    if state.unlabelled:
        log.warning(
            "%s: %d candidate sets label every candidate 1 (the public add_candidate.py does):"
            " their ground truths are the record's 'comment' texts",
            root,
            state.unlabelled,
        )
    features = PickledFeatures(root / FEATURES_FILE, trusted=False)
    return Corpus(
        "livebot",
        str(root),
        videos,
        features=features if features.path.exists() else None,
        candidates=state.candidates,
    )


def _read_file(path: Path, split: str, state: _State) -> None:
    per_file: Timeline = {}  # per-comment records of this file: counts add up
    for lineno, value in iter_json_lines(path):
        loc = f"{path}:{lineno}"
        rec = as_record(value, loc)
        video = ident(rec, "video", loc)
        second = int(number(rec, "time", loc))
        _note_origin(state, video, split, loc)
        context = rec.get("context", "")
        if not isinstance(context, str):
            raise bad(loc, "context", "a string of comments joined by ' <&&&> '", context)
        comment = rec.get("comment")
        if isinstance(comment, str):
            text = join_words(comment)
            if text:
                by_second = per_file.setdefault(video, {})
                cell = by_second.get(second)
                if cell is None:
                    cell = by_second[second] = Counter()
                cell[text] += 1
            continue
        if not isinstance(comment, list) or not all(isinstance(c, str) for c in comment):
            if "comment" not in rec:
                raise DataError(f"{loc}: field 'comment': missing")
            raise bad(loc, "comment", "a string or a list of strings", comment)
        truths = [t for t in map(join_words, comment) if t]
        _merge_max(state.exact, video, second, Counter(truths))
        texts = [t for t in map(join_words, context.split(SEPARATOR)) if t]
        if texts:
            state.pending.append(_Pending(video, second, texts))
        if "candidate" in rec and (video, second) not in state.candidates:
            state.candidates[(video, second)] = _candidates(rec["candidate"], truths, loc, state)
    for video, seconds in per_file.items():
        if video not in state.exact:
            state.exact[video] = seconds
            continue
        for second, counts in seconds.items():
            _merge_max(state.exact, video, second, counts)


def _merge_max(timeline: Timeline, video: str, second: int, counts: Counter) -> None:
    cell = timeline.setdefault(video, {}).setdefault(second, Counter())
    for text, n in counts.items():
        if n > cell[text]:
            cell[text] = n


def _note_origin(state: _State, video: str, split: str, loc: str) -> None:
    seen = state.origin.setdefault(video, (split, loc))
    if seen[0] != split and video not in state.conflicts:
        state.conflicts[video] = (
            f"{loc}: field 'video': video {video} is also in the {seen[0]} split ({seen[1]}):"
            " the original split cannot place it"
        )
        if state.mode == "original":
            raise DataError(state.conflicts[video])


def _candidates(raw: object, truths: list[str], loc: str, state: _State) -> list[Candidate]:
    labels = released_labels(raw, loc)
    if all(label == TRUTH for label in labels.values()):  # no information in the labels
        state.unlabelled += 1
        gold = set(truths)
        labels = {text: int(text in gold) for text in labels}
    return released_candidates(labels, loc)


def _place_contexts(state: _State) -> None:
    """Context comments not already in the timeline near t go to t-1 (module docstring)."""
    extra: Timeline = {}
    for p in state.pending:
        seconds = state.exact.get(p.video, {})
        near = Counter()
        for s in range(p.second - CONTEXT_REACH, p.second + CONTEXT_REACH + 1):
            if s != p.second and s in seconds:
                near.update(seconds[s])
        residual = Counter(p.texts) - near
        if residual:
            _merge_max(extra, p.video, max(p.second - 1, 0), residual)
    for video, seconds in extra.items():
        for second, counts in seconds.items():
            state.exact.setdefault(video, {}).setdefault(second, Counter()).update(counts)


def _video(video_id: str, seconds: dict[int, Counter]) -> Video:
    comments = [
        Comment(float(second), text)
        for second in sorted(seconds)
        for text, n in seconds[second].items()
        for _ in range(n)
    ]
    last = max(seconds) if seconds else 0
    return Video(id=video_id, title="", duration_s=float(last + 1), comments=comments)


def _id_order(video_id: str) -> tuple[int, int, str]:
    return (0, int(video_id), "") if video_id.isdigit() else (1, 0, video_id)


def _assign_splits(videos: dict[str, Video], state: _State, root: Path) -> None:
    table = new_split()
    matched = sum(v in table for v in videos)
    if state.mode == "original" or (state.mode == "auto" and videos and not matched):
        if state.mode == "auto":
            _warn_leaky_split(root, videos)
        if state.conflicts:
            raise DataError(next(iter(state.conflicts.values())))
        for v in videos.values():
            v.split = state.origin[v.id][0]
        return
    if videos and not matched:
        examples = ", ".join(list(videos)[:3])
        raise DataError(
            f"{root}: none of the {len(videos)} LiveBot 'video' ids (e.g. {examples}) is a"
            " Bilibili chat id of the de-duplicated split (model/data/splits/livebot_new_split):"
            " the processed LiveBot release numbers its videos in crawl order and has no chat"
            " ids; re-key 'video' by chat id, or use LiveBot's own leaky split"
            " (split='original', --livebot-split original)"
        )
    for v in videos.values():
        v.split = table.get(v.id)
    if matched < len(videos):
        log.warning(
            "%s: %d of %d videos are not in the de-duplicated split (duplicates it dropped):"
            " they get no split",
            root,
            len(videos) - matched,
            len(videos),
        )


def _warn_leaky_split(root: Path, videos: dict[str, Video]) -> None:
    examples = ", ".join(list(videos)[:3])
    log.warning(
        "%s: the LiveBot 'video' ids (e.g. %s) are crawl-order indices, not the Bilibili chat"
        " ids of the de-duplicated split (model/data/splits/livebot_new_split): using the"
        " release's own train/dev/test files. That split leaks: a video crawled twice under two"
        " indices is in train and in test (lancopku/livebot issue #2), so test scores are"
        " optimistic. To avoid it, re-key 'video' by Bilibili chat id, which selects the"
        " de-duplicated split; split='original' (--livebot-split original) takes the leaky"
        " split without this warning",
        root,
        examples,
    )


def _check_vocab(path: Path) -> None:
    from model.data.vocab import SPECIALS

    data = load_json(path)
    word2id = data.get("word2id") if isinstance(data, dict) else None
    if not isinstance(word2id, dict):
        raise DataError(f"{path}: field 'word2id': expected an object {{word: id}}")
    for i, token in enumerate(SPECIALS):
        if word2id.get(token) != i:
            raise bad(str(path), f"word2id.{token}", f"id {i}", word2id.get(token))
