"""MovieLC's processed sample records (``processed_data/setup*/{train,dev,test}-all.json``).

KLVCG's released loader (AIM3-RUC/MovieLC ``src/KLVCG/datasets/datasets.py``) reads JSON
lines ``{video, time, context: {"<second>": "words"}, comment: "words", kg: "words"}``; test
records carry ``candidate: {"words": label}`` instead of ``comment`` (ground truths are label
1, found by label, never by position). Words are jieba tokens joined by spaces.
``setup_knowledge_enhanced/`` holds the same records with recalled facts in ``kg``; it is
preferred when both exist. These records give the corpus its released candidate sets, and its
comments when the raw ``comment/`` folder is absent; ``kg`` is checked (a string when present)
but not kept: the model's knowledge comes from recall over the KG.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from model.data.candidates import released_candidates, released_labels
from model.data.fileio import as_record, count, ident, iter_json_lines, join_words, text
from model.data.schema import Candidate, Comment

SETUP_DIRS = ("setup_knowledge_enhanced", "setup")
RECORD_FILES = {"train": "train-all.json", "dev": "dev-all.json", "test": "test-all.json"}


@dataclass
class Records:
    comments: dict[str, list[Comment]] = field(default_factory=dict)
    split: dict[str, str] = field(default_factory=dict)
    candidates: dict[tuple[str, int], list[Candidate]] = field(default_factory=dict)


def setup_dir(processed: Path) -> Path | None:
    """The preferred setup directory of the ``processed_data/`` folder ``processed``."""
    for name in SETUP_DIRS:
        if (processed / name).is_dir():
            return processed / name
    return None


def read_records(processed: Path) -> Records | None:
    """The records of the preferred setup directory of the ``processed_data/`` folder
    ``processed``, or None if there is none."""
    folder = setup_dir(processed)
    if folder is None:
        return None
    out = Records()
    for split, name in RECORD_FILES.items():
        path = folder / name
        if not path.exists():
            continue
        for lineno, value in iter_json_lines(path):
            loc = f"{path}:{lineno}"
            rec = as_record(value, loc)
            vid, t = ident(rec, "video", loc), count(rec, "time", loc)
            out.split.setdefault(vid, split)
            if "candidate" in rec:
                cands = released_candidates(released_labels(rec["candidate"], loc), loc)
                out.candidates[(vid, t)] = cands
                texts = [c.text for c in cands if c.label == 1]
            else:
                texts = [join_words(text(rec, "comment", loc))]
            out.comments.setdefault(vid, []).extend(Comment(float(t), x) for x in texts if x)
            text(rec, "kg", loc, default="")  # checked only (module docstring)
    for comments in out.comments.values():
        comments.sort(key=lambda c: c.time_s)
    return out
