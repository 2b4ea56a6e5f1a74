"""Is the fact a comment goes on to state among the facts recall packs for its window?

Usage: ``python bench/stated_fact_recall.py [--split test] [--embedder hashing:64]``

For every sample (a second with comments) of the demo corpus's ``--split`` videos, its ground
truths are the comments at that second (the first ``MAX_TRUTHS``, as the model's samples). A
ground truth is counted

- ``flagged``: when the demo generator flagged it knowledge-bearing
  (:attr:`model.data.schema.Comment.knowledge`);
- ``stated``: when it states a fact by :mod:`retrieval.stated` (any corpus).

The facts it states are those of :func:`retrieval.stated.stated_facts`, computed with a fixed
reference linker (the previous defaults, no relation cues) so that the truth does not move
with the linker under test. The demo writes the first item of a list value (``ta还演过红高粱``
for ``代表作品 红高粱、英雄``), which the definition does not find; for a flagged comment
without a stated fact, the facts of its linked entities whose value's first item it contains
are its facts. A ground truth is a hit when one of its stated facts
``(head, relation, tail)`` is among the packed facts of the window (the 80-token budget); a
flagged comment whose fact the definition cannot find is a miss. Rows: the previous linker
(``before``) and the linker :func:`retrieval.context.build_context` builds (``after``: relation
cues and which entity the window is about, learned from the training split; recency).
Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.settings import RunSettings  # noqa: E402
from kg.cli import add_store_args  # noqa: E402
from model.data.samples import MAX_TRUTHS  # noqa: E402
from retrieval.bootstrap import open_bootstrapped_store  # noqa: E402
from retrieval.context import build_context  # noqa: E402
from retrieval.linker import Linker, LinkerConfig  # noqa: E402
from retrieval.stated import linked_entities, stated_in, window_facts  # noqa: E402
from retrieval.window import window_of  # noqa: E402

#: LinkerConfig values that turn off what relation cues and recency added (the linker as it
#: was before them).
BEFORE = {"window_recency_power": 1.0, "topic_saturation": 0.0, "pronoun_weight": 0.0}
_LIST_SEPARATORS = re.compile(r"、|，|,|；|;|》《|/")


def first_item(value: str) -> str:
    """The first item of a list value, as the demo generator writes it."""
    return _LIST_SEPARATORS.split(value.strip())[0].strip(" 《》\"'“”").strip()


def truths(reference: Linker, videos) -> list[tuple]:
    """(video, t, facts of a flagged truth, facts of a stated truth) of every ground truth of
    the videos' samples that is flagged or states a fact (an empty set where it is not)."""
    out = []
    for video in videos:
        by_second: dict[int, list] = {}
        for c in video.comments:
            by_second.setdefault(c.second, []).append(c)
        for t in sorted(by_second):
            facts = window_facts(reference, linked_entities(reference, video, t))
            for c in by_second[t][:MAX_TRUTHS]:
                stated = {(f.head, f.relation, f.tail) for f in stated_in(c.text, facts)}
                flagged = set()
                if c.knowledge:
                    flagged = stated or {
                        (f.head, f.relation, f.tail)
                        for f in facts
                        if len(first_item(f.tail)) >= 2 and first_item(f.tail) in c.text
                    }
                if c.knowledge or stated:
                    out.append((video, t, c.knowledge, flagged, stated))
    return out


def evaluate(linker: Linker, rows: list[tuple]) -> dict[str, object]:
    packed: dict[tuple[str, int], set] = {}
    hits = {"flagged": [0, 0], "stated": [0, 0]}
    for video, t, is_flagged, flagged, stated in rows:
        if (video.id, t) not in packed:
            window, history = window_of(video, t, linker.config.radius)
            facts = linker.link(window, history, t, video.title)
            packed[(video.id, t)] = {(f.head, f.relation, f.tail) for f in facts}
        got = packed[(video.id, t)]
        if is_flagged:
            hits["flagged"][0] += bool(flagged & got)
            hits["flagged"][1] += 1
        if stated:
            hits["stated"][0] += bool(stated & got)
            hits["stated"][1] += 1
    return {
        "flagged_in_budget": round(hits["flagged"][0] / max(hits["flagged"][1], 1), 4),
        "flagged_truths": hits["flagged"][1],
        "stated_in_budget": round(hits["stated"][0] / max(hits["stated"][1], 1), 4),
        "stated_truths": hits["stated"][1],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_store_args(ap)
    ap.add_argument("--split", default="test", help="videos to score (default: test)")
    ap.add_argument("--embedder", default="hashing:64", help="the context's comment index")
    args = ap.parse_args()
    settings = RunSettings.from_args(args)  # the demo corpus
    t0 = time.perf_counter()
    ctx = build_context(settings, open_bootstrapped_store(settings))
    built = time.perf_counter() - t0
    try:
        before = Linker(ctx.store, ctx.linker.lexicon, LinkerConfig(**BEFORE))
        rows = truths(before, ctx.corpus.split(args.split))
        flagged_unfound = sum(1 for row in rows if row[2] and not row[3])
        figures: dict[str, object] = {"split": args.split, "context_s": round(built, 1)}
        for name, linker in (("before", before), ("after", ctx.linker)):
            figures[name] = evaluate(linker, rows)
        figures["flagged_without_stated_fact"] = flagged_unfound
    finally:
        ctx.store.close()
    print(f"{'linker':<8}{'flagged':>10}{'n':>7}{'stated':>10}{'n':>7}")
    for name in ("before", "after"):
        f = figures[name]
        print(
            f"{name:<8}{f['flagged_in_budget']:>10.3f}{f['flagged_truths']:>7}"
            f"{f['stated_in_budget']:>10.3f}{f['stated_truths']:>7}"
        )
    print(f"flagged truths whose fact the definition does not find: {flagged_unfound}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
