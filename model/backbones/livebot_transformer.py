"""LiveBot's Unified Transformer (Ma et al. 2019, "LiveBot", section "Model II: Unified
Transformer Model", Fig. 6), the backbone ``livebot_transformer`` (:mod:`model.backbones.base`).

- Video encoder (``video_encoder``), eqs. (10)-(11): each frame's feature -> linear (the
  paper's CNN: our frames arrive as features, as in the released code, which feeds ResNet-18
  features) -> + sinusoidal position -> transformer over the frames (h). A second without a
  feature gets a learned "missing frame" vector (as KLVCG), so every window has 5 frames.
- Text encoder (``text_encoder``), eq. (12): the surrounding comments concatenated into one
  word sequence e; each block has self-attention over e, then attention to h (g).
- Comment decoder (``comment_decoder``), eqs. (13)-(15): each block has causal self-attention
  over the comment, attention to h, then attention to g; a linear layer and a softmax give
  the next word. Word embeddings are shared by the text encoder and the decoder (§Settings:
  "a shared embedding between encoder and decoder").

Inputs (§"Problem Formulation": "the nearest m frames and n comments", m = n = 5 in the
full setting of Table 4). From :class:`model.encoded_split.Batch`, encoded with the window
[t-5, t+5] of KLVCG's data (so both backbones share one encoded split):

- frames: the 5 seconds t-2..t+2 (``n_frames``), the 5 nearest to t;
- comments: the rows of the 5 context seconds nearest t (``n_comment_seconds``: t-3, t-2,
  t-1, t+1, t+2, earlier before later when two are as near), in time order, each row's
  ``[CLS]`` kept as the boundary between seconds, its padding squeezed out. The Batch holds
  comments per second, not per comment, so "5 nearest comments" becomes "the comments of the
  5 nearest seconds" (a busy second gives more than one comment, an empty one none); the
  row of other videos' comments (AC), the facts, the period and subtitles are not read
  (``encode`` ignores ``use_kg``).

Paper settings (§"Experiments / Settings"): hidden and embedding size 512, batch 64, Adam at
lr 3e-4 (beta 0.9 / 0.999, eps 1e-8), vocabulary of the 30,000 most common words. The paper
gives no layer or head counts: 6 blocks of 8 heads with a 2048-unit feed-forward layer and
dropout 0.1 are the released code's defaults (lancopku/livebot ``codes/transformer.py``), as
are at most 20 words per comment. ``--preset paper`` is that (AdamW with weight decay 0 is
Adam). The ``cpu`` preset keeps the structure at d = 128, 2 blocks of 4 heads, no dropout.

Where the released code departs from the paper, the paper is followed: ranking sorts by
likelihood, most likely first (the code sorts the losses descending, i.e. least likely
first); generation is beam search (the paper's decoder; the code decodes greedily). As in
every backbone here, a candidate's score is its mean token cross-entropy (the code sums).
One stage, fine-tuning, with teacher-forced cross-entropy; no ablation rows but its default,
``unified`` (5 frames and 5 seconds of comments).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from model.backbones.base import FINETUNE, Backbone, SavedConfig, Stage, TrainingBatch, register
from model.backbones.decoding import PrefixDecoder
from model.backbones.transformer_parts import causal_mask, init_weights, sinusoid
from model.config import TrainConfig
from model.data.vocab import PAD
from model.encoded_split import Batch


@dataclass(frozen=True)
class LiveBotConfig(SavedConfig):
    name: ClassVar[str] = "livebot_transformer"
    vocab_size: int  # the corpus vocabulary plus [MASK] and [CLS]
    frame_dim: int
    d_model: int = 512
    heads: int = 8
    layers: int = 6  # blocks of each of the video encoder, text encoder and decoder
    d_ff: int = 2048
    dropout: float = 0.1
    n_frames: int = 5  # the frames nearest t: t-2..t+2
    n_comment_seconds: int = 5  # the context seconds nearest t whose comments are read
    radius: int = 5  # the encoded window [t-5, t+5] (KLVCG's: one encoded split for both)
    max_len: int = 20  # g: the words of a comment, <BOS> and <EOS> included
    max_step_len: int = 32  # words of one second's comments (with [CLS] and separators)
    max_knowledge_len: int = 80  # encoded with the split; not read
    copy: bool = False  # no copy path
    copy_known_comment_words: bool = False

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by {self.heads} heads")
        if not 1 <= self.n_frames <= 2 * self.radius + 1:
            raise ValueError(f"n_frames must be within the window's {2 * self.radius + 1}")
        if not 1 <= self.n_comment_seconds <= 2 * self.radius:
            raise ValueError(f"n_comment_seconds must be within the {2 * self.radius} seconds")
        if self.copy:
            raise ValueError("livebot_transformer has no copy path")
        if self.max_len < 3:
            raise ValueError("max_len counts <BOS> and <EOS>: it must be at least 3")


#: Each preset's sizes over the config's defaults (the paper's).
PRESET_SIZES = {
    "paper": {},
    # small enough for a 2-core machine; rows as short as KLVCG's cpu preset (one split)
    "cpu": {
        "d_model": 128,
        "heads": 4,
        "layers": 2,
        "d_ff": 512,
        "dropout": 0.0,
        "max_step_len": 16,
    },
}


#: Training over the preset's (model.config.preset_training): §Settings, batch 64, Adam lr 3e-4;
#: epochs: not given (ours).
PRESET_TRAINING = {"paper": {"batch_size": 64, "lr": 3e-4, "weight_decay": 0.0, "epochs": 10.0}}


@dataclass
class LiveBotMemory:
    """The encodings a comment is decoded against: h (video), g (text) and g's padding."""

    video: torch.Tensor  # (B, n_frames, d)
    text: torch.Tensor  # (B, L, d)
    text_pad: torch.Tensor  # (B, L) bool

    def select(self, idx: torch.Tensor) -> LiveBotMemory:
        return LiveBotMemory(self.video[idx], self.text[idx], self.text_pad[idx])


