"""LiveBot's sequence-to-sequence baselines (Ma et al. 2019, "LiveBot", section "Baselines"),
the backbones ``s2s_i`` (video only), ``s2s_c`` (comments only) and ``s2s_ic`` (both)
(:mod:`model.backbones.base`). One implementation (:class:`S2S`); the three names differ only
in the config's input switches ``use_video`` and ``use_comments``.

What the paper gives (section "Baselines"): S2S-I (Vinyals et al. 2015) "applies the CNN to
encode the frames, based on which the decoder generates the target live comment"; S2S-C
(Sutskever et al. 2014) "applies an LSTM to make use of the surrounding comments"; S2S-IC
(similar to Venugopalan et al. 2015) "has two encoders to encode the images and the comments
respectively. Then, we concatenate the outputs of two encoders to decode the output comments
with an LSTM decoder". Section "Experiments / Settings": word embeddings of 512 shared between
encoder and decoder, hidden size 512, batch 64, Adam with lr 3e-4 (beta 0.9/0.999, eps 1e-8),
the 30,000 most frequent words, ResNet-18 frame features.

What we chose (the paper does not say):

- Video encoder (``video_encoder``): the window's precomputed frame features (the data's CNN
  features, one per second of [t-l, t+l]; a second without one gets a learned "missing
  frame" vector, as in KLVCG) -> linear to the embedding size -> one-layer LSTM.
- Comment encoder (``comment_encoder``): the window's context comments (the 2l context
  seconds' rows in time order, ``<&&&>`` between comments, no other videos' row: LiveBot has
  none) as one word sequence after ``[CLS]`` -> the shared word embedding -> one-layer LSTM.
- "Concatenate the outputs": the two encoders' output sequences are concatenated into the
  decoder's memory, and their last hidden states (concatenated, linear, tanh) start the
  decoder. The decoder is a one-layer LSTM with attention over that memory (Luong et al.
  2015's "general" score, without input feeding, so teacher forcing runs in one pass), then a
  linear layer to the vocabulary.
- The window [t-5, t+5] and g = 20 are KLVCG's (the data is encoded as for it); LiveBot's
  "5 nearest" frames and comments are its own windowing.
- Dropout 0.1 in ``paper``; AdamW's weight decay 0 in ``paper`` (the paper's Adam); the
  trainer's warm-up and linear decay are kept; epochs are the trainer's defaults.
- ``cpu``: embeddings and hidden size 128, no dropout, lr 1e-3.

One stage, fine-tuning: teacher-forced cross-entropy. Ranking: the mean token cross-entropy of
each candidate (KLVCG's protocol); generation: KLVCG's length-normalised beam search. No
knowledge input, no copy path, one ablation row (``default``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from model.backbones.base import FINETUNE, Backbone, SavedConfig, TrainingBatch, register
from model.backbones.decoding import beam_search, mean_token_nll, trim
from model.data.vocab import BOS, PAD
from model.encoded_split import Batch


@dataclass(frozen=True)
class S2SConfig(SavedConfig):
    """The config of ``s2s_ic``; :class:`S2SIConfig` and :class:`S2SCConfig` switch an input
    off. Sizes are the paper's (module docstring)."""

    name: ClassVar[str] = "s2s_ic"
    vocab_size: int  # the corpus vocabulary plus [MASK] and [CLS]
    frame_dim: int
    use_video: bool = True
    use_comments: bool = True
    embed_dim: int = 512
    hidden: int = 512
    dropout: float = 0.1
    radius: int = 5  # the context window [t-l, t+l]
    max_len: int = 20  # g: words of a comment including <BOS> and <EOS>
    max_step_len: int = 32  # words of one second's comments (with [CLS] and separators)
    max_knowledge_len: int = 80  # the data's fact words (encoded, never read here)
    copy: bool = False  # no copy path (model.word_ids.WordSpace): always False
    copy_known_comment_words: bool = False  # likewise (the trainer sets it from its flag)

    def __post_init__(self) -> None:
        if not (self.use_video or self.use_comments):
            raise ValueError("a sequence-to-sequence baseline needs the video or the comments")
        if self.max_len < 3:
            raise ValueError("max_len counts <BOS> and <EOS>: it must be at least 3")
        if self.copy or self.copy_known_comment_words:
            raise ValueError(f"{self.name} has no copy path")


@dataclass(frozen=True)
class S2SIConfig(S2SConfig):
    name: ClassVar[str] = "s2s_i"
    use_comments: bool = False


