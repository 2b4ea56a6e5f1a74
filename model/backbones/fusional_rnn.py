"""LiveBot's Fusional RNN (Ma et al. 2019, "LiveBot", section "Model I: Fusional RNN Model",
Fig. 5), the backbone ``fusional_rnn`` (:mod:`model.backbones.base`).

What the paper gives:

- Video encoder, eqs. (1)-(2): each of the m frames is encoded by a CNN (v_i), then an LSTM
  over the frame vectors gives h_i.
- Text encoder, eqs. (3)-(5): a word-level LSTM reads each surrounding comment C_i; its last
  hidden state is x_i. A sentence-level LSTM reads x_1..x_n (ĝ_i = LSTM(x_i, g_{i-1})), and
  attention to the video states gives g_i = Attention(ĝ_i, h), "so the comment
  representation contains the information from videos".
- Comment decoder, eqs. (6)-(9): ŝ_i = LSTM(y_{i-1}, s_{i-1}), s_i = Attention(ŝ_i, h, g),
  p(w_i) = Softmax(W s_i).
- Inputs (section "Problem Formulation"; section "Results": the "Both" setting): the m = 5
  frames (one a second) and n = 5 comments nearest the time stamp.
- Section "Experiments / Settings": word embeddings of 512 shared between encoder and
  decoder, hidden size 512, batch 64, Adam with lr 3e-4 (beta 0.9/0.999, eps 1e-8),
  ResNet-18 frame features, the 30,000 most frequent words. The released code has no Fusional
  RNN; everything below follows the equations.

What we chose (the paper does not say):

- Frames: our data gives precomputed CNN features per second of [t-5, t+5], so eq. (1) is a
  linear projection of the feature to the embedding size (a second without a feature gets a
  learned "missing frame" vector, as in KLVCG); the m = 5 frames nearest t are t-2..t+2
  (``n_frames``), read by a one-layer LSTM (eq. 2).
- Comments: the paper encodes *comments* one by one (eq. 3), so each context second's row is
  split on LiveBot's ``<&&&>`` separator into its comments (a row is ``[CLS] c1 <&&&> c2 ...``;
  ``[CLS]`` and padding are dropped; a comment the row's cut left without words is dropped).
  Treating a whole second as one "sentence" would merge several comments into one x_i, which
  is not the paper's hierarchy. The n = 5 (``n_comments``) comments nearest t are those of
  the context seconds nearest t (t-1, t+1, t-2, t+2, ...: the earlier second first when two
  are as near), a second's comments in the row's order (they share the second: the data has
  no finer time); comments of t itself are the targets, never context; the row of other
  videos' comments is not read (LiveBot has none). The chosen comments are read in time
  order by the sentence-level LSTM. A window without any comment reads one comment made of
  ``[CLS]`` alone, so the text memory is never empty.
- "Attention" (eqs. 5 and 8) is Luong et al. (2015)'s "general" attention: scores
  ``q W_a k``, a softmax over the keys, and the output ``tanh(W_c [q; context])``; eq. (8)
  attends to h and to g separately (one W_a each) and combines ``[ŝ_i; c_h; c_g]``.
- Eqs. (4) and (7) feed the previous *attended* vector back as the LSTM's hidden state (the
  LSTM's cell state is carried as usual), as written: so both LSTMs step one position at a
  time (``nn.LSTMCell``). The sentence-level state starts at zero; the decoder's hidden state
  starts at ``tanh(W [h_m; g_n])`` (the last video state and the last comment state, as
  S2S-IC's bridge in :mod:`model.backbones.s2s`), its cell state at zero.
- The word-level LSTM shares the embedding with the decoder (the paper's "shared embedding
  between encoder and decoder"). Dropout 0.1 on the embeddings and before the output layer in
  ``paper`` (not given); AdamW with weight decay 0 is the paper's Adam; the trainer's warm-up,
  linear decay and default epochs are kept. ``cpu``: sizes 128, no dropout, lr 1e-3.

One stage, fine-tuning: teacher-forced cross-entropy. Ranking: the mean token cross-entropy
of each candidate; generation: the shared length-normalised beam search, the decoder's
(s, c) state reordered with the hypotheses. No knowledge input (``encode`` ignores
``use_kg``), no copy path, one ablation row (``default``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from model.backbones.base import FINETUNE, Backbone, SavedConfig, Stage, TrainingBatch, register
from model.backbones.decoding import beam_search, mean_token_nll, trim
from model.config import TrainConfig
from model.data.vocab import BOS, PAD, SEP
from model.encoded_split import Batch


@dataclass(frozen=True)
class FusionalRNNConfig(SavedConfig):
    """The config of ``fusional_rnn``; sizes are the paper's (module docstring)."""

    name: ClassVar[str] = "fusional_rnn"
    vocab_size: int  # the corpus vocabulary plus [MASK] and [CLS]
    frame_dim: int
    embed_dim: int = 512
    hidden: int = 512
    dropout: float = 0.1
    n_frames: int = 5  # m: the frames nearest t, t-2..t+2
    n_comments: int = 5  # n: the context comments nearest t
    radius: int = 5  # the encoded window [t-l, t+l] (KLVCG's: one encoded split for all)
    max_len: int = 20  # g: words of a comment including <BOS> and <EOS>
    max_step_len: int = 32  # words of one second's comments (with [CLS] and separators)
    max_knowledge_len: int = 80  # the data's fact words (encoded, never read here)
    copy: bool = False  # no copy path (model.word_ids.WordSpace): always False
    copy_known_comment_words: bool = False  # likewise

    def __post_init__(self) -> None:
        if self.max_len < 3:
            raise ValueError("max_len counts <BOS> and <EOS>: it must be at least 3")
        if not 1 <= self.n_frames <= 2 * self.radius + 1:
            raise ValueError(f"n_frames must be within the window's {2 * self.radius + 1}")
        if self.n_comments < 1:
            raise ValueError("n_comments must be at least 1")
        if self.copy or self.copy_known_comment_words:
            raise ValueError(f"{self.name} has no copy path")


