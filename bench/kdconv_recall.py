"""Knowledge recall quality on real film dialogues (KdConv, Zhou et al. 2020).

Usage: ``python bench/kdconv_recall.py --data DIR [--spacing 2] [--limit N]``

Each dialogue of KdConv's film ``dev.json`` (not part of this repository: ``--data`` names
KdConv's film folder, or the dialogue file) is a video, one message every ``--spacing``
seconds. The film KB subset the dialogues use (``kb_film_subset_from_dialogues.json``, beside
them) is loaded into an embedded store. For every message with annotated
``attrs``, knowledge is recalled from the window of the *preceding* messages only ([t-5, t))
plus the video so far, and we report:

- entity recall: annotated ``name`` among the heads of the recalled facts;
- fact recall: annotated ``(name, attrname)`` among the recalled facts;

within the 80-token budget, micro-averaged over annotations.

Rows:

- ``no_cues``: the linker without relation cues, on every dialogue;
- ``cues``: with relation cues (:mod:`retrieval.relation_cues`) learned the way the system
  learns them (the messages that state a fact by :mod:`retrieval.stated`, windows before
  the message only; the annotations are not used), never from the dialogues being scored:
  the dialogues are split in two by position (even, odd), cues learned on one half score the
  other, and the two halves' counts are pooled (two-fold cross-validation). The ``fold_*``
  rows give each half apart, ``no_cues`` on that half next to it;
- ``cues_hand_entities``: the same cues, the entities weighted by hand (the learned entity
  model, :mod:`retrieval.focus`, off: ``LinkerConfig(learned_focus=False)``).

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.kdconv_data import DATA_HELP, film_files  # noqa: E402
from kg.embedded import EmbeddedStore  # noqa: E402
from kg.loader import load  # noqa: E402
from model.data.schema import Comment, Video  # noqa: E402
from retrieval.cue_model import CueConfig  # noqa: E402
from retrieval.lexicon import EntityLexicon  # noqa: E402
from retrieval.linker import Linker, LinkerConfig  # noqa: E402
from retrieval.relation_cues import examples_from_videos, learn  # noqa: E402

COUNTS = ("windows", "entity_hits", "entity_annotations", "fact_hits", "fact_annotations")


def as_video(i: int, dialogue: dict, spacing: float) -> Video:
    """A dialogue as a video without a title: message k at second k * spacing."""
    messages = dialogue["messages"]
    comments = [Comment(k * spacing, m["message"]) for k, m in enumerate(messages)]
    return Video(f"kdconv{i:04d}", "", len(messages) * spacing, comments)


def count(linker: Linker, dialogues: list, spacing: float) -> dict[str, int]:
    out = dict.fromkeys(COUNTS, 0)
    for dialogue in dialogues:
        comments = [Comment(i * spacing, m["message"]) for i, m in enumerate(dialogue["messages"])]
        for i, m in enumerate(dialogue["messages"]):
            attrs = m.get("attrs") or []
            if not attrs:
                continue
            t = i * spacing
            window = [c for c in comments[:i] if c.time_s >= t - linker.config.radius]
            history = [c for c in comments[:i] if c.time_s < t - linker.config.radius]
            facts = linker.link(window, history, t)
            out["windows"] += 1
            heads = {f.head for f in facts}
            pairs = {(f.head, f.relation) for f in facts}
            names = {a["name"] for a in attrs}
            out["entity_annotations"] += len(names)
            out["entity_hits"] += len(names & heads)
            for a in attrs:
                out["fact_annotations"] += 1
                out["fact_hits"] += (a["name"], a["attrname"]) in pairs
    return out


def rates(counts: dict[str, int]) -> dict[str, float | int]:
    return {
        "windows": counts["windows"],
        "entity_recall": round(counts["entity_hits"] / max(counts["entity_annotations"], 1), 4),
        "fact_recall": round(counts["fact_hits"] / max(counts["fact_annotations"], 1), 4),
        "entity_annotations": counts["entity_annotations"],
        "fact_annotations": counts["fact_annotations"],
    }


def pooled(*counts: dict[str, int]) -> dict[str, int]:
    return {k: sum(c[k] for c in counts) for k in COUNTS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help=DATA_HELP)
    ap.add_argument("--spacing", type=float, default=2.0, help="seconds between messages")
    ap.add_argument("--limit", type=int, default=None, help="first N dialogues only")
    args = ap.parse_args()
    dialogue_file, kb = film_files(args.data)
    dialogues = json.loads(dialogue_file.read_text(encoding="utf-8"))[: args.limit]
    halves = [list(range(0, len(dialogues), 2)), list(range(1, len(dialogues), 2))]
    figures: dict[str, object] = {"dialogues": len(dialogues)}
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(Path(tmp) / "kg")
        try:
            load(store, "filmkg", kb, progress=False)
            lexicon = EntityLexicon.from_store(store)
            plain = Linker(store, lexicon, LinkerConfig())
            t0 = time.perf_counter()
            figures["no_cues"] = rates(count(plain, dialogues, args.spacing))
            figures["windows_per_s"] = round(
                figures["no_cues"]["windows"] / (time.perf_counter() - t0), 1
            )
            folds, hand_folds = [], []
            for k, (learn_on, score_on) in enumerate((halves, halves[::-1])):
                videos = [as_video(i, dialogues[i], args.spacing) for i in learn_on]
                config = CueConfig()
                cues = learn(
                    examples_from_videos(plain, videos, config, before_only=True),
                    config,
                    lexicon=lexicon,
                )
                linker = Linker(store, lexicon, LinkerConfig(), cues=cues)
                hand = Linker(store, lexicon, LinkerConfig(learned_focus=False), cues=cues)
                scored = [dialogues[i] for i in score_on]
                folds.append(count(linker, scored, args.spacing))
                hand_folds.append(count(hand, scored, args.spacing))
                figures[f"fold_{k}"] = {
                    "learned_on": "even" if k == 0 else "odd",
                    "examples": cues.examples,
                    "focus": cues.focus,
                    "no_cues": rates(count(plain, scored, args.spacing)),
                    "cues_hand_entities": rates(hand_folds[-1]),
                    "cues": rates(folds[-1]),
                }
            figures["cues_hand_entities"] = rates(pooled(*hand_folds))
            figures["cues"] = rates(pooled(*folds))
        finally:
            store.close()
    print(f"{'linker':<34}{'windows':>8}{'entity':>9}{'fact':>9}")
    rows = [("no_cues (all dialogues)", figures["no_cues"])]
    for k in (0, 1):
        f = figures[f"fold_{k}"]
        half = "odd" if k == 0 else "even"
        rows += [
            (f"  {half} half, no_cues", f["no_cues"]),
            (f"  {half} half, cues, hand entities", f["cues_hand_entities"]),
            (f"  {half} half, cues from {f['learned_on']}", f["cues"]),
        ]
    rows.append(("cues, hand entities (pooled)", figures["cues_hand_entities"]))
    rows.append(("cues (pooled, learned elsewhere)", figures["cues"]))
    for name, f in rows:
        print(f"{name:<34}{f['windows']:>8}{f['entity_recall']:>9.4f}{f['fact_recall']:>9.4f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
