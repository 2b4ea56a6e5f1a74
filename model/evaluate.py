"""Ranking and generation evaluation (docs/evaluation.md; KLVCG §V-A; LiveBot §5).

Ranking: each test sample's candidates (100, or what the dataset ships) are scored by their
mean token cross-entropy under teacher forcing; lower ranks first, ties pessimistic
(:func:`model.metrics.ranks_of_first_truth`). The context is encoded once per sample and all
its candidates go through one batched decoder pass. R@1/5/10, MR and MRR with bootstrap 95 %
intervals, overall and on the knowledge-bearing subset (samples whose ground truths state a
fact; flagged by the demo corpus).

Generation: beam search on a fixed, evenly spread subset of the test samples; non-empty rate
(KLVCG reports 97 %), distinct-1..4 and BLEU against the ground truths.

    python -m model.evaluate --checkpoint DIR [--split test] [--json]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from common.cli import print_json, run
from model.batching import Encoded, WordSpace
from model.data.vocab import PAD, SEP, UNK, Vocab
from model.klvcg import KLVCG
from model.metrics import (
    RANK_METRICS,
    corpus_bleu,
    distinct_n,
    expected_random,
    non_empty_rate,
    ranks_of_first_truth,
    summarize,
)

CANDIDATE_ROWS = 512  # candidates per decoder pass (B samples x C candidates)
GENERATION_SAMPLES = 100


@torch.no_grad()
def candidate_scores(
    model: KLVCG,
    encoded: Encoded,
    cand_ids: np.ndarray,
    device: torch.device,
    *,
    idx: np.ndarray | None = None,
    use_kg: bool = True,
    progress: bool = False,
    desc: str = "ranking",
    aligned: bool = False,
) -> np.ndarray:
    """Mean token cross-entropy of every candidate of each sample ``idx`` (default: all),
    ``(len(idx), C)``: each context encoded once, its candidates (corpus ids, with the split's
    unseen words: :meth:`Encoded.unseen`) scored in one decoder pass.
    ``cand_ids`` holds a set per sample of ``encoded``, or with ``aligned`` one per entry of
    ``idx`` (several sets of one sample: value-swap sets, one per stated fact)."""
    model.eval()
    space = encoded.space(model.cfg)
    idx = np.arange(len(encoded)) if idx is None else np.asarray(idx)
    per_pass = max(1, CANDIDATE_ROWS // max(cand_ids.shape[1], 1))
    out = []
    bar = tqdm(total=len(idx), desc=desc, unit=" samples", disable=not progress, leave=False)
    for i in range(0, len(idx), per_pass):
        chunk = idx[i : i + per_pass]
        enc = model.encode(encoded.batch(chunk, device, space), use_kg=use_kg)
        rows = cand_ids[i : i + per_pass] if aligned else cand_ids[chunk]
        source = encoded.source(chunk)[:, None, :] if space.copy else None
        rows = space.target_ext(rows, source)
        cands = torch.as_tensor(rows, dtype=torch.long, device=device)
        out.append(model.score(enc, cands).float().cpu().numpy())
        bar.update(len(chunk))
    bar.close()
    return np.concatenate(out) if out else np.zeros((0, cand_ids.shape[1]), dtype=np.float32)


def is_candidate(cand_ids: np.ndarray) -> np.ndarray:
    """(N, C) True where a row is a candidate, False where it pads a smaller set (all
    ``<PAD>``; every candidate starts with ``<BOS>``)."""
    return cand_ids[..., 0] != PAD


def rank(
    model: KLVCG,
    encoded: Encoded,
    cand_ids: np.ndarray,
    is_truth: np.ndarray,
    device: torch.device,
    *,
    idx: np.ndarray | None = None,
    use_kg: bool = True,
    progress: bool = False,
    desc: str = "ranking",
    aligned: bool = False,
) -> np.ndarray:
    """Rank of the first ground truth of each sample ``idx`` (default: all); padding rows of
    smaller sets are never counted. ``aligned`` as in :func:`candidate_scores`."""
    idx = np.arange(len(encoded)) if idx is None else np.asarray(idx)
    scores = candidate_scores(
        model,
        encoded,
        cand_ids,
        device,
        idx=idx,
        use_kg=use_kg,
        progress=progress,
        desc=desc,
        aligned=aligned,
    )
    if not len(idx):
        return np.zeros(0, dtype=np.int64)
    rows = slice(None) if aligned else idx
    return ranks_of_first_truth(scores, is_truth[rows], is_candidate(cand_ids[rows]))


def random_anchor(is_truth: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """What a uniformly random ranker scores on these candidate sets: the exact expectation
    for each sample's number of candidates (``valid`` ones; padding is not a candidate) and
    ground truths, averaged over the samples (MRR 0.1617 when every sample has 100
    candidates with 5 ground truths)."""
    valid = np.ones_like(is_truth, dtype=bool) if valid is None else valid
    n_cand, n_truth = valid.sum(axis=1), is_truth.sum(axis=1)
    pairs, counts = np.unique(np.stack([n_cand, n_truth], axis=1), axis=0, return_counts=True)
    out = dict.fromkeys(RANK_METRICS, 0.0)
    for (c, m), k in zip(pairs.tolist(), counts.tolist(), strict=True):
        for name, v in expected_random(c, m).items():
            out[name] += v * k / len(n_truth)
    return {KEYS[m]: round(out[m], 4) for m in RANK_METRICS}


KEYS = dict(zip(RANK_METRICS, ("r1", "r5", "r10", "mr", "mrr"), strict=True))


def rank_block(ranks: np.ndarray, is_truth: np.ndarray, valid: np.ndarray) -> dict:
    """``{"r1", "r5", "r10", "mr", "mrr", "ci": {...}, "n", "random": {...}}`` of ``ranks``
    (R@k in %, intervals are bootstrap 95 %); ``{"n": 0}`` without samples."""
    if ranks.size == 0:
        return {"n": 0}
    est = summarize(ranks)
    out: dict = {KEYS[m]: round(est[m].value, 4) for m in RANK_METRICS}
    out["ci"] = {KEYS[m]: [round(est[m].low, 4), round(est[m].high, 4)] for m in RANK_METRICS}
    out["n"] = int(ranks.size)
    out["random"] = random_anchor(is_truth, valid)
    return out


def ranking_report(
    ranks: np.ndarray, knowledge: np.ndarray, is_truth: np.ndarray, valid: np.ndarray | None = None
) -> dict:
    """:func:`rank_block` of all samples, with the same under ``"knowledge_subset"``."""
    valid = np.ones_like(is_truth, dtype=bool) if valid is None else valid
    report = rank_block(ranks, is_truth, valid)
    report["knowledge_subset"] = rank_block(ranks[knowledge], is_truth[knowledge], valid[knowledge])
    return report


def spread(n: int, k: int) -> np.ndarray:
    """``k`` evenly spread indices of ``n`` samples (all when n <= k): a fixed subset."""
    if n <= k:
        return np.arange(n)
    return np.linspace(0, n - 1, k).round().astype(int)


def banned_ids(space: WordSpace) -> tuple[int, ...]:
    """Ids generation never produces: <UNK>, the separator and the model's own tokens."""
    return (UNK, SEP, space.mask_id, space.cls_id)


