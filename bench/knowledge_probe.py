"""Does a trained model use the recalled facts? The rank of each knowledge-bearing ground truth,
with the facts and with them left out, on the demo corpus.

Usage: ``python bench/knowledge_probe.py --checkpoint DIR [--split test] [--device auto]``

The knowledge subset's MRR (``model.evaluate``) is the rank of a sample's *best* ground truth,
often a generic comment at the same second. This probe ranks the knowledge-bearing ground truth
itself among the sample's non-truth candidates (the other ground truths left out), scored by
the same mean token cross-entropy, once with the sample's facts and once with none
(``use_kg=False``: the knowledge encoder reads an empty fact list). A model that reads the facts
ranks those comments higher with them. Rows by kind of comment: ``ta`` (a person named a moment
ago, so only the window plus the KG say which value is true) and ``named`` (a person named
earlier, or a fact of the film). Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.settings import RunSettings  # noqa: E402
from model.checkpoint import (  # noqa: E402
    add_checkpoint_args,
    load_checkpoint,
    open_checkpoint,
    with_trained_corpus,
)
from model.data.demo_text import PRONOUN  # noqa: E402
from model.metrics import ranks_of_first_truth  # noqa: E402
from model.ranking import candidate_scores  # noqa: E402
from retrieval.bootstrap import open_bootstrapped_store  # noqa: E402


def knowledge_truths(opened, split: str):
    """(sample indices, candidate ids, mask of their knowledge-bearing truths, the other
    truths, kind of each sample) for the samples of ``split`` with a knowledge-bearing truth
    among their candidates."""
    data = opened.data
    encoded = data.split(split)
    ids, truth = data.candidates(split, encoded)
    videos = {v.id: v for v in data.ctx.corpus.split(split)}  # as the split sees them
    unseen = encoded.unseen()  # the candidates' ids include the split's unseen words
    rows, kinds = [], []
    ktruth = np.zeros_like(truth)
    for i in np.flatnonzero(encoded.knowledge_target):
        video, t = videos[encoded.video[i]], int(encoded.t[i])
        stated = [c.text for c in video.comments if int(c.second) == t and c.knowledge]
        targets = [data.text_encoder.target(text, unseen) for text in stated]
        for j in np.flatnonzero(truth[i]):
            ktruth[i, j] = any(np.array_equal(ids[i, j, : len(r)], r) for r in targets)
        if ktruth[i].any():
            rows.append(i)
            kinds.append("ta" if all(s.startswith(PRONOUN) for s in stated) else "named")
    rows = np.array(rows, dtype=np.int64)
    return encoded, ids, rows, ktruth[rows], truth[rows] & ~ktruth[rows], np.array(kinds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_checkpoint_args(p)
    p.add_argument("--split", default="test")
    args = p.parse_args()
    ckpt = load_checkpoint(args.checkpoint)
    settings = with_trained_corpus(RunSettings.from_args(args), ckpt)
    opened = open_checkpoint(ckpt, settings, open_bootstrapped_store(settings))
    if opened.model.knowledge_encoder is None:
        sys.exit(f"{args.checkpoint}: this ablation has no knowledge encoder to probe")
    encoded, ids, rows, ktruth, others, kinds = knowledge_truths(opened, args.split)
    if not len(rows):
        sys.exit(f"no knowledge-bearing ground truths in the {args.split} split")
    figures = {"samples": len(rows)}
    print(f"{'facts':<8}{'kind':<8}{'n':>6}{'MRR':>8}{'median rank':>13}")
    for use_kg in (True, False):
        model, device = opened.model, opened.device
        scores = candidate_scores(model, encoded, ids, device, idx=rows, use_kg=use_kg)
        ranks = ranks_of_first_truth(np.where(others, np.inf, scores), ktruth)
        label = "with" if use_kg else "without"
        for kind in ("all", "ta", "named"):
            sel = np.ones(len(rows), bool) if kind == "all" else kinds == kind
            if not sel.any():
                continue
            mrr, median = float(np.mean(1.0 / ranks[sel])), float(np.median(ranks[sel]))
            print(f"{label:<8}{kind:<8}{int(sel.sum()):>6}{mrr:>8.3f}{median:>13.0f}")
            figures[f"{label}_{kind}"] = {
                "n": int(sel.sum()),
                "mrr": round(mrr, 4),
                "median_rank": median,
            }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
