"""Knowledge recall quality on real film dialogues (KdConv, Zhou et al. 2020).

Usage: ``python bench/kdconv_recall.py [--spacing 2] [--limit N]``

Each dialogue of ``../shared/research-data/kdconv/film/dev.json`` is a video, one message
every ``--spacing`` seconds. The film KB subset the dialogues use is loaded into an embedded
store. For every message with annotated ``attrs``, knowledge is recalled from the window of
the *preceding* messages only ([t-5, t)) plus the video so far, and we report:

- entity recall: annotated ``name`` among the heads of the recalled facts;
- fact recall: annotated ``(name, attrname)`` among the recalled facts;

within the 80-token budget, micro-averaged over annotations. Prints a table, then one JSON line.
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

from kg.embedded import EmbeddedStore  # noqa: E402
from kg.loader import load  # noqa: E402
from model.data.schema import Comment  # noqa: E402
from retrieval.lexicon import EntityLexicon  # noqa: E402
from retrieval.linker import Linker, LinkerConfig  # noqa: E402

FILM = ROOT.parent / "shared" / "research-data" / "kdconv" / "film"


def evaluate(linker: Linker, dialogues: list, spacing: float) -> dict[str, float]:
    ent_hit = ent_n = fact_hit = fact_n = windows = 0
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
            windows += 1
            heads = {f.head for f in facts}
            pairs = {(f.head, f.relation) for f in facts}
            names = {a["name"] for a in attrs}
            ent_n += len(names)
            ent_hit += len(names & heads)
            for a in attrs:
                fact_n += 1
                fact_hit += (a["name"], a["attrname"]) in pairs
    return {
        "windows": windows,
        "entity_recall": ent_hit / ent_n,
        "fact_recall": fact_hit / fact_n,
        "entity_annotations": ent_n,
        "fact_annotations": fact_n,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spacing", type=float, default=2.0, help="seconds between messages")
    ap.add_argument("--limit", type=int, default=None, help="first N dialogues only")
    args = ap.parse_args()
    dialogues = json.loads((FILM / "dev.json").read_text(encoding="utf-8"))[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(Path(tmp) / "kg")
        load(store, "filmkg", FILM / "kb_film_subset_from_dialogues.json", progress=False)
        linker = Linker(store, EntityLexicon.from_store(store), LinkerConfig())
        t0 = time.perf_counter()
        figures = evaluate(linker, dialogues, args.spacing)
        figures["windows_per_s"] = round(figures["windows"] / (time.perf_counter() - t0), 1)
        store.close()
    figures = {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}
    for k, v in figures.items():
        print(f"{k:<20} {v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