@torch.no_grad()
def generate_best(
    model: KLVCG,
    encoded: Encoded,
    vocab: Vocab,
    device: torch.device,
    idx: np.ndarray,
    beam: int = 5,
    use_kg: bool = True,
    progress: bool = False,
) -> tuple[list[list[str]], list[float]]:
    """The best beam-search comment (as words, copied ones included) of each sample ``idx``,
    and the seconds each took (encoding and search)."""
    model.eval()
    space = encoded.space(model.cfg)
    hyps, latencies = [], []
    for i in tqdm(idx, desc="generating", unit=" samples", disable=not progress, leave=False):
        started = time.perf_counter()
        enc = model.encode(encoded.batch([i], device, space), use_kg=use_kg)
        best = model.beam_search(enc, beam=beam, banned=banned_ids(space))
        latencies.append(time.perf_counter() - started)
        hyps.append(encoded.decode(best[0][0], int(i), space, vocab) if best else [])
    return hyps, latencies


def generation_report(
    model: KLVCG,
    encoded: Encoded,
    references: list[list[list[str]]],
    vocab: Vocab,
    device: torch.device,
    idx: np.ndarray,
    beam: int = 5,
    use_kg: bool = True,
    progress: bool = False,
) -> dict:
    hyps, latencies = generate_best(model, encoded, vocab, device, idx, beam, use_kg, progress)
    refs = [references[i] for i in idx]
    return {
        "samples": len(hyps),
        "non_empty": round(non_empty_rate(hyps), 4),
        **{f"distinct_{n}": round(distinct_n(hyps, n), 4) for n in (1, 2, 3, 4)},
        "bleu": round(corpus_bleu(hyps, refs, smooth=True), 4) if hyps else 0.0,
        "latency_ms_p50": round(1000 * float(np.median(latencies)), 1) if latencies else 0.0,
    }