class DecoderBlock(nn.Module):
    """Causal self-attention, attention to h, attention to g, feed-forward (pre-norm)."""

    def __init__(self, cfg: LiveBotConfig) -> None:
        super().__init__()
        d, heads, p = cfg.d_model, cfg.heads, cfg.dropout
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=p, batch_first=True)
        self.video_attn = nn.MultiheadAttention(d, heads, dropout=p, batch_first=True)
        self.text_attn = nn.MultiheadAttention(d, heads, dropout=p, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, cfg.d_ff), nn.ReLU(), nn.Linear(cfg.d_ff, d))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(4))
        self.drop = nn.Dropout(p)

    def forward(self, y, causal, y_pad, mem: LiveBotMemory) -> torch.Tensor:
        x = self.norms[0](y)
        y = y + self.drop(self.self_attn(x, x, x, attn_mask=causal, key_padding_mask=y_pad)[0])
        x = self.norms[1](y)
        y = y + self.drop(self.video_attn(x, mem.video, mem.video, need_weights=False)[0])
        x = self.norms[2](y)
        a = self.text_attn(x, mem.text, mem.text, key_padding_mask=mem.text_pad)[0]
        y = y + self.drop(a)
        return y + self.drop(self.ff(self.norms[3](y)))


def nearest_seconds(radius: int, n: int) -> list[int]:
    """The row indices (rows: t-r..t-1, t+1..t+r) of the n seconds nearest t, in time order."""
    seconds = [s for s in range(-radius, radius + 1) if s != 0]
    near = sorted(range(len(seconds)), key=lambda j: (abs(seconds[j]), seconds[j]))[:n]
    return sorted(near)