@dataclass(frozen=True)
class S2SCConfig(S2SConfig):
    name: ClassVar[str] = "s2s_c"
    use_video: bool = False


#: Each preset's sizes over the config's defaults (the paper's).
PRESET_SIZES = {
    "paper": {},
    "cpu": {"embed_dim": 128, "hidden": 128, "dropout": 0.0, "max_step_len": 16},
}


#: Training over the preset's (model.config.preset_training): the paper's batch, lr and Adam.
PRESET_TRAINING = {"paper": {"batch_size": 64, "lr": 3e-4, "weight_decay": 0.0}, "cpu": {}}


@dataclass
class S2SMemory:
    """The encoders' outputs: the decoder's memory and its first state."""

    states: torch.Tensor  # (B, S, H) the encoders' outputs, concatenated
    pad: torch.Tensor  # (B, S) bool: padding of the comment encoder's outputs
    h0: torch.Tensor  # (1, B, H)
    c0: torch.Tensor  # (1, B, H)

    def select(self, idx: torch.Tensor) -> S2SMemory:
        return S2SMemory(self.states[idx], self.pad[idx], self.h0[:, idx], self.c0[:, idx])


@register("s2s_ic")
class S2S(Backbone):
    """The backbone ``s2s_ic``, and the implementation of ``s2s_i`` and ``s2s_c``."""

    config_class: ClassVar[type] = S2SConfig
    preset_sizes = PRESET_SIZES
    preset_training = PRESET_TRAINING

    def __init__(self, cfg: S2SConfig) -> None:
        super().__init__()
        self.cfg = cfg
        e, h = cfg.embed_dim, cfg.hidden
        self.embed = nn.Embedding(cfg.vocab_size, e, padding_idx=PAD)  # shared
        self.drop = nn.Dropout(cfg.dropout)
        n_enc = 0
        if cfg.use_video:
            self.frame_proj = nn.Linear(cfg.frame_dim, e)
            self.missing_frame = nn.Parameter(torch.zeros(e))
            self.video_encoder = nn.LSTM(e, h, batch_first=True)
            n_enc += 1
        if cfg.use_comments:
            self.comment_encoder = nn.LSTM(e, h, batch_first=True)
            n_enc += 1
        self.bridge = nn.Linear(n_enc * h, h)
        self.decoder = nn.LSTM(e, h, batch_first=True)
        self.attention = nn.Linear(h, h, bias=False)  # Luong's "general" score
        self.combine = nn.Linear(2 * h, h)
        self.out = nn.Linear(h, cfg.vocab_size)

    # -- encoders ---------------------------------------------------------------------------

    def encode(self, batch: Batch, use_kg: bool = True) -> S2SMemory:
        """The encoders' outputs for a batch of contexts (the facts are never read)."""
        outputs, pads, finals = [], [], []
        if self.cfg.use_video:
            frames = self.frame_proj(batch.frames)  # (B, 2l+1, E)
            present = batch.frame_mask.unsqueeze(-1)
            frames = torch.where(present, frames, self.missing_frame.expand_as(frames))
            out, (h, _) = self.video_encoder(self.drop(frames))
            outputs.append(out)
            pads.append(torch.zeros(out.shape[:2], dtype=torch.bool, device=out.device))
            finals.append(h)
        if self.cfg.use_comments:
            words = self._comment_words(batch.rows)  # (B, n)
            lengths = words.ne(PAD).sum(dim=1)
            packed = pack_padded_sequence(
                self.drop(self.embed(words)), lengths.cpu(), batch_first=True, enforce_sorted=False
            )
            out, (h, _) = self.comment_encoder(packed)
            out = pad_packed_sequence(out, batch_first=True, total_length=words.shape[1])[0]
            outputs.append(out)
            pads.append(words.eq(PAD))
            finals.append(h)
        h0 = torch.tanh(self.bridge(torch.cat(finals, dim=-1)))  # (1, B, H)
        return S2SMemory(torch.cat(outputs, 1), torch.cat(pads, 1), h0, torch.zeros_like(h0))

    def _comment_words(self, rows: torch.Tensor) -> torch.Tensor:
        """(B, 2l+1, n) rows -> (B, 1 + words): ``[CLS]`` then the context seconds' words in
        time order (each row's ``[CLS]`` and padding dropped; the other videos' row left out)."""
        cls_id = self.cfg.vocab_size - 1
        flat = rows[:, : 2 * self.cfg.radius].reshape(rows.shape[0], -1)
        keep = flat.ne(PAD) & flat.ne(cls_id)
        order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # words first
        words = torch.where(keep, flat, torch.full_like(flat, PAD)).gather(1, order)
        start = torch.full_like(flat[:, :1], cls_id)
        return trim(torch.cat([start, words], dim=1))

    # -- decoder ----------------------------------------------------------------------------

    def decode(
        self,
        memory: S2SMemory,
        tgt_in: torch.Tensor,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Logits ``(B, len, vocab)`` after each input word of ``tgt_in`` (B, len), and the
        LSTM's state after the last (``state`` None: the memory's first state)."""
        state = (memory.h0, memory.c0) if state is None else state
        h, state = self.decoder(self.drop(self.embed(tgt_in)), state)  # (B, len, H)
        att = torch.einsum("bnh,bsh->bns", self.attention(h), memory.states)
        att = att.masked_fill(memory.pad[:, None, :], -math.inf).softmax(dim=-1)
        context = att @ memory.states  # (B, len, H)
        out = torch.tanh(self.combine(torch.cat([h, context], dim=-1)))
        return self.out(self.drop(out)), state

    def token_logp(self, memory: S2SMemory, targets: torch.Tensor) -> torch.Tensor:
        """log P of each word after <BOS> of ``targets`` (B, g), teacher-forced: (B, g-1)."""
        logits = self.decode(memory, targets[:, :-1])[0]
        logp = F.log_softmax(logits.float(), dim=-1)
        return logp.gather(-1, targets[:, 1:].unsqueeze(-1)).squeeze(-1)

    def loss(self, memory: S2SMemory, batch: TrainingBatch, stage: str) -> torch.Tensor:
        """Teacher-forced cross-entropy of the ground truths (one row of ``memory`` each)."""
        if stage != FINETUNE:
            raise ValueError(f"{self.cfg.name} has no training stage {stage!r}")
        targets = torch.as_tensor(batch.space.to_model(batch.targets), dtype=torch.long)
        targets = trim(targets, least=2).to(memory.states.device)
        keep = targets[:, 1:].ne(PAD)
        return -(self.token_logp(memory, targets) * keep).sum() / keep.sum().clamp(min=1)

    @torch.no_grad()
    def score(self, memory: S2SMemory, candidates: torch.Tensor, rows: int = 512) -> torch.Tensor:
        """Mean token cross-entropy of every candidate (B, C, g) -> (B, C), lower is better;
        +inf for an all-padding row (:func:`model.backbones.decoding.mean_token_nll`)."""
        return mean_token_nll(
            candidates, lambda samples, cand: -self.token_logp(memory.select(samples), cand), rows
        )

    # -- generation -------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self, memory: S2SMemory, beam: int = 5, banned: tuple[int, ...] = ()
    ) -> list[tuple[list[int], float]]:
        """Beam search for ONE context, as KLVCG's (:meth:`model.backbones.klvcg.KLVCG.generate`):
        up to ``beam`` comments (ids without <BOS>/<EOS>, at most g ids with them) with their
        mean log-probability, best first; never ``banned`` ids, never an empty comment."""
        device = memory.states.device
        mem, state = memory, None  # the decoder's memory and LSTM state, one row a hypothesis

        def next_logp(hyps: list[list[int]], step: int) -> torch.Tensor:
            nonlocal state
            words = torch.tensor([[h[-1] if h else BOS] for h in hyps], device=device)
            logits, state = self.decode(mem, words, state)
            return F.log_softmax(logits[:, -1].float(), dim=-1)

        def reorder(parents: torch.Tensor) -> None:
            nonlocal mem, state
            mem = memory.select(torch.zeros_like(parents))
            state = (state[0][:, parents], state[1][:, parents])

        return beam_search(
            next_logp,
            reorder,
            width=self.cfg.vocab_size,
            max_len=self.cfg.max_len,
            beam=beam,
            banned=banned,
            device=device,
        )


@register("s2s_i")
class S2SI(S2S):
    """The backbone ``s2s_i``: the video only (Vinyals et al. 2015)."""

    config_class: ClassVar[type] = S2SIConfig


@register("s2s_c")
class S2SC(S2S):
    """The backbone ``s2s_c``: the comments only (Sutskever et al. 2014)."""

    config_class: ClassVar[type] = S2SCConfig
