"""The engaging live-comment generator trained with "like" counts (the iQIYI paper: "Engaging
Live Video Comments Generation", ACM MM 2024 submission), the backbone ``engaging``
(:mod:`model.backbones.base`).

What the paper gives:

- §3.1/§4.3, eq. (9): like counts y become like scores by the Box-Cox transformation,
  s = (y^lambda - 1) / lambda (lambda != 0), ln y (lambda = 0).
- §4.3, eqs. (10)-(11), competitive context selection: for each comment at t, two comments of
  [t-5, t+5] are drawn at random; if their scores differ by more than d = 0.4, the higher is
  the high-attention context c_high, the lower c_low.
- §4.2, eqs. (3)-(8): a visual encoder (ViT) of the frame, a text encoder (transformer) of the
  subtitle, and a decoder over {c_high, c_low, c*} concatenated (eq. 5) whose layers fuse the
  modalities residually: out_c = Att(e, e, e); out_cf = Att(out_c, e_f, e_f) + gamma1 out_c;
  out_cfs = Att(out_cf, e_s, e_s) + gamma2 out_cf; then a feed-forward layer; gamma1 = gamma2
  = 0.11 (Table 2). "During the test phase, contextual comments can be provided".
- §4.4: L_MLE (eq. 12) over the union of c_high, c_low and c* (eq. 13); a comment's
  representation h is the mean of its tokens' hidden states; with cosine similarity s:
  L_HCL = max{rho1 - s(h_t, h_h) - s(h_t, h_t), 0} (eq. 14), L_LCL = max{rho2 + s(h_t, h_l) -
  s(h_t, h_t), 0} (eq. 15), L_JCL1 = max{rho3 + s(h_t, h_l) - s(h_t, h_h) - s(h_t, h_t), 0}
  (eqs. 16-17), L_JCL2 = -log(e^{s(h_t,h_h)/tau} / (e^{s(h_t,h_h)/tau} + e^{s(h_t,h_l)/tau}))
  (eq. 18); L_ISG = L_MLE + L_HCL + L_LCL (eq. 19, the main model), L_JSG = L_MLE + L_JCL
  (eq. 20). rho1, rho2, rho3 = 1.5, 0.5, 1.6; tau = 0.05 (§5.1). Table 4's rows: ``isg``
  (default), ``jsg1`` (MLE + JCL1), ``jsg2`` (MLE + JCL2), ``mle`` (MLE alone); ``default``,
  ``jcl1`` and ``jcl2`` are accepted as other names of ``isg``, ``jsg1`` and ``jsg2``.
- Table 2: hidden size 512, AdamW, batch 128, lr 3e-4: ``--preset paper``.

What we chose (the paper does not say, or our data differs):

- lambda: the paper prints none. We fix lambda = -1 on y + 1 (a count of 0 is allowed):
  s = 1 - 1/(y+1) lies in [0, 1), the scale on which the paper's d = 0.4 and its mean score
  (0.32, Table 1) read naturally (0 likes against 1 or more, 1 like against 10 or more).
  ``like_lambda`` sets it.
- The window's comments are our per-second context rows (the k-th stretch between
  ``<&&&>`` of a row is the comment whose count ``Batch.context_likes`` holds; the other
  videos' row is not the window), plus, in training, the other ground truths of the same
  sample (``TrainingBatch.owner``; they are comments at t). The ground truth itself is never
  its own context. Training draws a pair uniformly among all pairs whose gap exceeds d (the
  paper's "draw two, keep them if the gap exceeds d", without a retry limit); scoring and
  generation take the window's highest- and lowest-scored comments if their gap exceeds d.
- Without a pair (a video without counts, ``has_likes`` False, or no gap above d) the two
  comments nearest to t are the context and no contrastive term is computed for that row
  (L_MLE only); an empty or missing context comment is an empty segment.
- The term s(h_t, h_t) of eqs. (14), (15), (17) is the cosine of a vector with itself, 1, so
  the hinges are zero once s(h_t, h_h) >= rho1 - 1, s(h_t, h_l) <= 1 - rho2, and
  s(h_t, h_h) - s(h_t, h_l) >= rho3 - 1. h_t averages the ground truth's hidden states
  (<BOS> to <EOS>), h_h and h_l the context comments' words; the decoder is causal, so each
  context comment's states see only the comments before it.
- Decoder input: ``[CLS] c_high <&&&> c_low <&&&> <BOS> c* <EOS>``; L_MLE is the mean
  cross-entropy of every token after ``[CLS]``; ranking scores the ground truth's tokens only
  (the shared mean token cross-entropy), given the inference context.
- Encoders: the window's frame features (ours arrive as features; a missing second gets a
  learned vector) -> linear -> + sinusoidal position -> transformer encoder (the ViT's
  place); the subtitle row (``Batch.subtitle``: ``[CLS]`` and the window's subtitle lines)
  -> shared word embeddings -> transformer encoder. Each decoder layer is pre-norm: the
  self-attention keeps its usual residual; the two modal attentions are added to the stream
  weighted by gamma (out_cf = out_c + gamma1 Att(out_c, e_f, e_f), likewise gamma2), then a
  feed-forward layer with its residual. Eqs. (7)-(8) print gamma on out_c instead, but Table 2
  calls gamma the "modal weight", and weighting the stream by 0.11 in every layer shrinks the
  words' own signal so far that a small decoder cannot even fit one batch. Layer counts are
  not given: 2 encoder layers (their inputs are already features or short lines), 6 decoder
  layers, 8 heads, feed-forward 2048, dropout 0.1 (a base transformer) in ``paper``; epochs
  are the trainer's. ``cpu``: d = 128, 2 decoder layers, 4 heads, no dropout, lr 1e-3.

No knowledge input, no copy path; one stage, fine-tuning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.backbones.base import FINETUNE, Backbone, SavedConfig, Stage, TrainingBatch, register
from model.backbones.decoding import beam_search, mean_token_nll, trim
from model.backbones.transformer_parts import causal_mask, init_weights, sinusoid
from model.config import TrainConfig
from model.data.vocab import BOS, EOS, PAD, SEP
from model.encoded_split import Batch

#: Table 4's rows: the loss each trains with (eqs. 19-20).
OBJECTIVES = ("isg", "jsg1", "jsg2", "mle")
DEFAULT_ROW = "isg"
ALIASES = {"default": "isg", "jcl1": "jsg1", "jcl2": "jsg2"}
#: The segments of the decoder's sequence.
SEG_PAD, SEG_START, SEG_HIGH, SEG_LOW, SEG_TARGET = range(5)


@dataclass(frozen=True)
class EngagingConfig(SavedConfig):
    """Sizes and loss settings (module docstring); ``objective`` is the ablation row."""

    name: ClassVar[str] = "engaging"
    vocab_size: int  # the corpus vocabulary plus [MASK] and [CLS]
    frame_dim: int
    d_model: int = 512
    heads: int = 8
    encoder_layers: int = 2
    decoder_layers: int = 6
    d_ff: int = 2048
    dropout: float = 0.1
    gamma1: float = 0.11  # eq. (7)
    gamma2: float = 0.11  # eq. (8)
    like_lambda: float = -1.0  # Box-Cox lambda on likes + 1 (ours: the paper prints none)
    gap: float = 0.4  # d, eq. (11)
    rho1: float = 1.5  # eq. (14)
    rho2: float = 0.5  # eq. (15)
    rho3: float = 1.6  # eq. (17)
    tau: float = 0.05  # eq. (18)
    objective: str = DEFAULT_ROW
    radius: int = 5  # the context window [t-l, t+l]: the paper's t +- 5
    max_len: int = 20  # g: the words of a comment, <BOS> and <EOS> included
    max_step_len: int = 32  # words of one second's comments (with [CLS] and separators)
    max_knowledge_len: int = 80  # encoded with the split; not read
    copy: bool = False  # no copy path
    copy_known_comment_words: bool = False

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by {self.heads} heads")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}: one of {OBJECTIVES}")
        if self.copy or self.copy_known_comment_words:
            raise ValueError("engaging has no copy path")
        if self.max_len < 3:
            raise ValueError("max_len counts <BOS> and <EOS>: it must be at least 3")


#: Each preset's sizes over the config's defaults (the paper's).
PRESET_SIZES = {
    "paper": {},
    "cpu": {
        "d_model": 128,
        "heads": 4,
        "decoder_layers": 2,
        "d_ff": 512,
        "dropout": 0.0,
        "max_step_len": 16,
    },
}


#: Training over the preset's (model.config.preset_training): Table 2's batch and lr (AdamW).
PRESET_TRAINING = {"paper": {"batch_size": 128, "lr": 3e-4}, "cpu": {}}


# -- like scores and competitive context selection (pure functions) -------------------------


def boxcox(likes: torch.Tensor | np.ndarray, lam: float) -> torch.Tensor:
    """Eq. (9) on ``likes + 1`` (a count may be 0): ((y+1)^lam - 1) / lam, ln(y+1) at 0."""
    y = torch.as_tensor(likes, dtype=torch.float64) + 1.0
    if lam == 0:
        return torch.log(y)
    return (y.pow(lam) - 1.0) / lam


def select_pairs(
    scores: torch.Tensor,
    present: torch.Tensor,
    gap: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eqs. (10)-(11) for each row of a pool ``(T, Q)`` of comments: ``scores`` (nan: no
    score), ``present`` (bool: the comment is in the row's window). Returns (high, low, ok):
    with a ``generator``, a pair drawn uniformly among those whose score gap exceeds ``gap``;
    without, the highest- and lowest-scored comments if their gap exceeds it; ``ok`` False
    where no pair qualifies (high and low then undefined)."""
    valid = present & ~torch.isnan(scores)
    s = torch.nan_to_num(scores, nan=0.0)
    if generator is None:
        hi = torch.where(valid, s, -math.inf).argmax(1)
        lo = torch.where(valid, s, math.inf).argmin(1)
        rows = torch.arange(len(s), device=s.device)
        ok = valid.any(1) & (s[rows, hi] - s[rows, lo] > gap)
        return hi, lo, ok
    t, q = s.shape
    eligible = (s[:, :, None] - s[:, None, :] > gap) & valid[:, :, None] & valid[:, None, :]
    draw = torch.rand((t, q, q), generator=generator).to(s.device)
    flat = torch.where(eligible, draw, -1.0).reshape(t, -1).argmax(1)
    return flat // q, flat % q, eligible.reshape(t, -1).any(1)


