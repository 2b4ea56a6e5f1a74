"""Comments for any second of any video, with the facts the model used (KLVCG §V-A: beam 5).

The sample at (video, t) is built like a training sample (frames of [t-5, t+5], the comments
of the surrounding seconds, the period stage), its knowledge comes from the same
:func:`retrieval.recall.recall` that training used, and beam search writes the comments.

The facts used: with the copy path (``+copy``), for every comment and each of its words, the
share of the word's probability that copying contributed and the fact (or the window's
comments) it was copied from; a comment's ``copied`` share is the mean over its words, its
``facts`` the per-fact copy mass (each fact's share summed over the words, over the number of
words), and the top-level facts are ranked by their copy mass in the best comment. A model
without the copy path ranks them by the knowledge encoder's attention (the cross-attention
from the comment steps M to the fact words, eq. 1, averaged over heads and steps, summed
over each fact's words), which says what the encoder read, not what the comment says.

    python -m model.generate --checkpoint DIR --video ID --t SECONDS [--beam 5] [--json]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from common.cli import print_json, run
from common.device import resolve_device
from common.settings import RunSettings
from model.batching import Encoded, Featurizer, encode_samples
from model.checkpoint import Checkpoint, check_compatible, load_checkpoint
from model.data.samples import sample_at
from model.data.schema import DataError
from model.data.vocab import words_to_text
from model.evaluate import banned_ids
from model.pipeline import lengths_of
from model.runner import build_model, with_trained_corpus
from retrieval.context import RetrievalContext
from retrieval.recall import recall

MAX_BEAM = 20


@dataclass
class Generation:
    video: str
    t: int
    # {"text", "score", "copied", "words": [{"text", "copied", "fact"}], "facts"}: best first
    comments: list[dict] = field(default_factory=list)
    # {"head", "relation", "tail", "index" (recall order), "weight"}: the most used first
    facts: list[dict] = field(default_factory=list)
    facts_by: str = "attention"  # what "weight" is: "copy" mass or encoder "attention"
    other_comments: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "video": self.video,
            "t": self.t,
            "comments": self.comments,
            "facts": self.facts,
            "facts_by": self.facts_by,
            "other_comments": self.other_comments,
        }


COPIED = 0.5  # a word counts as copied (and names its fact) when copying gave half its P


def copy_report(words: list[str], shares: np.ndarray, source_fact: np.ndarray) -> dict:
    """What one comment copied: ``shares`` (len, S) from :meth:`KLVCG.copy_shares`,
    ``source_fact`` (S,) the fact of each source position (-1: a comment word or none)."""
    n_facts = int(source_fact.max()) + 1 if source_fact.size else 0
    per_fact = np.zeros((len(words), n_facts))
    for f in range(n_facts):
        per_fact[:, f] = shares[:, source_fact == f].sum(axis=1)
    out_words = []
    for k, word in enumerate(words):
        copied = float(shares[k].sum()) if shares.size else 0.0
        fact = None
        if copied >= COPIED and n_facts and per_fact[k].max() >= copied / 2:
            fact = int(per_fact[k].argmax())
        out_words.append({"text": word, "copied": round(copied, 4), "fact": fact})
    mass = per_fact.sum(axis=0) / max(len(words), 1)
    return {
        "copied": round(float(np.mean([w["copied"] for w in out_words])), 4) if words else 0.0,
        "words": out_words,
        "facts": [
            {"fact": f, "mass": round(float(m), 4)}
            for f, m in sorted(enumerate(mass), key=lambda fm: -fm[1])
            if m >= 1e-4
        ],
    }


def fact_weights(attention: torch.Tensor, fact_of: np.ndarray, n_facts: int) -> list[float]:
    """The share of the knowledge attention (over words, (m+1,)) that falls on each fact."""
    att = attention.detach().float().cpu().numpy()[: len(fact_of)]
    weights = np.zeros(n_facts)
    for pos, fact in enumerate(fact_of[: len(att)]):
        if fact >= 0:
            weights[fact] += att[pos]
    total = weights.sum()
    return (weights / total if total > 0 else weights).tolist()


class Generator:
    """A checkpoint ready to comment: load once, then :meth:`generate` for any (video, t)."""

    def __init__(self, ckpt, model, featurizer: Featurizer, ctx: RetrievalContext, device):
        self.ckpt, self.model, self.featurizer, self.ctx, self.device = (
            ckpt,
            model,
            featurizer,
            ctx,
            device,
        )
        self.use_kg = ckpt.train_config.kg_in_finetune

    @classmethod
    def load(
        cls, checkpoint: str | Path | Checkpoint, ctx: RetrievalContext, device: str = "auto"
    ) -> Generator:
        """The checkpoint (its directory, or one already loaded) over the corpus and KG of
        ``ctx``."""
        ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        features = ctx.corpus.features
        check_compatible(ckpt, None, features.dim if features is not None else 1)
        featurizer = Featurizer(
            ckpt.vocab, ctx.linker.lexicon.tokenizer, lengths_of(ckpt.model_config)
        )
        dev = resolve_device(device)
        return cls(ckpt, build_model(ckpt, dev), featurizer, ctx, dev)

    def encode(self, video_id: str, t: int) -> Encoded:
        video = self.ctx.corpus.videos.get(video_id)
        if video is None:
            raise DataError(f"unknown video {video_id!r} in {self.ctx.corpus.path}")
        if not 0 <= t <= video.duration_s:  # the range recall and the API accept
            raise DataError(f"video {video_id!r}: t={t} is outside 0..{video.duration_s:g} s")
        sample = sample_at(video, self.ctx.corpus.features, int(t), self.ckpt.model_config.radius)
        knowledge = recall(
            self.ctx.store,
            self.ctx.linker,
            self.ctx.index,
            video,
            int(t),
            keywords=self.ctx.keyword_set(video_id),
        )
        return encode_samples([sample], [knowledge], self.featurizer)

    @torch.no_grad()
    def generate(self, video_id: str, t: int, beam: int = 5) -> Generation:
        if not 1 <= beam <= MAX_BEAM:
            raise DataError(f"beam must be 1..{MAX_BEAM}, got {beam}")
        encoded = self.encode(video_id, t)
        space = encoded.space(self.model.cfg)
        enc = self.model.encode(encoded.batch([0], self.device, space), use_kg=self.use_kg)
        hyps = self.model.beam_search(enc, beam=beam, banned=banned_ids(space))
        shares = self.model.copy_shares(enc, [ids for ids, _ in hyps])
        source_fact = np.full(encoded.source([0]).shape[1], -1)
        source_fact[: encoded.fact_of.shape[1]] = encoded.fact_of[0]
        out = Generation(video_id, int(t), other_comments=encoded.ac[0])
        for (ids, score), share in zip(hyps, shares, strict=True):
            words = encoded.decode(ids, 0, space, self.ckpt.vocab)
            comment = {"text": words_to_text(words), "score": round(score, 4)}
            if self.model.cfg.copy:
                comment.update(copy_report(words, share.numpy(), source_fact))
            out.comments.append(comment)
        facts = encoded.facts[0]
        if not facts or not self.model.cfg.use_kg:
            return out
        if self.model.cfg.copy:
            out.facts_by = "copy"
            weights = [0.0] * len(facts)
            for f in out.comments[0]["facts"] if out.comments else []:
                weights[f["fact"]] = f["mass"]
        else:
            weights = fact_weights(enc.knowledge_attention[0], encoded.fact_of[0], len(facts))
        ranked = sorted(enumerate(weights), key=lambda iw: -iw[1])
        out.facts = [
            {
                "head": facts[i]["head"],
                "relation": facts[i]["relation"],
                "tail": facts[i]["tail"],
                "index": i,
                "weight": round(w, 4),
            }
            for i, w in ranked
        ]
        return out


def main(argv: list[str] | None = None) -> int:
    from model.pipeline import add_data_args
    from retrieval.bootstrap import open_bootstrapped_store
    from retrieval.context import build_context

    p = argparse.ArgumentParser(prog="python -m model.generate", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (model.train --out)")
    add_data_args(p, default_format=None)
    p.add_argument("--video", required=True, help="video id")
    p.add_argument("--t", required=True, type=float, help="second of the video")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = p.parse_args(argv)
    ckpt = load_checkpoint(args.checkpoint)  # fails before anything is built
    settings = with_trained_corpus(RunSettings.from_args(args), ckpt)
    ctx = build_context(settings, open_bootstrapped_store(settings))
    try:
        gen = Generator.load(ckpt, ctx, settings.device)
        result = gen.generate(args.video, int(args.t), beam=args.beam)
    finally:
        ctx.store.close()
    if args.json:
        print_json(result.as_dict())
        return 0
    print(f"video {result.video} t={result.t}")
    for c in result.comments:
        copied = f", {c['copied']:.0%} copied" if "copied" in c else ""
        print(f"  {c['text']}   ({c['score']:.3f}{copied})")
    if result.facts:
        by = "copy mass in the best comment" if result.facts_by == "copy" else "attention"
        print(f"facts, by the {by}:")
        for f in result.facts:
            print(f"  {f['weight']:.3f}  {f['head']} | {f['relation']} | {f['tail']}")
    return 0


if __name__ == "__main__":
    run(main)