@register("livebot_transformer")
class LiveBotTransformer(PrefixDecoder, Backbone):
    """The backbone ``livebot_transformer`` (the module docstring says what each part is)."""

    config_class = LiveBotConfig
    preset_sizes = PRESET_SIZES
    preset_training = PRESET_TRAINING
    rows = ("unified",)

    def __init__(self, cfg: LiveBotConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.embed = nn.Embedding(cfg.vocab_size, d, padding_idx=PAD)
        self.frame_proj = nn.Linear(cfg.frame_dim, d)
        self.missing_frame = nn.Parameter(torch.zeros(d))

        def encoder_layer(cls):
            return cls(d, cfg.heads, cfg.d_ff, cfg.dropout, batch_first=True, norm_first=True)

        self.video_encoder = nn.TransformerEncoder(
            encoder_layer(nn.TransformerEncoderLayer), cfg.layers, nn.LayerNorm(d),
            enable_nested_tensor=False,
        )  # fmt: skip
        self.text_encoder = nn.TransformerDecoder(  # self-attention, then attention to h
            encoder_layer(nn.TransformerDecoderLayer), cfg.layers, nn.LayerNorm(d)
        )
        self.comment_decoder = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, cfg.vocab_size)
        self.drop = nn.Dropout(cfg.dropout)
        n_pos = max(cfg.max_len, cfg.n_comment_seconds * cfg.max_step_len, cfg.n_frames)
        self.register_buffer("position", sinusoid(n_pos, d), persistent=False)
        frames = torch.arange(cfg.n_frames) + cfg.radius - (cfg.n_frames - 1) // 2
        self.register_buffer("frame_idx", frames, persistent=False)
        rows = torch.tensor(nearest_seconds(cfg.radius, cfg.n_comment_seconds))
        self.register_buffer("row_idx", rows, persistent=False)
        self.register_buffer("causal", causal_mask(cfg.max_len), persistent=False)
        init_weights(self, self.embed)

    # -- configuration and stages ---------------------------------------------------------

    def stages(self, train: TrainConfig) -> tuple[Stage, ...]:
        return (Stage(FINETUNE, train.epochs, train.lr, use_kg=False),)

    # -- encoders ---------------------------------------------------------------------------

    def _words(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids) * math.sqrt(self.cfg.d_model) + self.position[: ids.shape[1]]
        return self.drop(x)

    def encode(self, batch: Batch, use_kg: bool = True) -> LiveBotMemory:
        """h and g for a batch of contexts; ``use_kg`` is ignored (no facts are read)."""
        frames = self.frame_proj(batch.frames[:, self.frame_idx])  # (B, m, d)
        present = batch.frame_mask[:, self.frame_idx].unsqueeze(-1)
        frames = torch.where(present, frames, self.missing_frame.expand_as(frames))
        h = self.video_encoder(self.drop(frames + self.position[: frames.shape[1]]))

        rows = batch.rows[:, self.row_idx].reshape(len(frames), -1)  # (B, n * row)
        pad = rows.eq(PAD)
        order = torch.argsort(pad.to(torch.int8), dim=1, stable=True)  # words first
        text = rows.gather(1, order)
        width = min(max(int((~pad).sum(1).max()), 1), len(self.position))  # the longest
        text = text[:, :width]
        text_pad = text.eq(PAD)
        text_pad[:, 0] = False  # a context without any word still has a (PAD) key to read
        g = self.text_encoder(self._words(text), h, tgt_key_padding_mask=text_pad)
        return LiveBotMemory(h, g, text_pad)

    # -- decoder ----------------------------------------------------------------------------

    def decode(self, mem: LiveBotMemory, tgt_in: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits (B, len, V) after each prefix of ``tgt_in`` (B, len)."""
        n = tgt_in.shape[1]
        y = self._words(tgt_in)
        y_pad = tgt_in.eq(PAD)
        y_pad[:, 0] = False
        for block in self.comment_decoder:
            y = block(y, self.causal[:n, :n], y_pad, mem)
        return self.out(self.final_norm(y))

    def loss(self, memory: LiveBotMemory, batch: TrainingBatch, stage: str) -> torch.Tensor:
        """Eq. (13): teacher-forced cross-entropy of the ground truths, mean over words."""
        if stage != FINETUNE:
            raise ValueError(f"livebot_transformer has no training stage {stage!r}")
        return self.generation_loss(memory, batch)