def nearest_two(present: torch.Tensor, priority: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The two present comments of lowest ``priority`` (nearest t) per row, and whether each
    exists: the context without a competitive pair."""
    p = torch.where(present, priority.float(), math.inf)
    first = p.argmin(1)
    has_first = present.any(1)
    p = p.scatter(1, first[:, None], math.inf)
    second = p.argmin(1)
    return first, second, has_first, torch.isfinite(p.gather(1, second[:, None])).squeeze(1)


def split_comments(rows: torch.Tensor, comments: int, width: int, cls_id: int) -> torch.Tensor:
    """Rows ``(B, R, n)`` (``[CLS] c1 <&&&> c2 ...``) -> ``(B, R, comments, width)``: the words
    of the k-th stretch between separators of each row, padded."""
    b, r, n = rows.shape
    sep = rows.eq(SEP)
    word = rows.ne(PAD) & ~sep & rows.ne(cls_id)
    k = sep.long().cumsum(-1)
    counted = word.long().cumsum(-1)
    base = torch.where(sep, counted, torch.zeros_like(counted)).cummax(-1).values
    pos = counted - base - 1
    keep = word & (k < comments) & (pos < width)
    slot = torch.where(keep, k * width + pos, torch.full_like(k, comments * width))
    out = torch.full((b, r, comments * width + 1), PAD, dtype=rows.dtype, device=rows.device)
    out.scatter_(-1, slot, torch.where(keep, rows, torch.full_like(rows, PAD)))
    return out[..., :-1].reshape(b, r, comments, width)


# -- the hinge and contrastive losses (pure functions) ---------------------------------------


def contrastive_terms(
    h_t: torch.Tensor, h_h: torch.Tensor, h_l: torch.Tensor, cfg: EngagingConfig
) -> dict[str, torch.Tensor]:
    """Per row ``(T,)``: eqs. (14), (15), (16)-(17) and (18) of representations ``(T, d)``."""
    s_h = F.cosine_similarity(h_t, h_h, dim=-1)
    s_l = F.cosine_similarity(h_t, h_l, dim=-1)
    s_t = F.cosine_similarity(h_t, h_t, dim=-1)  # 1: the paper's s(h_t, h_t) term
    pair = torch.stack([s_h, s_l], dim=-1) / cfg.tau
    return {
        "hcl": (cfg.rho1 - s_h - s_t).clamp(min=0),
        "lcl": (cfg.rho2 + s_l - s_t).clamp(min=0),
        "jcl1": (cfg.rho3 + s_l - s_h - s_t).clamp(min=0),
        "jcl2": -F.log_softmax(pair, dim=-1)[..., 0],
    }


def objective_terms(objective: str) -> tuple[str, ...]:
    """The contrastive terms a row adds to L_MLE (eqs. 19-20, Table 4)."""
    return {"isg": ("hcl", "lcl"), "jsg1": ("jcl1",), "jsg2": ("jcl2",), "mle": ()}[objective]


# -- the model --------------------------------------------------------------------------------


@dataclass
class EngagingMemory:
    """The encodings and the window's comments (words and like scores) of each context."""

    frames: torch.Tensor  # (B, 2l+1, d) e_f
    subtitle: torch.Tensor  # (B, s+1, d) e_s
    subtitle_pad: torch.Tensor  # (B, s+1) bool
    comments: torch.Tensor  # (B, P, L) the window's comments' words, P = 2l * c
    scores: torch.Tensor  # (B, P) float: like scores, nan without a count

    def select(self, idx: torch.Tensor) -> EngagingMemory:
        return EngagingMemory(
            self.frames[idx],
            self.subtitle[idx],
            self.subtitle_pad[idx],
            self.comments[idx],
            self.scores[idx],
        )


class FusionLayer(nn.Module):
    """Eqs. (6)-(8), pre-norm: causal self-attention, + gamma1 * frame attention,
    + gamma2 * subtitle attention (Table 2's "modal weight": module docstring), feed-forward."""

    def __init__(self, cfg: EngagingConfig) -> None:
        super().__init__()
        d, h, p = cfg.d_model, cfg.heads, cfg.dropout
        self.self_attn = nn.MultiheadAttention(d, h, dropout=p, batch_first=True)
        self.frame_attn = nn.MultiheadAttention(d, h, dropout=p, batch_first=True)
        self.subtitle_attn = nn.MultiheadAttention(d, h, dropout=p, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, cfg.d_ff), nn.ReLU(), nn.Linear(cfg.d_ff, d))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(4))
        self.drop = nn.Dropout(p)
        self.gamma1, self.gamma2 = cfg.gamma1, cfg.gamma2

    def forward(self, y, causal, y_pad, mem: EngagingMemory) -> torch.Tensor:
        x = self.norms[0](y)
        out_c = y + self.drop(self.self_attn(x, x, x, attn_mask=causal, key_padding_mask=y_pad)[0])
        x = self.norms[1](out_c)
        f = self.frame_attn(x, mem.frames, mem.frames, need_weights=False)[0]
        out_cf = out_c + self.gamma1 * self.drop(f)
        x = self.norms[2](out_cf)
        s = self.subtitle_attn(x, mem.subtitle, mem.subtitle, key_padding_mask=mem.subtitle_pad)
        out_cfs = out_cf + self.gamma2 * self.drop(s[0])
        return out_cfs + self.drop(self.ff(self.norms[3](out_cfs)))


