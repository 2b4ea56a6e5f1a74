"""Comments for any second of any video, with the facts the model used (KLVCG §V-A: beam 5).

The sample at (video, t) is built like a training sample (frames of [t-5, t+5], the comments
of the surrounding seconds, the period stage), its knowledge comes from the same
:func:`retrieval.recall.recall` that training used, and beam search writes the comments. The
facts are ranked by the knowledge encoder's attention (the cross-attention from the comment
steps M to the fact words, eq. 1, averaged over heads and steps, summed over each fact's words).

    python -m model.generate --checkpoint DIR --video ID --t SECONDS [--beam 5] [--json]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kg.cli import print_json, run
from model.batching import Encoded, Featurizer, encode_samples
from model.checkpoint import Checkpoint, check_compatible, load_checkpoint
from model.data.samples import sample_at
from model.data.schema import DataError
from model.data.vocab import words_to_text
from model.device import resolve_device
from model.pipeline import lengths_of
from model.runner import banned_ids, build_model, with_trained_corpus
from retrieval.context import RetrievalContext
from retrieval.recall import recall

MAX_BEAM = 20


@dataclass
class Generation:
    video: str
    t: int
    comments: list[dict] = field(default_factory=list)  # {"text", "score"}: best first
    facts: list[dict] = field(default_factory=list)  # {"head", "relation", "tail", "weight"}
    other_comments: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "video": self.video,
            "t": self.t,
            "comments": self.comments,
            "facts": self.facts,
            "other_comments": self.other_comments,
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
        self.banned = banned_ids(featurizer)

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
        enc = self.model.encode(encoded.batch([0], self.device), use_kg=self.use_kg)
        hyps = self.model.beam_search(enc, beam=beam, banned=self.banned)
        out = Generation(video_id, int(t), other_comments=encoded.ac[0])
        vocab = self.ckpt.vocab
        out.comments = [
            {"text": words_to_text(vocab.decode(ids)), "score": round(score, 4)}
            for ids, score in hyps
        ]
        facts = encoded.facts[0]
        if enc.knowledge_attention is not None and facts and self.model.cfg.use_kg:
            weights = fact_weights(enc.knowledge_attention[0], encoded.fact_of[0], len(facts))
            ranked = sorted(zip(facts, weights, strict=True), key=lambda fw: -fw[1])
            out.facts = [
                {
                    "head": f["head"],
                    "relation": f["relation"],
                    "tail": f["tail"],
                    "weight": round(w, 4),
                }
                for f, w in ranked
            ]
        return out


def main(argv: list[str] | None = None) -> int:
    from kg.cli import store_from_args
    from model.pipeline import add_data_args
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
    args = with_trained_corpus(args, ckpt)
    ctx = build_context(args, store_from_args(args))
    try:
        gen = Generator.load(ckpt, ctx, args.device)
        result = gen.generate(args.video, int(args.t), beam=args.beam)
    finally:
        ctx.store.close()
    if args.json:
        print_json(result.as_dict())
        return 0
    print(f"video {result.video} t={result.t}")
    for c in result.comments:
        print(f"  {c['text']}   ({c['score']:.3f})")
    if result.facts:
        print("facts, by the knowledge encoder's attention:")
        for f in result.facts:
            print(f"  {f['weight']:.3f}  {f['head']} | {f['relation']} | {f['tail']}")
    return 0


if __name__ == "__main__":
    run(main)
