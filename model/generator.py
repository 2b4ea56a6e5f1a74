"""Comments for any second of any video, with the facts the model used (KLVCG §V-A: beam 5):
the library behind ``python -m model.generate`` and ``POST /generate``.

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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from common.device import resolve_device
from model.backbones import Backbone, Memory
from model.beam_limits import MAX_BEAM
from model.checkpoint import Checkpoint, build_model, check_compatible, load_checkpoint
from model.data.samples import sample_at
from model.data.schema import DataError, Video
from model.data.vocab import SEP, UNK, words_to_text
from model.encoded_split import Encoded
from model.model_data import lengths_of
from model.new_video import context_with_video
from model.split_encoding import encode_samples
from model.word_ids import TextEncoder, WordSpace
from retrieval.context import RetrievalContext
from retrieval.recall import recall


def banned_ids(space: WordSpace) -> tuple[int, ...]:
    """Ids generation never produces: <UNK>, the separator and the model's own tokens."""
    return (UNK, SEP, space.mask_id, space.cls_id)


@dataclass(frozen=True)
class GeneratedWord:
    text: str
    copied: float  # the share of the word's probability that copying contributed
    fact: int | None  # the fact it was copied from (recall order), None: not copied from one

    def as_dict(self) -> dict:
        return {"text": self.text, "copied": self.copied, "fact": self.fact}


@dataclass(frozen=True)
class FactMass:
    fact: int  # recall order
    mass: float  # the fact's copy share summed over the comment's words, over their number

    def as_dict(self) -> dict:
        return {"fact": self.fact, "mass": self.mass}


@dataclass(frozen=True)
class CopyReport:
    """What one comment copied (with the copy path)."""

    copied: float  # mean of the words' copied shares
    words: tuple[GeneratedWord, ...]
    facts: tuple[FactMass, ...]  # the most copied first

    def as_dict(self) -> dict:
        return {
            "copied": self.copied,
            "words": [w.as_dict() for w in self.words],
            "facts": [f.as_dict() for f in self.facts],
        }


@dataclass(frozen=True)
class GeneratedComment:
    text: str
    score: float  # the beam's score: length-normalised log-probability
    copy: CopyReport | None = None  # None without the copy path

    def as_dict(self) -> dict:
        out: dict = {"text": self.text, "score": self.score}
        return out | self.copy.as_dict() if self.copy is not None else out


@dataclass(frozen=True)
class UsedFact:
    head: str
    relation: str
    tail: str
    index: int  # recall order
    weight: float  # copy mass in the best comment, or the encoder's attention share

    def as_dict(self) -> dict:
        return {
            "head": self.head,
            "relation": self.relation,
            "tail": self.tail,
            "index": self.index,
            "weight": self.weight,
        }


@dataclass
class Generation:
    video: str
    t: int
    comments: list[GeneratedComment] = field(default_factory=list)  # best first
    facts: list[UsedFact] = field(default_factory=list)  # the most used first
    facts_by: str = "attention"  # what ``weight`` is: "copy" mass or encoder "attention"
    other_comments: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "video": self.video,
            "t": self.t,
            "comments": [c.as_dict() for c in self.comments],
            "facts": [f.as_dict() for f in self.facts],
            "facts_by": self.facts_by,
            "other_comments": self.other_comments,
        }


COPIED = 0.5  # a word counts as copied (and names its fact) when copying gave half its P