@register("engaging")
class Engaging(Backbone):
    """The backbone ``engaging`` (the module docstring says what each part is)."""

    config_class: ClassVar[type] = EngagingConfig
    preset_sizes = PRESET_SIZES
    preset_training = PRESET_TRAINING

    @classmethod
    def row_settings(cls, row: str) -> dict:
        return {"objective": row}  # the row is the loss

    rows: ClassVar[tuple[str, ...]] = (DEFAULT_ROW, *(o for o in OBJECTIVES if o != DEFAULT_ROW))
    row_aliases: ClassVar[dict[str, str]] = ALIASES

    def __init__(self, cfg: EngagingConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.embed = nn.Embedding(cfg.vocab_size, d, padding_idx=PAD)  # decoder and E_T
        self.frame_proj = nn.Linear(cfg.frame_dim, d)
        self.missing_frame = nn.Parameter(torch.zeros(d))

        def encoder() -> nn.TransformerEncoder:
            layer = nn.TransformerEncoderLayer(
                d, cfg.heads, cfg.d_ff, cfg.dropout, batch_first=True, norm_first=True
            )
            return nn.TransformerEncoder(
                layer, cfg.encoder_layers, nn.LayerNorm(d), enable_nested_tensor=False
            )

        self.frame_encoder = encoder()  # E_V
        self.subtitle_encoder = encoder()  # E_T
        self.decoder = nn.ModuleList(FusionLayer(cfg) for _ in range(cfg.decoder_layers))
        self.final_norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, cfg.vocab_size)
        self.drop = nn.Dropout(cfg.dropout)
        # [CLS] high <&&&> low <&&&> target: a context comment is a row's stretch or, in
        # training, another ground truth of the sample
        n_pos = 2 * max(cfg.max_step_len, cfg.max_len) + cfg.max_len + 3
        self.register_buffer("position", sinusoid(n_pos, d), persistent=False)
        init_weights(self, self.embed)

    # -- configuration ----------------------------------------------------------------------

    def stages(self, train: TrainConfig) -> tuple[Stage, ...]:
        return (Stage(FINETUNE, train.epochs, train.lr, use_kg=False),)

    # -- encoders ---------------------------------------------------------------------------

    def encode(self, batch: Batch, use_kg: bool = True) -> EngagingMemory:
        """e_f, e_s and the window's comments with their like scores (no facts are read)."""
        d = self.cfg.d_model
        frames = self.frame_proj(batch.frames)
        present = batch.frame_mask.unsqueeze(-1)
        frames = torch.where(present, frames, self.missing_frame.expand_as(frames))
        pos = sinusoid(max(frames.shape[1], batch.subtitle.shape[1]), d).to(frames.device)
        e_f = self.frame_encoder(self.drop(frames + pos[: frames.shape[1]]))
        sub = batch.subtitle
        sub_pad = sub.eq(PAD)
        sub_pad[:, 0] = False  # [CLS] is always there: a window without subtitles reads it
        x = self.embed(sub) * math.sqrt(d) + pos[: sub.shape[1]]
        e_s = self.subtitle_encoder(self.drop(x), src_key_padding_mask=sub_pad)

        l2 = 2 * self.cfg.radius
        likes = batch.context_likes[:, :l2]  # (B, 2l, c): the window, not the other videos
        words = split_comments(
            batch.rows[:, :l2], likes.shape[-1], self.cfg.max_step_len, self.cfg.vocab_size - 1
        )
        b = len(frames)
        scores = boxcox(likes.clamp(min=0), self.cfg.like_lambda).float()
        counted = (likes >= 0) & batch.has_likes[:, None, None]
        scores = torch.where(counted, scores, torch.full_like(scores, math.nan))
        comments = trim(words.reshape(b, -1, words.shape[-1]))
        return EngagingMemory(e_f, e_s, sub_pad, comments, scores.reshape(b, -1))

    def _priority(self, c: int, device) -> torch.Tensor:
        """(2l * c,) the order of the window's comments by distance to t (earlier first)."""
        r = self.cfg.radius
        seconds = torch.tensor([s for s in range(-r, r + 1) if s != 0], device=device)
        return (seconds.abs() * 2 + (seconds > 0)).repeat_interleave(c) * c + torch.arange(
            c, device=device
        ).repeat(2 * r)

    # -- the decoder's sequence -------------------------------------------------------------

    def _sequence(
        self, high: torch.Tensor, low: torch.Tensor, tail: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``[CLS] high <&&&> low <&&&> tail`` (eq. 5) per row, the padding squeezed out of
        the context: (ids, segments, where the tail starts)."""
        n = len(tail)
        dev = tail.device
        one = torch.ones(n, 1, dtype=torch.long, device=dev)
        ctx = torch.cat([one * (self.cfg.vocab_size - 1), high, one * SEP, low, one * SEP], 1)
        seg = torch.cat(
            [
                one * SEG_START,
                torch.full_like(high, SEG_HIGH),
                one * SEG_HIGH,
                torch.full_like(low, SEG_LOW),
                one * SEG_LOW,
            ],
            1,
        )
        pad = ctx.eq(PAD)
        order = torch.argsort(pad.to(torch.int8), dim=1, stable=True)
        ctx, seg = ctx.gather(1, order), seg.gather(1, order)
        seg = torch.where(ctx.eq(PAD), SEG_PAD, seg)
        start = (~pad).sum(1)
        width = int(start.max()) + tail.shape[1]
        ids = torch.full((n, width), PAD, dtype=torch.long, device=dev)
        segs = torch.full_like(ids, SEG_PAD)
        ids[:, : ctx.shape[1]] = ctx
        segs[:, : ctx.shape[1]] = seg
        cols = start[:, None] + torch.arange(tail.shape[1], device=dev)
        ids = ids.scatter(1, cols, tail)
        tail_seg = torch.where(tail.eq(PAD), SEG_PAD, SEG_TARGET)
        segs = segs.scatter(1, cols, tail_seg)
        return ids, segs, start

    def _context(self, memory: EngagingMemory) -> tuple[torch.Tensor, torch.Tensor]:
        """The inference context (module docstring) of each memory row: (high, low) words."""
        c = memory.comments
        present = c.ne(PAD).any(-1)
        hi, lo, ok = select_pairs(memory.scores, present, self.cfg.gap)
        return self._gather_context(c, present, hi, lo, ok, c.shape[1])

    def _gather_context(
        self, pool, present, hi, lo, ok, n_context: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The words of the pair (hi, lo) where ``ok``, else of the two window comments
        (the pool's first ``n_context``) nearest t: (high, low), each (T, L)."""
        c = max(1, n_context // (2 * self.cfg.radius))
        prio = torch.full((pool.shape[1],), math.inf, device=pool.device)
        prio[:n_context] = self._priority(c, pool.device)[:n_context].float()
        window = present.clone()
        window[:, n_context:] = False
        first, second, has1, has2 = nearest_two(window, prio)
        hi = torch.where(ok, hi, first)
        lo = torch.where(ok, lo, second)
        rows = torch.arange(len(pool), device=pool.device)
        high = torch.where((ok | has1)[:, None], pool[rows, hi], PAD)
        low = torch.where((ok | has2)[:, None], pool[rows, lo], PAD)
        return high, low

    def decode(self, mem: EngagingMemory, seqs: torch.Tensor) -> torch.Tensor:
        """The final hidden states (B, len, d) of ``seqs``."""
        n = seqs.shape[1]
        y = self.drop(self.embed(seqs) * math.sqrt(self.cfg.d_model) + self.position[:n])
        pad = seqs.eq(PAD)
        pad[:, 0] = False
        causal = causal_mask(n).to(seqs.device)
        for layer in self.decoder:
            y = layer(y, causal, pad, mem)
        return self.final_norm(y)

    def _token_nll(self, hidden: torch.Tensor, seqs: torch.Tensor) -> torch.Tensor:
        """-log P of each next token of ``seqs``: (B, len-1), 0 at padding."""
        gold = seqs[:, 1:]
        logits = self.out(hidden[:, :-1]).float()
        nll = F.cross_entropy(logits.transpose(1, 2), gold, ignore_index=PAD, reduction="none")
        return nll * gold.ne(PAD)

    # -- training ---------------------------------------------------------------------------

    def loss_terms(
        self, memory: EngagingMemory, batch: TrainingBatch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """L_MLE (scalar), the contrastive terms per row (T,), and which rows have a pair."""
        dev = memory.frames.device
        targets = torch.as_tensor(batch.space.to_model(batch.targets), dtype=torch.long)
        targets = trim(targets.to(dev), least=2)
        t = len(targets)
        # the pool: the window's comments, then the other ground truths of the same sample
        owner = np.arange(t) if batch.owner is None else np.asarray(batch.owner)
        same = (owner[:, None] == owner[None, :]) & ~np.eye(t, dtype=bool)
        m = max(1, int(same.sum(1).max()) if t else 1)
        others = np.argsort(~same, axis=1, kind="stable")[:, :m]
        others_ok = torch.as_tensor(np.take_along_axis(same, others, 1), device=dev)
        others = torch.as_tensor(others, device=dev)
        truth_words = targets[:, 1:].masked_fill(targets[:, 1:].eq(EOS), PAD)
        width = max(memory.comments.shape[-1], truth_words.shape[-1])
        pool = torch.cat(
            [
                F.pad(memory.comments, (0, width - memory.comments.shape[-1]), value=PAD),
                F.pad(truth_words, (0, width - truth_words.shape[-1]), value=PAD)[others],
            ],
            1,
        )
        present = pool.ne(PAD).any(-1)
        present[:, memory.comments.shape[1] :] &= others_ok
        has = torch.zeros(t, dtype=torch.bool, device=dev)
        truth_scores = torch.full((t,), math.nan, device=dev)
        if batch.likes is not None and batch.has_likes is not None:
            has = torch.as_tensor(np.asarray(batch.has_likes, dtype=bool), device=dev)
            s = boxcox(np.asarray(batch.likes).clip(min=0), self.cfg.like_lambda).float()
            truth_scores = torch.where(has, s.to(dev), math.nan)
        scores = torch.cat([memory.scores, truth_scores[others]], 1)
        scores = torch.where(has[:, None], scores, math.nan)
        hi, lo, ok = select_pairs(scores, present, self.cfg.gap, batch.generator)
        high, low = self._gather_context(pool, present, hi, lo, ok, memory.comments.shape[1])

        seqs, segs, _ = self._sequence(trim(high), trim(low), targets)
        hidden = self.decode(memory, seqs)
        nll = self._token_nll(hidden, seqs)
        mle = nll.sum() / seqs[:, 1:].ne(PAD).sum().clamp(min=1)

        def mean_of(seg: int) -> torch.Tensor:
            w = (segs.eq(seg) & seqs.ne(SEP)).unsqueeze(-1).float()
            return (hidden * w).sum(1) / w.sum(1).clamp(min=1)

        h_t, h_h, h_l = mean_of(SEG_TARGET), mean_of(SEG_HIGH), mean_of(SEG_LOW)
        terms = contrastive_terms(h_t, h_h, h_l, self.cfg)
        return mle, terms, ok

    def loss(self, memory: EngagingMemory, batch: TrainingBatch, stage: str) -> torch.Tensor:
        """Eq. (19) (``isg``) or (20) (``jsg1``, ``jsg2``), or L_MLE alone (``mle``); the
        contrastive terms average over the rows that have a competitive pair."""
        if stage != FINETUNE:
            raise ValueError(f"engaging has no training stage {stage!r}")
        mle, terms, ok = self.loss_terms(memory, batch)
        total = mle
        w = ok.float()
        for name in objective_terms(self.cfg.objective):
            total = total + (terms[name] * w).sum() / w.sum().clamp(min=1)
        return total

    # -- ranking and generation -------------------------------------------------------------

    def _tail_nll(self, memory: EngagingMemory, cand: torch.Tensor) -> torch.Tensor:
        """-log P of each token after <BOS> of ``cand`` (n, L) given the inference context:
        (n, L-1)."""
        high, low = self._context(memory)
        seqs, _, start = self._sequence(trim(high), trim(low), cand)
        nll = self._token_nll(self.decode(memory, seqs), seqs)
        cols = start[:, None] + torch.arange(cand.shape[1] - 1, device=cand.device)
        return nll.gather(1, cols)

    @torch.no_grad()
    def score(self, memory: EngagingMemory, candidates: torch.Tensor, rows: int = 512):
        """Mean token cross-entropy of each candidate (B, C, g) -> (B, C), lower is better;
        +inf for an all-padding row (:func:`model.backbones.decoding.mean_token_nll`)."""
        return mean_token_nll(
            candidates, lambda samples, cand: self._tail_nll(memory.select(samples), cand), rows
        )

    @torch.no_grad()
    def generate(
        self, memory: EngagingMemory, beam: int = 5, banned: tuple[int, ...] = ()
    ) -> list[tuple[list[int], float]]:
        """Beam search for ONE context after its inference context comments: up to ``beam``
        hypotheses ``(ids without <BOS>/<EOS>, mean log-probability)``, best first."""
        device = memory.frames.device
        high, low = self._context(memory)
        bos = torch.full((1, 1), BOS, device=device)
        prefix, _, start = self._sequence(trim(high), trim(low), bos)
        prefix = prefix[:, : int(start[0]) + 1]  # the context and <BOS>

        def next_logp(hyps: list[list[int]], step: int) -> torch.Tensor:
            tail = torch.tensor(hyps, dtype=torch.long, device=device).reshape(len(hyps), -1)
            seqs = torch.cat([prefix.expand(len(hyps), -1), tail], 1)
            mem = memory.select(torch.zeros(len(hyps), dtype=torch.long, device=device))
            return F.log_softmax(self.out(self.decode(mem, seqs)[:, -1]).float(), dim=-1)

        return beam_search(
            next_logp,
            lambda parents: None,  # no state kept: each step reads the whole prefix
            width=self.cfg.vocab_size,
            max_len=self.cfg.max_len,
            beam=beam,
            banned=banned,
            device=device,
        )