#: Each preset's sizes over the config's defaults (the paper's).
PRESET_SIZES = {
    "paper": {},
    "cpu": {"embed_dim": 128, "hidden": 128, "dropout": 0.0, "max_step_len": 16},
}


#: Training over the preset's (model.config.preset_training): the paper's batch, lr and Adam.
PRESET_TRAINING = {"paper": {"batch_size": 64, "lr": 3e-4, "weight_decay": 0.0}, "cpu": {}}


def nearest_seconds(radius: int) -> list[int]:
    """The context rows (t-l..t-1, t+1..t+l) from the nearest to t to the farthest, the
    earlier of two seconds as near first."""
    seconds = [s for s in range(-radius, radius + 1) if s != 0]
    return sorted(range(len(seconds)), key=lambda j: (abs(seconds[j]), seconds[j]))


def split_comments(
    rows: torch.Tensor, radius: int, n_comments: int, cls_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n_comments`` comments nearest t, in time order: (B, 2l+1, L) rows ->
    ``comments`` (B, n, w) word ids (padded) and ``count`` (B,): how many there are (at least
    one: a window without comments gets the one-word comment ``[CLS]``)."""
    ctx = rows[:, : 2 * radius]  # the context seconds; the other videos' row is left out
    b, r, _ = ctx.shape
    word = ctx.ne(PAD) & ctx.ne(SEP) & ctx.ne(cls_id)
    cid = ctx.eq(SEP).long().cumsum(-1)  # each position's comment within its row
    k = int(cid.max()) + 1 if cid.numel() else 1
    counts = torch.zeros(b, r, k, dtype=torch.long, device=rows.device)
    counts.scatter_add_(2, cid, word.long())
    before = counts.cumsum(-1) - counts  # the row's words before each comment
    wpos = word.long().cumsum(-1) - 1 - before.gather(2, cid)  # position within the comment
    width = max(int(counts.max()) if counts.numel() else 0, 1)
    every = torch.full((b, r, k, width), PAD, dtype=rows.dtype, device=rows.device)
    bi, ri, pi = word.nonzero(as_tuple=True)
    every[bi, ri, cid[bi, ri, pi], wpos[bi, ri, pi]] = ctx[bi, ri, pi]
    every = every.reshape(b, r * k, width)
    exists = counts.gt(0).reshape(b, r * k)
    # nearness: the second's rank by distance to t, then the comment's place in its row
    rank = torch.empty(r, dtype=torch.long, device=rows.device)
    rank[torch.tensor(nearest_seconds(radius), device=rows.device)] = torch.arange(
        r, device=rows.device
    )
    near = (rank[:, None] * k + torch.arange(k, device=rows.device)).reshape(1, r * k)
    near = torch.where(exists, near, torch.full_like(near, r * k))  # absent: last
    n = min(n_comments, r * k)
    chosen = near.topk(n, dim=1, largest=False).indices  # (B, n)
    chosen_exists = exists.gather(1, chosen)
    # time order (rows are in time order; within a row, its order); absent ones last
    when = torch.where(chosen_exists, chosen, torch.full_like(chosen, r * k))
    chosen = chosen.gather(1, when.argsort(dim=1))
    count = chosen_exists.sum(1)
    comments = every.gather(1, chosen[:, :, None].expand(-1, -1, width))  # absent: all PAD
    empty = count.eq(0)
    comments[empty, 0, 0] = cls_id
    return trim(comments), count.clamp(min=1)


class Attention(nn.Module):
    """Luong et al. (2015)'s "general" attention of one query over one or more memories:
    ``tanh(W_c [q; context_1; ...])``, each context a softmax of ``q W_a k`` over its keys."""

    def __init__(self, hidden: int, memories: int) -> None:
        super().__init__()
        self.scores = nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(memories))
        self.combine = nn.Linear((memories + 1) * hidden, hidden)

    def forward(
        self, query: torch.Tensor, memories: list[tuple[torch.Tensor, torch.Tensor | None]]
    ) -> torch.Tensor:
        """query (B, H); each memory: keys (B, S, H) and their padding (B, S) or None."""
        parts = [query]
        for score, (keys, pad) in zip(self.scores, memories, strict=True):
            att = torch.einsum("bh,bsh->bs", score(query), keys)
            if pad is not None:
                att = att.masked_fill(pad, -math.inf)
            parts.append(torch.einsum("bs,bsh->bh", att.softmax(dim=-1), keys))
        return torch.tanh(self.combine(torch.cat(parts, dim=-1)))


@dataclass
class FusionalMemory:
    """h (video), g (text) and g's padding, and the decoder's first state."""

    video: torch.Tensor  # (B, m, H)
    text: torch.Tensor  # (B, n, H)
    text_pad: torch.Tensor  # (B, n) bool
    s0: torch.Tensor  # (B, H)
    c0: torch.Tensor  # (B, H)

    def select(self, idx: torch.Tensor) -> FusionalMemory:
        return FusionalMemory(
            self.video[idx], self.text[idx], self.text_pad[idx], self.s0[idx], self.c0[idx]
        )


@register("fusional_rnn")
class FusionalRNN(Backbone):
    """The backbone ``fusional_rnn`` (the module docstring says what each part is)."""

    config_class: ClassVar[type] = FusionalRNNConfig
    preset_sizes = PRESET_SIZES
    preset_training = PRESET_TRAINING

    def __init__(self, cfg: FusionalRNNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        e, h = cfg.embed_dim, cfg.hidden
        self.embed = nn.Embedding(cfg.vocab_size, e, padding_idx=PAD)  # shared
        self.drop = nn.Dropout(cfg.dropout)
        # video encoder, eqs. (1)-(2)
        self.frame_proj = nn.Linear(cfg.frame_dim, e)
        self.missing_frame = nn.Parameter(torch.zeros(e))
        self.video_encoder = nn.LSTM(e, h, batch_first=True)
        # text encoder, eqs. (3)-(5)
        self.word_encoder = nn.LSTM(e, h, batch_first=True)
        self.sentence_encoder = nn.LSTMCell(h, h)
        self.text_attention = Attention(h, 1)
        # comment decoder, eqs. (7)-(9)
        self.bridge = nn.Linear(2 * h, h)
        self.decoder = nn.LSTMCell(e, h)
        self.decoder_attention = Attention(h, 2)
        self.out = nn.Linear(h, cfg.vocab_size)
        frames = torch.arange(cfg.n_frames) + cfg.radius - (cfg.n_frames - 1) // 2
        self.register_buffer("frame_idx", frames, persistent=False)

    # -- configuration ----------------------------------------------------------------------

    def stages(self, train: TrainConfig) -> tuple[Stage, ...]:
        return (Stage(FINETUNE, train.epochs, train.lr, use_kg=False),)  # no facts read

    # -- encoders ---------------------------------------------------------------------------

    def encode_video(self, batch: Batch) -> torch.Tensor:
        """Eqs. (1)-(2): h (B, m, H) of the m frames nearest t."""
        frames = self.frame_proj(batch.frames[:, self.frame_idx])  # (B, m, E)
        present = batch.frame_mask[:, self.frame_idx].unsqueeze(-1)
        frames = torch.where(present, frames, self.missing_frame.expand_as(frames))
        return self.video_encoder(self.drop(frames))[0]

    def encode_text(
        self, batch: Batch, video: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Eqs. (3)-(5): g (B, n, H), its padding (B, n), and the last comment's g."""
        cfg = self.cfg
        comments, count = split_comments(batch.rows, cfg.radius, cfg.n_comments, cfg.vocab_size - 1)
        b, n, _ = comments.shape
        present = torch.arange(n, device=comments.device) < count[:, None]  # (B, n)
        words = comments[present]  # (k, w): the comments there are
        packed = pack_padded_sequence(
            self.drop(self.embed(words)),
            words.ne(PAD).sum(1).cpu(),
            batch_first=True,
            enforce_sorted=False,
        )
        last = self.word_encoder(packed)[1][0][0]  # (k, H): x_i, the last hidden state
        x = video.new_zeros(b, n, cfg.hidden)
        x[present] = last
        g_prev = c = video.new_zeros(b, cfg.hidden)
        out = []
        for i in range(n):
            g_hat, c_new = self.sentence_encoder(x[:, i], (g_prev, c))  # eq. (4)
            g = self.text_attention(g_hat, [(video, None)])  # eq. (5)
            keep = present[:, i, None]
            g_prev, c = torch.where(keep, g, g_prev), torch.where(keep, c_new, c)
            out.append(g)
        return torch.stack(out, dim=1), ~present, g_prev

    def encode(self, batch: Batch, use_kg: bool = True) -> FusionalMemory:
        """h, g and the decoder's first state for a batch of contexts (no facts are read)."""
        video = self.encode_video(batch)
        text, text_pad, g_last = self.encode_text(batch, video)
        s0 = torch.tanh(self.bridge(torch.cat([video[:, -1], g_last], dim=-1)))
        return FusionalMemory(video, text, text_pad, s0, torch.zeros_like(s0))

    # -- decoder ----------------------------------------------------------------------------

    def step(
        self, memory: FusionalMemory, words: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Eqs. (7)-(9) for one word (B,) a row: the next word's logits (B, V) and (s_i, c_i)."""
        s_hat, c = self.decoder(self.drop(self.embed(words)), state)  # eq. (7)
        s = self.decoder_attention(
            s_hat, [(memory.video, None), (memory.text, memory.text_pad)]
        )  # eq. (8)
        return self.out(self.drop(s)), (s, c)  # eq. (9)

    def token_nll(self, memory: FusionalMemory, seqs: torch.Tensor) -> torch.Tensor:
        """-log P of each next word of ``seqs`` (B, len) = <BOS> words <EOS> <PAD>...,
        teacher-forced: (B, len-1), 0 at padding."""
        state = (memory.s0, memory.c0)
        logits = []
        for i in range(seqs.shape[1] - 1):
            out, state = self.step(memory, seqs[:, i], state)
            logits.append(out)
        gold = seqs[:, 1:]
        logits = torch.stack(logits, dim=2).float()  # (B, V, len-1)
        return F.cross_entropy(logits, gold, ignore_index=PAD, reduction="none") * gold.ne(PAD)

    def loss(self, memory: FusionalMemory, batch: TrainingBatch, stage: str) -> torch.Tensor:
        """Eq. (6): teacher-forced cross-entropy of the ground truths, mean over words."""
        if stage != FINETUNE:
            raise ValueError(f"fusional_rnn has no training stage {stage!r}")
        targets = torch.as_tensor(batch.space.to_model(batch.targets), dtype=torch.long)
        targets = trim(targets.to(memory.video.device), least=2)
        words = targets[:, 1:].ne(PAD).sum().clamp(min=1)
        return self.token_nll(memory, targets).sum() / words

    @torch.no_grad()
    def score(
        self, memory: FusionalMemory, candidates: torch.Tensor, rows: int = 512
    ) -> torch.Tensor:
        """Mean token cross-entropy of every candidate (B, C, g) -> (B, C), lower is better;
        +inf for an all-padding row (:func:`model.backbones.decoding.mean_token_nll`)."""
        return mean_token_nll(
            candidates, lambda samples, cand: self.token_nll(memory.select(samples), cand), rows
        )

    # -- generation -------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self, memory: FusionalMemory, beam: int = 5, banned: tuple[int, ...] = ()
    ) -> list[tuple[list[int], float]]:
        """Beam search for ONE context: up to ``beam`` comments (ids without <BOS>/<EOS>, at
        most g ids with them) with their mean log-probability, best first; never ``banned``
        ids, never an empty comment. The decoder's (s, c) follows its hypotheses."""
        device = memory.video.device
        mem, state = memory, (memory.s0, memory.c0)  # one row a hypothesis

        def next_logp(hyps: list[list[int]], step: int) -> torch.Tensor:
            nonlocal state
            words = torch.tensor([h[-1] if h else BOS for h in hyps], device=device)
            logits, state = self.step(mem, words, state)
            return F.log_softmax(logits.float(), dim=-1)

        def reorder(parents: torch.Tensor) -> None:
            nonlocal mem, state
            mem = memory.select(torch.zeros_like(parents))
            state = (state[0][parents], state[1][parents])

        return beam_search(
            next_logp,
            reorder,
            width=self.cfg.vocab_size,
            max_len=self.cfg.max_len,
            beam=beam,
            banned=banned,
            device=device,
        )