def copy_report(words: list[str], shares: np.ndarray, source_fact: np.ndarray) -> CopyReport:
    """What one comment copied: ``shares`` (len, S) from :meth:`Backbone.copy_shares`,
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
        out_words.append(GeneratedWord(word, round(copied, 4), fact))
    mass = per_fact.sum(axis=0) / max(len(words), 1)
    return CopyReport(
        copied=round(float(np.mean([w.copied for w in out_words])), 4) if words else 0.0,
        words=tuple(out_words),
        facts=tuple(
            FactMass(f, round(float(m), 4))
            for f, m in sorted(enumerate(mass), key=lambda fm: -fm[1])
            if m >= 1e-4
        ),
    )


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

    def __init__(
        self, ckpt: Checkpoint, model: Backbone, encoder: TextEncoder, ctx: RetrievalContext, device
    ):
        self.ckpt, self.model, self.encoder, self.ctx, self.device = (
            ckpt,
            model,
            encoder,
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
        encoder = TextEncoder(
            ckpt.vocab, ctx.linker.lexicon.tokenizer, lengths_of(ckpt.model_config)
        )
        dev = resolve_device(device)
        return cls(ckpt, build_model(ckpt, dev), encoder, ctx, dev)

    def for_video(self, video: Video, frames: np.ndarray | None) -> Generator:
        """This model over the same corpus and KG with ``video``, which the corpus lacks, and
        its per-second ``frames`` (N, dim) added (None: every frame missing, masked); this
        generator is left as it was (:func:`model.new_video.context_with_video`)."""
        ctx = context_with_video(self.ctx, video, frames, self.ckpt)
        return Generator(self.ckpt, self.model, self.encoder, ctx, self.device)

    def video(self, video_id: str) -> Video:
        """The video of the corpus (or added by :meth:`for_video`) with this id."""
        video = self.ctx.corpus.videos.get(video_id)
        if video is None:
            raise DataError(f"unknown video {video_id!r} in {self.ctx.corpus.path}")
        return video

    def encode(self, video_id: str, t: int) -> Encoded:
        video = self.video(video_id)
        video.check_time(t)
        sample = sample_at(video, self.ctx.corpus.features, int(t), self.ckpt.model_config.radius)
        knowledge = recall(
            self.ctx.store,
            self.ctx.linker,
            self.ctx.index,
            video,
            int(t),
            keywords=self.ctx.keyword_set(video_id),
        )
        return encode_samples([sample], [knowledge], self.encoder)

    def generate(self, video_id: str, t: int, beam: int = 5) -> Generation:
        if not 1 <= beam <= MAX_BEAM:
            raise DataError(f"beam must be 1..{MAX_BEAM}, got {beam}")
        return self.generate_encoded(self.encode(video_id, t), beam)

    @torch.no_grad()
    def generate_encoded(self, encoded: Encoded, beam: int = 5) -> Generation:
        """Comments for the one window of ``encoded`` (a sample and its recalled knowledge,
        however they were made: :meth:`encode`, or a live session's own)."""
        if not 1 <= beam <= MAX_BEAM:
            raise DataError(f"beam must be 1..{MAX_BEAM}, got {beam}")
        video_id, t = encoded.video[0], int(encoded.t[0])
        space = encoded.space(self.model.cfg)
        enc = self.model.encode(encoded.batch([0], self.device, space), use_kg=self.use_kg)
        out = Generation(video_id, int(t), other_comments=encoded.ac[0])
        out.comments = self._comments(encoded, space, enc, beam)
        if encoded.facts[0]:
            weights = self._fact_weights(encoded, enc, out.comments)
            if weights is not None:
                out.facts_by = "copy" if self.model.cfg.copy else "attention"
                out.facts = self._facts(encoded, weights)
        return out

    def _comments(
        self, encoded: Encoded, space: WordSpace, enc: Memory, beam: int
    ) -> list[GeneratedComment]:
        """The beam's comments, best first, each with what it copied (with the copy path)."""
        hyps = self.model.generate(enc, beam=beam, banned=banned_ids(space))
        shares = self.model.copy_shares(enc, [ids for ids, _ in hyps])
        source_fact = np.full(encoded.source([0]).shape[1], -1)
        source_fact[: encoded.fact_of.shape[1]] = encoded.fact_of[0]
        comments = []
        for (ids, score), share in zip(hyps, shares, strict=True):
            words = encoded.decode(ids, 0, space, self.ckpt.vocab)
            copied = copy_report(words, share.numpy(), source_fact) if self.model.cfg.copy else None
            comments.append(GeneratedComment(words_to_text(words), round(score, 4), copied))
        return comments

    def _fact_weights(
        self, encoded: Encoded, enc: Memory, comments: list[GeneratedComment]
    ) -> list[float] | None:
        """How much each recalled fact was used: its copy mass in the best comment (with the
        copy path), else the share of the knowledge encoder's attention on its words; None
        when the model reads no facts."""
        n_facts = len(encoded.facts[0])
        if self.model.cfg.copy:
            weights = [0.0] * n_facts
            best = comments[0].copy if comments else None
            for f in best.facts if best is not None else ():
                weights[f.fact] = f.mass
            return weights
        attention = self.model.knowledge_attention(enc)
        if attention is None:
            return None
        return fact_weights(attention[0], encoded.fact_of[0], n_facts)

    def _facts(self, encoded: Encoded, weights: list[float]) -> list[UsedFact]:
        """The recalled facts, the most used first."""
        facts = encoded.facts[0]
        ranked = sorted(enumerate(weights), key=lambda iw: -iw[1])
        return [
            UsedFact(facts[i].head, facts[i].relation, facts[i].tail, i, round(w, 4))
            for i, w in ranked
        ]
