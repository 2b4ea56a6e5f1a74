"""The copy path of ``+copy``: a pointer-generator head over the window's source words.

See, Liu and Manning 2017, "Get To The Point: Summarization with Pointer-Generator Networks"
(§2.2): at each decoder step an attention over the source positions is a copy distribution,
and a gate ``p_gen = sigmoid(w · [h; c; x])`` from the decoder state ``h``, the attended source
context ``c`` and the input word's embedding ``x`` mixes it with the vocabulary distribution:

    P(w) = p_gen P_vocab(w) + (1 - p_gen) sum_{j: source_j = w} a_j

over an *extended* vocabulary: the model's words, then one id per source position
(``vocab_size + j``) for a word the model has no id for (:class:`model.word_ids.WordSpace`).
The source is the recalled facts' words (KLVCG's knowledge row: a value, a name or a date can
be copied into a comment) and the window's comments (viewers repeat what was just said).
A window with nothing to copy has ``p_gen = 1``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from model.data.vocab import PAD


class PointerHead(nn.Module):
    """The copy attention and the gate (one head: its weights are read back as "which fact
    word a comment word came from"). The attention and the context it reads work in ``dim``
    dimensions (not the model's d): every decoded position attends to every source position
    of its window, which dominates ranking's cost at d, and one head needs few dimensions.

    A value is several words ("1961 年 12 月 21 日", "三届 香港电影 金像奖 影帝 提名"), and an
    attention that finds the value's first word must then find each next one; from content
    alone it picks a look-alike ("21" of another date), so state-dependent biases (``follow``)
    are added at the source positions whose previous words are the words just read: going on
    copying is one learned weight away (CopyNet's selective read, Gu et al. 2016, §3.3, in
    the form of a bias; See et al.'s head has no such path). Bias ``k`` is added where the
    last ``k + 1`` words read match the ``k + 1`` source words before the position, so the
    value being copied wins over another fact that shares its last word ("月" of two dates,
    "香港电影 金像奖" of two awards): CopyNet reads the previous step's attention for this,
    which a teacher-forced pass cannot compute in parallel; the words can be."""

    def __init__(self, d: int, dim: int = 64, span: int = 1) -> None:
        super().__init__()
        self.query = nn.Linear(d, dim)
        self.key = nn.Linear(d, dim)
        self.value = nn.Linear(d, dim)
        self.gate = nn.Linear(2 * d + dim, 1)
        self.follow = nn.Linear(d, span)
        self.scale = 1.0 / math.sqrt(dim)

    def keys(self, source: torch.Tensor) -> torch.Tensor:
        """The attention keys and values of the source states (B, S, d) -> (B, S, 2 dim),
        computed once per context."""
        return torch.cat([self.key(source), self.value(source)], dim=-1)

    def forward(
        self,
        h: torch.Tensor,  # (B, L, d) decoder states
        x: torch.Tensor,  # (B, L, d) the input words' embeddings
        keys: torch.Tensor,  # (B, S, 2 dim): :meth:`keys`
        source_ext: torch.Tensor,  # (B, S) extended ids, PAD where nothing can be copied
        before: torch.Tensor,  # (B, S, span): :func:`words_before` of the source
        words: torch.Tensor,  # (B, L, span): :func:`words_before` of the words read
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(p_gen (B, L), copy attention (B, L, S))``; the attention sums to one over the
        copyable positions, and is zero (with ``p_gen`` one) where there are none."""
        pad = source_ext.eq(PAD)
        k, v = keys.chunk(2, dim=-1)
        scores = torch.einsum("bld,bsd->bls", self.query(h), k) * self.scale
        scores = scores + follow_bias(before[:, None], words[:, :, None], self.follow(h))
        scores = scores.masked_fill(pad[:, None, :], torch.finfo(scores.dtype).min)
        att = torch.softmax(scores, dim=-1) * (~pad)[:, None, :]
        context = torch.einsum("bls,bsd->bld", att, v)
        p_gen = torch.sigmoid(self.gate(torch.cat([h, context, x], dim=-1))).squeeze(-1)
        can_copy = (~pad).any(dim=1, keepdim=True)
        return torch.where(can_copy, p_gen, torch.ones_like(p_gen)), att


def follow_bias(
    before: torch.Tensor,  # (..., 1 or L, S, span) the source words before each position
    words: torch.Tensor,  # (..., L, 1 or S, span) the words read last, nearest first
    follow: torch.Tensor,  # (..., L, span) the state's biases
) -> torch.Tensor:
    """(..., L, S): at each source position, the sum of the biases ``follow[k]`` for which the
    last ``k + 1`` words read are the ``k + 1`` source words before it (:class:`PointerHead`)."""
    same = before.eq(words) & before.ne(PAD)
    run = same.to(follow.dtype).cumprod(dim=-1)  # the first k + 1 all match
    return (run @ follow.unsqueeze(-1)).squeeze(-1)


def words_before(ids: torch.Tensor, span: int) -> torch.Tensor:
    """(B, L) -> (B, L, span): at each position the ids of the ``span`` positions up to it,
    nearest first (``[..., 0]`` is ``ids`` itself), PAD before the start: the words a
    decoder has read."""
    return torch.stack(
        [F.pad(ids, (i, 0), value=PAD)[:, : ids.shape[1]] for i in range(span)], dim=-1
    )


def source_words_before(source_ext: torch.Tensor, span: int) -> torch.Tensor:
    """(B, S) -> (B, S, span): the extended ids of the ``span`` source words before each
    position, nearest first, PAD before the start (what :class:`PointerHead` matches the
    words read against)."""
    return words_before(F.pad(source_ext[:, :-1], (1, 0), value=PAD), span)


def gold_logp(
    logits: torch.Tensor,  # (B, L, V) vocabulary logits
    gold: torch.Tensor,  # (B, L) extended ids
    p_gen: torch.Tensor,  # (B, L)
    att: torch.Tensor,  # (B, L, S)
    source_ext: torch.Tensor,  # (B, S)
) -> torch.Tensor:
    """log P(gold) under the mixed distribution, (B, L), without building it."""
    vocab = logits.shape[-1]
    in_vocab = gold < vocab
    idx = torch.where(in_vocab, gold, torch.zeros_like(gold)).unsqueeze(-1)
    p_vocab = F.log_softmax(logits.float(), dim=-1).gather(-1, idx).squeeze(-1).exp()
    p_vocab = p_vocab * in_vocab
    p_copy = (att * source_ext[:, None, :].eq(gold.unsqueeze(-1))).sum(dim=-1)
    p = p_gen * p_vocab + (1 - p_gen) * p_copy
    return p.clamp_min(1e-12).log()


class PointerStep:
    """:class:`PointerHead` and the mixed distribution for the hypotheses of ONE context, one
    position at a time (beam search). What a search does not change is prepared once: the
    copyable positions (the rest dropped, not masked), their keys, and the three products that
    read the decoder state (query, follow biases, the gate's share), fused into one; a step is
    then a few operations on small tensors, and their number, not their size, is what a step
    costs on a CPU. Gives the teacher-forced head's log P (tested)."""

    def __init__(
        self,
        head: PointerHead,
        keys: torch.Tensor,  # (S, 2 dim) one context's :meth:`PointerHead.keys`
        source_ext: torch.Tensor,  # (S,) its extended ids, PAD where nothing can be copied
        before: torch.Tensor,  # (S, span): :func:`source_words_before`
        n_source: int,  # the full source's length (the extended ids it counts)
    ) -> None:
        keep = source_ext.ne(PAD)
        k, v = keys[keep].chunk(2, dim=-1)
        self.ext, self.before, self.v = source_ext[keep], before[keep], v
        self.k_t = (k * head.scale).t()
        d, dim, span = head.query.in_features, head.query.out_features, head.follow.out_features
        gate = head.gate.weight  # (1, 2 d + dim) over [h; context; x]
        self.w_h = torch.cat([head.query.weight, head.follow.weight, gate[:, :d]])
        self.b_h = torch.cat([head.query.bias, head.follow.bias, head.gate.bias])
        self.w_cx = gate[0, d:].unsqueeze(1)  # (dim + d, 1)
        self.parts = (dim, span, 1)
        self.n_source = n_source

    def log_probs(
        self,
        logits: torch.Tensor,  # (n, V) the vocabulary's
        h: torch.Tensor,  # (n, d) the decoder states
        x: torch.Tensor,  # (n, d) the input words' embeddings
        words: torch.Tensor,  # (n, span) the words read last, nearest first
    ) -> torch.Tensor:
        """log P of the next word over the extended vocabulary, (n, V + n_source)."""
        p_vocab = torch.softmax(logits.float(), dim=-1)
        if not len(self.ext):  # nothing to copy: p_gen = 1
            return F.pad(p_vocab, (0, self.n_source)).log_()
        q, follow, gate_h = F.linear(h, self.w_h, self.b_h).split(self.parts, dim=-1)
        scores = (q @ self.k_t).add_(follow_bias(self.before, words[:, None], follow))
        att = torch.softmax(scores, dim=-1)
        p_gen = torch.sigmoid(torch.addmm(gate_h, torch.cat([att @ self.v, x], dim=-1), self.w_cx))
        p = F.pad(p_vocab.mul_(p_gen), (0, self.n_source))
        copy = att.mul_(1 - p_gen).float()
        return p.scatter_add_(1, self.ext.expand(len(copy), -1), copy).log_()


#: What :func:`gate_targets` asks of ``p_gen`` at a target word (``GATE_NONE``: nothing).
GATE_COPY, GATE_GENERATE, GATE_NONE = 0, 1, -1


def gate_targets(gold: torch.Tensor, source: torch.Tensor, n_facts: int) -> torch.Tensor:
    """(B, L) the copy gate's target at each gold word (corpus ids, (B, L)) of a window whose
    source is ``source`` (B, S; its first ``n_facts`` positions are the fact words):
    ``GATE_COPY`` where the word is among the fact words and not among the comments' words,
    known or not (a word only copying explains), ``GATE_GENERATE`` where the source does not
    hold it (only the vocabulary can say it: ``<EOS>`` and most words), ``GATE_NONE`` where
    both could (a word of the comments) or there is no word.

    Both sides are supervised: with the copy side alone the gate is pushed toward copying at
    every state it cannot tell apart, and it cannot at the first word (one decoder state for
    all of a window's comments): a model so trained put much of the first word's probability
    on copying a name of the facts, and every comment that starts otherwise paid for it."""
    same = source[:, None, :].eq(gold.unsqueeze(-1)) & gold.ne(PAD).unsqueeze(-1)
    in_facts, in_comments = same[..., :n_facts].any(-1), same[..., n_facts:].any(-1)
    out = torch.full_like(gold, GATE_NONE)
    out[gold.ne(PAD) & ~in_facts & ~in_comments] = GATE_GENERATE
    out[in_facts & ~in_comments] = GATE_COPY
    return out