@dataclass(frozen=True)
class WindowKnowledge:
    """What the knowledge metrics of one generated comment are measured against."""

    stated: frozenset[str]  # the values its ground truths state
    true: frozenset[str]  # every value of a fact of an entity linked in the window
    relation_values: frozenset[str]  # every known value of the relations those entities have
    new_fact_words: frozenset[str]  # recalled facts' words not in the window's comments


def _longest(values: set[str]) -> set[str]:
    """``values`` without those inside a longer one (``2004年`` inside ``2004年06月25日``)."""
    return {v for v in values if not any(v != w and v in w for w in values)}


def knowledge_generation_metrics(
    texts: list[str], words: list[list[str]], windows: list[WindowKnowledge]
) -> dict:
    """``fact_copy``: share of comments containing a value their ground truth states;
    ``supported_values``/``unsupported_values``: among comments containing a value of a
    relation the window's entities have, the share whose values are all true for an entity of
    the window, and the share with one that is not (a hallucinated fact); ``knowledge_f1``:
    mean unigram F1 between a comment's words and the recalled facts' words that are not
    already in the window's comments (Dinan et al. 2019, "Wizard of Wikipedia", §4.2)."""
    copied = supported = unsupported = 0
    f1s = []
    for text, toks, w in zip(texts, words, windows, strict=True):
        copied += any(v in text for v in w.stated)
        contained = _longest({v for v in w.relation_values if v in text})
        if contained:
            if contained <= w.true:
                supported += 1
            else:
                unsupported += 1
        hits = sum(1 for t in toks if t in w.new_fact_words)
        if hits and w.new_fact_words:
            p, r = hits / len(toks), len(set(toks) & w.new_fact_words) / len(w.new_fact_words)
            f1s.append(2 * p * r / (p + r))
        else:
            f1s.append(0.0)
    n, with_values = len(texts), supported + unsupported
    return {
        "knowledge_samples": n,
        "fact_copy": round(copied / n, 4) if n else 0.0,
        "with_values": with_values,
        "supported_values": round(supported / with_values, 4) if with_values else 0.0,
        "unsupported_values": round(unsupported / with_values, 4) if with_values else 0.0,
        "knowledge_f1": round(float(np.mean(f1s)), 4) if f1s else 0.0,
    }


def format_table(report: dict) -> str:
    """The metrics table with 95 % intervals, overall and on the knowledge-bearing subset."""
    lines = [
        f"{'':<18}{'R@1':>20}{'R@5':>20}{'R@10':>20}{'MR':>20}{'MRR':>22}{'n':>7}",
    ]
    blocks = [("all", report), ("knowledge subset", report["knowledge_subset"])]
    if "value_swap" in report:
        blocks.append(("value swap", report["value_swap"]))
    for name, block in blocks:
        if not block.get("n"):
            lines.append(f"{name:<18}{'(no samples)':>20}")
            continue
        cells = []
        for key in ("r1", "r5", "r10", "mr", "mrr"):
            lo, hi = block["ci"][key]
            digits = 3 if key == "mrr" else 2
            cells.append(
                f"{block[key]:.{digits}f} [{lo:.{digits}f},{hi:.{digits}f}]".rjust(
                    22 if key == "mrr" else 20
                )
            )
        lines.append(f"{name:<18}{''.join(cells)}{block['n']:>7}")
    for name, block in blocks:
        if block.get("n"):
            anchor = block["random"]
            lines.append(f"random ranker, {name}: R@1 {anchor['r1']:.2f}, MRR {anchor['mrr']:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from model.runner import add_checkpoint_args, evaluate_checkpoint

    p = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__.split("\n")[0])
    add_checkpoint_args(p)
    p.add_argument("--split", default="test", choices=("dev", "test"))
    p.add_argument("--generation-samples", type=int, default=GENERATION_SAMPLES)
    p.add_argument("--eval-samples", type=int, help="rank only this many spread samples")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = p.parse_args(argv)
    report = evaluate_checkpoint(args)
    print(format_table(report))
    if args.json:
        print_json(report)
    return 0


if __name__ == "__main__":
    run(main)
