"""VideoIC's MML-CG (Wang et al. 2020, "VideoIC: A Video Interactive Comments Dataset and
Multimodal Multitask Learning for Comments Generation", ACM MM 2020), the backbone ``mmlcg``
(:mod:`model.backbones.base`).

The VideoIC paper itself was not available to us. What this module follows:

- KLVCG (Chen et al. 2023, §V-B "Main results"): MML-CG "enhances modalities interaction by
  multi-modal transformer and multi-task learning"; its table III gives MML-CG's ranking
  results on LiveBot, VideoIC and MovieLC;
- the engaging-comments paper (§2 "Related work"): VideoIC "incorporates a time prediction
  sub-task to grasp the temporal relationship between multimodal information";
- the VideoIC paper as published, in outline: a multimodal transformer encoder in which the
  video frames and the context comments interact (cross-modal attention between the two
  streams), a transformer comment decoder attending to the fused memory, trained multi-task:
  comment generation (cross-entropy) plus an auxiliary temporal task (time prediction) that
  teaches the model which moment of the video a comment belongs to, the total loss a weighted
  sum of the two.

The model:

- Video stream: each second's frame feature of [t-l, t+l] -> linear to d (a second without a
  feature gets a learned "missing frame" vector, as in KLVCG) + a learned embedding of its
  second in the window (``second_embed``).
- Comment stream: the 2l context seconds' rows (``[CLS]`` then the second's comments joined
  by ``<&&&>``; the other videos' row, the last, is not read: VideoIC has none) -> the word
  embedding + a sinusoidal position *within the row*. The stream carries no embedding of the
  row's second: when each comment was posted is what the time task predicts.
- Multimodal encoder (``encoder``, ``layers`` co-attention layers): in each, the video stream
  has self-attention over the frames, then attention to every comment word; each second's
  comment row has self-attention within the row, then attention to the frames; then each
  stream's feed-forward layer (pre-norm, both streams read the previous layer's states).
- Comment decoder (``decoder``, ``layers`` blocks): causal self-attention, attention to the
  fused memory (the frames' and the comment words' encodings; the comment words there get
  their row's second embedding, so generation knows when each context comment was posted),
  feed-forward; a linear layer to the vocabulary. Word embeddings are shared by the comment
  stream and the decoder.
- Time prediction (``time_query``, ``time_key``): for each context second with at least one
  comment, its row's ``[CLS]`` encoding attends to the window's 2l+1 frame encodings (scaled
  dot product of a query and a key projection); the softmax over the frames is the
  prediction of the second the comment was posted at. The label is the row's second (row
  index j of the 2l context rows is the offset j - l before t, j - l + 1 after, i.e. frame
  index j for j < l and j + 1 after). The ground-truth comments are all at t and are never
  labels.

Training: one stage, fine-tuning: the loss is the generation cross-entropy (teacher-forced,
mean over words) + ``time_weight`` x the time cross-entropy (mean over the labelled context
seconds of the batch's samples, each sample counted once however many ground truths it has).
``time_weight`` 0 switches the auxiliary task off: the loss is the generation loss alone.
Ranking: mean token cross-entropy (:func:`model.backbones.decoding.mean_token_nll`);
generation: :func:`model.backbones.decoding.beam_search`. No knowledge input, no copy path,
one ablation row (``default``).

What we chose (the secondary descriptions do not say):

- The co-attention layout above (ViLBERT-style parallel streams), the comments' self-attention
  kept within each second's row (so a row's ``[CLS]`` summarises that second's comments and
  learns its second only from the frames it attends to), and the second embedding added to
  the comment words only in the decoder's memory.
- The time head: a pointer over the window's 2l+1 frames (t's frame is never a label;
  keeping it makes a class a frame index) rather than a classifier over second offsets: the
  prediction is read from the comment's attention to the frames, so the task is matching a
  comment to the moment it belongs to. ``time_weight`` = 1 (the two losses summed).
- Sizes of ``paper``: d = 512 and 8 heads as reported of the published paper (we could not
  check them in its text); the layer count is not known to us: 6 co-attention layers and 6
  decoder blocks, feed-forward 2048, dropout 0.1, as the released code of LiveBot's Unified
  Transformer (the model VideoIC compares against). Training: LiveBot's settings (batch 64,
  Adam lr 3e-4, weight decay 0), 10 epochs; the trainer's warm-up and linear decay are kept.
- ``cpu``: d = 128, 4 heads, 2 layers each, feed-forward 512, no dropout, rows of 16 words.
- The window [t-5, t+5] and g = 20 are KLVCG's (one encoded split for every backbone).
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
from model.backbones.decoding import PrefixDecoder, trim
from model.backbones.transformer_parts import causal_mask, init_weights, sinusoid
from model.config import TrainConfig
from model.data.vocab import PAD
from model.encoded_split import Batch

NO_LABEL = -100  # a context second without a comment: no time label


@dataclass(frozen=True)
class MMLCGConfig(SavedConfig):
    name: ClassVar[str] = "mmlcg"
    vocab_size: int  # the corpus vocabulary plus [MASK] and [CLS]
    frame_dim: int
    d_model: int = 512
    heads: int = 8
    layers: int = 6  # co-attention layers of the encoder, and blocks of the decoder
    d_ff: int = 2048
    dropout: float = 0.1
    time_weight: float = 1.0  # lambda: the time-prediction loss's weight (0: off)
    radius: int = 5  # the context window [t-l, t+l]
    max_len: int = 20  # g: the words of a comment, <BOS> and <EOS> included
    max_step_len: int = 32  # words of one second's comments (with [CLS] and separators)
    max_knowledge_len: int = 80  # encoded with the split; not read
    copy: bool = False  # no copy path
    copy_known_comment_words: bool = False

    def __post_init__(self) -> None:
        if self.d_model % self.heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by {self.heads} heads")
        if self.max_len < 3:
            raise ValueError("max_len counts <BOS> and <EOS>: it must be at least 3")
        if self.time_weight < 0:
            raise ValueError("time_weight must be >= 0")
        if self.copy or self.copy_known_comment_words:
            raise ValueError("mmlcg has no copy path")


#: Each preset's sizes over the config's defaults (the paper's).
PRESET_SIZES = {
    "paper": {},
    "cpu": {
        "d_model": 128,
        "heads": 4,
        "layers": 2,
        "d_ff": 512,
        "dropout": 0.0,
        "max_step_len": 16,
    },
}


#: Training over the preset's (model.config.preset_training): LiveBot's batch, lr and Adam.
PRESET_TRAINING = {
    "paper": {"batch_size": 64, "lr": 3e-4, "weight_decay": 0.0, "epochs": 10.0},
    "cpu": {},
}


def time_labels(rows: torch.Tensor, radius: int, cls_id: int) -> torch.Tensor:
    """(B, 2l) the time class (the frame index in [t-l, t+l]) of each context second's row of
    ``rows`` (B, 2l+1, n), :data:`NO_LABEL` for a row without a comment; the last row (other
    videos' comments) is not a context second and gets no label."""
    context = rows[:, : 2 * radius]
    said = (context.ne(PAD) & context.ne(cls_id)).any(dim=-1)  # (B, 2l)
    j = torch.arange(2 * radius, device=rows.device)
    second = torch.where(j < radius, j, j + 1).expand_as(said)  # t itself is no context row
    return torch.where(said, second, torch.full_like(second, NO_LABEL))


@dataclass
class MMLCGMemory:
    """The fused memory the decoder reads, and the time task's predictions and labels."""

    memory: torch.Tensor  # (B, 2l+1 + 2l*n, d): the frames', then the comment words' encodings
    pad: torch.Tensor  # (B, 2l+1 + 2l*n) bool
    time_logits: torch.Tensor  # (B, 2l, 2l+1): each context second's row over the window
    time_target: torch.Tensor  # (B, 2l) its second's class, NO_LABEL without a comment

    def select(self, idx: torch.Tensor) -> MMLCGMemory:
        return MMLCGMemory(
            self.memory[idx], self.pad[idx], self.time_logits[idx], self.time_target[idx]
        )


class CoAttentionLayer(nn.Module):
    """One multimodal encoder layer: each stream attends to itself, then to the other stream,
    then its feed-forward layer (pre-norm); both read the previous layer's states."""

    def __init__(self, cfg: MMLCGConfig) -> None:
        super().__init__()
        d, h, p = cfg.d_model, cfg.heads, cfg.dropout

        def attention():
            return nn.MultiheadAttention(d, h, dropout=p, batch_first=True)

        def ff():
            return nn.Sequential(nn.Linear(d, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, d))

        self.video_self, self.video_cross, self.video_ff = attention(), attention(), ff()
        self.text_self, self.text_cross, self.text_ff = attention(), attention(), ff()
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(6))
        self.drop = nn.Dropout(p)

    def forward(
        self, video: torch.Tensor, text: torch.Tensor, text_pad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``video`` (B, F, d); ``text`` (B, R, n, d), one row a context second; ``text_pad``
        (B, R, n) bool (each row's first position never padding: a key to read)."""
        b, r, n, d = text.shape
        words = text.reshape(b, r * n, d)
        flat_pad = text_pad.reshape(b, r * n)
        # video: self-attention, then attention to every comment word
        x = self.norms[0](video)
        v = video + self.drop(self.video_self(x, x, x, need_weights=False)[0])
        x, m = self.norms[1](v), self.norms[3](words)
        v = v + self.drop(self.video_cross(x, m, m, key_padding_mask=flat_pad)[0])
        v = v + self.drop(self.video_ff(self.norms[2](v)))
        # comments: self-attention within each second's row, then attention to the frames
        rows = text.reshape(b * r, n, d)
        x = self.norms[3](rows)
        pad = text_pad.reshape(b * r, n)
        t = rows + self.drop(self.text_self(x, x, x, key_padding_mask=pad, need_weights=False)[0])
        t = t.reshape(b, r * n, d)
        x, m = self.norms[4](t), self.norms[0](video)
        t = t + self.drop(self.text_cross(x, m, m, need_weights=False)[0])
        t = t + self.drop(self.text_ff(self.norms[5](t)))
        return v, t.reshape(b, r, n, d)


@register("mmlcg")
class MMLCG(PrefixDecoder, Backbone):
    """The backbone ``mmlcg`` (the module docstring says what each part is)."""

    config_class: ClassVar[type] = MMLCGConfig
    preset_sizes = PRESET_SIZES
    preset_training = PRESET_TRAINING

    def __init__(self, cfg: MMLCGConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, seconds = cfg.d_model, 2 * cfg.radius + 1
        self.embed = nn.Embedding(cfg.vocab_size, d, padding_idx=PAD)  # shared
        self.frame_proj = nn.Linear(cfg.frame_dim, d)
        self.missing_frame = nn.Parameter(torch.zeros(d))
        self.second_embed = nn.Embedding(seconds, d)
        self.encoder = nn.ModuleList(CoAttentionLayer(cfg) for _ in range(cfg.layers))
        self.video_norm, self.text_norm = nn.LayerNorm(d), nn.LayerNorm(d)
        self.time_query, self.time_key = nn.Linear(d, d), nn.Linear(d, d)  # the time head
        layer = nn.TransformerDecoderLayer(
            d, cfg.heads, cfg.d_ff, cfg.dropout, batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, cfg.layers, nn.LayerNorm(d))
        self.out = nn.Linear(d, cfg.vocab_size)
        self.drop = nn.Dropout(cfg.dropout)
        n_pos = max(cfg.max_len, cfg.max_step_len)
        self.register_buffer("position", sinusoid(n_pos, d), persistent=False)
        self.register_buffer("causal", causal_mask(cfg.max_len), persistent=False)
        j = torch.arange(2 * cfg.radius)
        self.register_buffer("row_second", torch.where(j < cfg.radius, j, j + 1), persistent=False)
        init_weights(self, self.embed)

    # -- configuration and stages ---------------------------------------------------------

    def stages(self, train: TrainConfig) -> tuple[Stage, ...]:
        return (Stage(FINETUNE, train.epochs, train.lr, use_kg=False),)

    # -- encoder ----------------------------------------------------------------------------

    def encode(self, batch: Batch, use_kg: bool = True) -> MMLCGMemory:
        """The fused memory and the time predictions of a batch of contexts; ``use_kg`` is
        ignored (no facts are read)."""
        cfg, d = self.cfg, self.cfg.d_model
        frames = self.frame_proj(batch.frames)  # (B, 2l+1, d)
        present = batch.frame_mask.unsqueeze(-1)
        frames = torch.where(present, frames, self.missing_frame.expand_as(frames))
        video = self.drop(frames + self.second_embed.weight)

        rows = trim(batch.rows[:, : 2 * cfg.radius])[..., : len(self.position)]  # (B, 2l, n)
        text_pad = rows.eq(PAD)
        text_pad[..., 0] = False  # a row without any word still has a key to read
        n = rows.shape[-1]
        text = self.drop(self.embed(rows) * math.sqrt(d) + self.position[:n])
        for layer in self.encoder:
            video, text = layer(video, text, text_pad)
        video, text = self.video_norm(video), self.text_norm(text)

        # the time head: each row's [CLS] attends to the window's frames (B, 2l, 2l+1)
        query, key = self.time_query(text[:, :, 0]), self.time_key(video)
        time_logits = query @ key.transpose(1, 2) / math.sqrt(d)
        targets = time_labels(batch.rows, cfg.radius, cfg.vocab_size - 1)
        # the decoder knows when each context comment was posted (the encoder did not)
        text = text + self.second_embed(self.row_second)[:, None]
        b = len(rows)
        memory = torch.cat([video, text.reshape(b, -1, d)], dim=1)
        pad = torch.cat([torch.zeros_like(video[..., 0], dtype=torch.bool),
                         text_pad.reshape(b, -1)], dim=1)  # fmt: skip
        return MMLCGMemory(memory, pad, time_logits, targets)

    # -- decoder ----------------------------------------------------------------------------

    def decode(self, mem: MMLCGMemory, tgt_in: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits (B, len, V) after each prefix of ``tgt_in`` (B, len)."""
        n = tgt_in.shape[1]
        y = self.drop(self.embed(tgt_in) * math.sqrt(self.cfg.d_model) + self.position[:n])
        y_pad = tgt_in.eq(PAD)
        y_pad[:, 0] = False
        y = self.decoder(
            y,
            mem.memory,
            tgt_mask=self.causal[:n, :n],
            tgt_key_padding_mask=y_pad,
            memory_key_padding_mask=mem.pad,
        )
        return self.out(y)

    @staticmethod
    def time_loss(memory: MMLCGMemory, owner: np.ndarray | None = None) -> torch.Tensor:
        """The time task's cross-entropy, mean over the labelled context seconds; with
        ``owner`` (each memory row's sample), each sample counted once; 0 without a label."""
        logits, target = memory.time_logits, memory.time_target
        if owner is not None:
            first = np.unique(np.asarray(owner), return_index=True)[1]
            first = torch.as_tensor(first, device=logits.device)
            logits, target = logits[first], target[first]
        if not bool(target.ne(NO_LABEL).any()):
            return logits.sum() * 0.0
        logits, target = logits.flatten(0, 1).float(), target.flatten()
        return F.cross_entropy(logits, target, ignore_index=NO_LABEL)

    def loss(self, memory: MMLCGMemory, batch: TrainingBatch, stage: str) -> torch.Tensor:
        """Generation cross-entropy + ``time_weight`` x time-prediction cross-entropy."""
        if stage != FINETUNE:
            raise ValueError(f"mmlcg has no training stage {stage!r}")
        loss = self.generation_loss(memory, batch)
        if self.cfg.time_weight:
            loss = loss + self.cfg.time_weight * self.time_loss(memory, batch.owner)
        return loss
