"""What every backbone decodes the same way: ranking scores (mean token cross-entropy of the
candidates, :func:`mean_token_nll`) and beam search (KLVCG §V-A: beam 5, :func:`beam_search`),
apart from how a backbone reads a word sequence against its memory.

A backbone gives ``next_logp(hyps, step)``: the log-probabilities ``(n, width)`` of the next
word after each open hypothesis (words after ``<BOS>``), and ``reorder(parents)``: keep its
decoder state for the hypotheses that go on (``parents[i]``: the row the i-th came from).
The rules are the same for all: ``<PAD>``, ``<BOS>`` and ``banned`` ids are never said, no
empty comment (no ``<EOS>`` at the first step), only ``<EOS>`` at the last (at most g ids
with ``<BOS>`` and ``<EOS>``), a finished hypothesis scores its mean log-probability over its
words and ``<EOS>``, and the search stops once ``beam`` finished ones beat every open one.

:class:`PrefixDecoder` is the rest for a backbone whose decoder re-reads the whole prefix at
every step (the transformer backbones): it only gives ``decode``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from model.backbones.base import TrainingBatch
from model.data.vocab import BOS, EOS, PAD


def trim(ids: torch.Tensor, least: int = 1) -> torch.Tensor:
    """``ids`` without the trailing columns that are padding everywhere (padding is trailing):
    most comments are far shorter than the longest allowed, and the work is quadratic in it."""
    used = ids.ne(PAD).reshape(-1, ids.shape[-1]).any(dim=0)
    n = int(used.nonzero().max()) + 1 if bool(used.any()) else 0
    return ids[..., : max(n, least)]


def beam_search(
    next_logp: Callable[[list[list[int]], int], torch.Tensor],
    reorder: Callable[[torch.Tensor], None],
    *,
    width: int,
    max_len: int,
    beam: int,
    banned: tuple[int, ...],
    device: torch.device,
) -> list[tuple[list[int], float]]:
    """Up to ``beam`` finished hypotheses ``(word ids without <BOS>/<EOS>, mean
    log-probability)``, best first, over a vocabulary of ``width`` ids and ``max_len`` (g)."""
    g = max_len
    hyps: list[list[int]] = [[]]  # the open hypotheses' words after <BOS>
    logp = torch.zeros(1, device=device)
    finished: list[tuple[list[int], float]] = []
    # what each step adds to the log P: -inf for the words never said, and for <EOS> at the
    # first step (no empty comment); at the last only <EOS> (the comment must close)
    ban = torch.zeros(width, device=device)
    ban[[PAD, BOS, *banned]] = -math.inf
    first, last = ban.clone(), torch.full_like(ban, -math.inf)
    first[EOS], last[EOS] = -math.inf, 0.0
    for step in range(1, g):
        lp = next_logp(hyps, step) + (first if step == 1 else last if step == g - 1 else ban)
        total = (logp.unsqueeze(1) + lp).reshape(-1)
        top, idx = total.topk(min(beam * 2, total.numel()))
        next_hyps, next_logp_values, parents = [], [], []
        for value, i in zip(top.tolist(), idx.tolist(), strict=True):
            if value == -math.inf:
                break
            prev, word = divmod(i, width)
            if word == EOS:
                finished.append((hyps[prev], value / (len(hyps[prev]) + 1)))
            else:
                next_hyps.append([*hyps[prev], word])
                next_logp_values.append(value)
                parents.append(prev)
            if len(next_hyps) == beam:
                break
        best_open = max(next_logp_values, default=-math.inf) / (step + 1)
        if len(finished) >= beam and max(s for _, s in finished) >= best_open:
            break
        if not next_hyps:
            break
        hyps = next_hyps
        logp = torch.tensor(next_logp_values, device=device)
        reorder(torch.tensor(parents, device=device))
    finished.sort(key=lambda h: -h[1])
    return finished[:beam]


def mean_token_nll(
    candidates: torch.Tensor,
    nll_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    rows: int = 512,
) -> torch.Tensor:
    """The ranking score every backbone gives: the mean token cross-entropy of each candidate
    ``(B, C, g)`` -> ``(B, C)``, lower is better. ``nll_of(samples, cand)``: the token NLL
    ``(n, L - 1)`` of ``cand`` (n, L: ``<BOS>`` words ``<EOS>``, trimmed) read against the
    memory rows ``samples`` (n,). Candidates of similar length are decoded together, ``rows``
    at a time, so padding costs almost nothing; an all-``<PAD>`` row (a set smaller than the
    batch's widest) is never decoded and scores +inf, so it never outranks a candidate."""
    b, c, g = candidates.shape
    flat = candidates.reshape(b * c, g)
    lengths = flat.ne(PAD).sum(dim=1)
    out = torch.full((b * c,), math.inf, device=flat.device)
    order = torch.argsort(lengths, stable=True)
    order = order[lengths[order] > 0]
    for start in range(0, len(order), rows):
        idx = order[start : start + rows]
        cand = trim(flat[idx], least=2)
        keep = cand[:, 1:].ne(PAD)
        nll = nll_of(idx // c, cand)
        out[idx] = (nll * keep).sum(1) / keep.sum(1).clamp(min=1)
    return out.reshape(b, c)


class PrefixDecoder:
    """What a backbone whose decoder reads the whole prefix at every step shares (a mixin of
    :class:`model.backbones.base.Backbone`): it gives ``decode(memory, tgt_in)``, the logits
    ``(B, len, vocab)`` after each word of ``tgt_in``; this gives each word's cross-entropy,
    the teacher-forced generation loss, the ranking scores and beam search (no decoder state
    is kept: each step decodes the hypotheses' whole prefixes)."""

    cfg: Any

    def decode(self, memory: Any, tgt_in: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _device(self) -> torch.device:
        return next(self.parameters()).device  # type: ignore[attr-defined]

    def token_nll(self, memory: Any, seqs: torch.Tensor) -> torch.Tensor:
        """-log P of each next word of ``seqs`` (B, len) = <BOS> words <EOS> <PAD>...:
        (B, len-1), 0 at padding."""
        gold = seqs[:, 1:]
        logits = self.decode(memory, seqs[:, :-1]).float()
        nll = F.cross_entropy(logits.transpose(1, 2), gold, ignore_index=PAD, reduction="none")
        return nll * gold.ne(PAD)

    def generation_loss(
        self, memory: Any, batch: TrainingBatch, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Teacher-forced cross-entropy of the ground truths (of ``rows`` only: those rows of
        the memory and the batch), mean over their words."""
        targets = batch.targets if rows is None else batch.targets[rows.cpu().numpy()]
        targets = torch.as_tensor(batch.space.to_model(targets), dtype=torch.long)
        targets = trim(targets.to(self._device()), least=2)
        if rows is not None:
            memory = memory.select(rows.to(targets.device))
        words = targets[:, 1:].ne(PAD).sum().clamp(min=1)
        return self.token_nll(memory, targets).sum() / words

    @torch.no_grad()
    def score(self, memory: Any, candidates: torch.Tensor, rows: int = 512) -> torch.Tensor:
        """Mean token cross-entropy of each candidate (B, C, g) -> (B, C), lower is better;
        +inf for an all-padding row (:func:`mean_token_nll`)."""
        return mean_token_nll(
            candidates, lambda samples, cand: self.token_nll(memory.select(samples), cand), rows
        )

    @torch.no_grad()
    def generate(
        self, memory: Any, beam: int = 5, banned: tuple[int, ...] = ()
    ) -> list[tuple[list[int], float]]:
        """Beam search for ONE context (:func:`beam_search`): up to ``beam`` comments (ids
        without <BOS>/<EOS>, at most g ids with them) with their mean log-probability, best
        first; never ``banned`` ids, never an empty comment."""
        device = self._device()

        def next_logp(hyps: list[list[int]], step: int) -> torch.Tensor:
            seqs = torch.tensor([[BOS, *h] for h in hyps], device=device)
            mem = memory.select(torch.zeros(len(hyps), dtype=torch.long, device=device))
            return F.log_softmax(self.decode(mem, seqs)[:, -1].float(), dim=-1)

        return beam_search(
            next_logp,
            lambda parents: None,  # no state kept: each step reads the whole prefix
            width=self.cfg.vocab_size,
            max_len=self.cfg.max_len,
            beam=beam,
            banned=banned,
            device=device,
        )
