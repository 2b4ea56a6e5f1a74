"""LiveChat's triple transformer encoder, TTE ("LiveChat: Video Comment Generation from
Audio-Visual Multimodal Contexts", arXiv 2311.12826, its model section), the backbone ``tte``
(:mod:`model.backbones.base`).

What the paper gives:

- Three transformer encoders, each over one modality, encoded independently: the video
  (ResNet-50 features of the frames at 1 fps -> positional embeddings -> transformer encoder),
  the audio (its speech-to-text transcript -> word and positional embeddings -> transformer
  encoder) and the context comments (the chat before the response -> word and positional
  embeddings -> transformer encoder).
- A decoder that "follows a modified Transformer architecture with three cross-attention
  layers, each designed to attend to a different modality: video, audio, and context
  comments": masked self-attention, then cross-attention to the video, to the audio, to the
  comments (in that order), a feed-forward layer, and a linear projection to the vocabulary.
- Training with teacher-forced cross-entropy, after a masked-language-model pre-training.
- Data augmentation: "for every query, rather than having the model consistently predict a
  fixed target comment, we introduce randomness by selecting a comment uniformly at random
  from the response window".
- 30-second clips: a 20-second context window and a 10-second response window.

What we chose (the paper does not say, or the harness differs):

- Sizes: the paper gives no d_model, head or layer counts. ``paper`` preset: d_model 512,
  8 heads, 6 layers in each encoder and in the decoder, feed-forward 2048, dropout 0.1 (the
  base Transformer of Vaswani et al. 2017, as LiveBot's released code); ``cpu``: d_model 128,
  4 heads, 2 layers, feed-forward 512, no dropout. Pre-norm blocks (for stable training at
  the harness's learning rates), sinusoidal positions (the transcript row has no fixed
  length in the config), one word embedding shared by the two text encoders and the decoder,
  scaled by sqrt(d); a separate output projection.
- Training settings: the paper gives none here; the harness's per-preset defaults are used
  (:func:`model.config.preset_training`).
- Inputs, from :class:`model.encoded_split.Batch` (the harness's window [t-l, t+l] around the
  target's second t, the same for every backbone, instead of LiveChat's 20 s before / 10 s
  after split): the video encoder reads the 2l+1 frame features (a second without one gets a
  learned "missing frame" vector, as KLVCG); the audio encoder reads ``Batch.transcript``
  (``[CLS]`` then the window's transcript words; a corpus without transcripts gives
  ``[CLS]`` alone, which the encoder reads as a one-word row); the comment encoder reads the
  2l context seconds' rows in time order, each row's ``[CLS]`` kept as the boundary between
  seconds and its padding squeezed out (the other videos' row is not read: LiveChat has no
  such row). Facts, period, subtitles and like counts are not read (``use_kg`` is ignored).
- The random target: our samples carry every comment of their second as ground truths
  (``TrainingBatch.owner``). Each training step draws one of each sample's ground truths
  uniformly with ``TrainingBatch.generator`` (:func:`pick_one_per_sample`; the trainer seeds
  it per step, so a resumed run draws the same) and trains on those rows only; the loss is
  the mean token cross-entropy over the picked rows' words. The paper draws "for every
  query", i.e. each time a query is used: the trainer visits each sample once per epoch, so
  a draw per step is a fresh draw per sample and epoch, as in the paper.
- One stage, fine-tuning only: the paper's masked-language-model pre-training is left out
  (the harness's single-stage setting for this backbone).

Ranking: the mean token cross-entropy of each candidate
(:func:`model.backbones.decoding.mean_token_nll`); generation: the shared beam search, the
decoder recomputed over the prefix at each step. No knowledge input, no copy path, one
ablation row (``default``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from model.backbones.base import FINETUNE, Backbone, SavedConfig, Stage, TrainingBatch, register
from model.backbones.decoding import PrefixDecoder, trim
from model.backbones.transformer_parts import causal_mask, init_weights, sinusoid
from model.config import TrainConfig
from model.data.vocab import PAD
from model.encoded_split import Batch
from model.word_ids import MAX_TEXT_LEN


@dataclass(frozen=True)
class TTEConfig(SavedConfig):
    name: ClassVar[str] = "tte"
    vocab_size: int  # the corpus vocabulary plus [MASK] and [CLS]
    frame_dim: int
    d_model: int = 512
    heads: int = 8
    layers: int = 6  # blocks of each encoder and of the decoder
    d_ff: int = 2048
    dropout: float = 0.1
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
        if self.copy or self.copy_known_comment_words:
            raise ValueError("tte has no copy path")


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


#: Training over the preset's (model.config.preset_training): the paper gives none.
PRESET_TRAINING: dict[str, dict] = {"paper": {}, "cpu": {}}


def pick_one_per_sample(owner: np.ndarray | None, n: int, gen: torch.Generator) -> torch.Tensor:
    """The rows to train on: for each sample of ``owner`` (T,), one of its rows drawn
    uniformly with ``gen``, in the order of the samples; ``owner`` None: every row (each row
    its own sample)."""
    if owner is None:
        return torch.arange(n)
    # a uniform random order, then each sample's first row in it: a uniform pick per sample
    perm = torch.randperm(n, generator=gen)
    _, first = np.unique(np.asarray(owner)[perm.numpy()], return_index=True)
    return perm[torch.as_tensor(first)]


@dataclass
class TTEMemory:
    """The three encoders' outputs, the decoder's memories, with their padding."""

    video: torch.Tensor  # (B, 2l+1, d)
    audio: torch.Tensor  # (B, S, d)
    audio_pad: torch.Tensor  # (B, S) bool
    comments: torch.Tensor  # (B, L, d)
    comments_pad: torch.Tensor  # (B, L) bool

    def select(self, idx: torch.Tensor) -> TTEMemory:
        return TTEMemory(
            self.video[idx],
            self.audio[idx],
            self.audio_pad[idx],
            self.comments[idx],
            self.comments_pad[idx],
        )


class DecoderBlock(nn.Module):
    """Masked self-attention, cross-attention to the video, the audio, the comments (the
    paper's order), feed-forward; pre-norm residual blocks."""

    def __init__(self, cfg: TTEConfig) -> None:
        super().__init__()
        d, heads, p = cfg.d_model, cfg.heads, cfg.dropout

        def attention() -> nn.MultiheadAttention:
            return nn.MultiheadAttention(d, heads, dropout=p, batch_first=True)

        self.self_attn = attention()
        self.video_attn, self.audio_attn, self.comment_attn = attention(), attention(), attention()
        self.ff = nn.Sequential(nn.Linear(d, cfg.d_ff), nn.ReLU(), nn.Linear(cfg.d_ff, d))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(5))
        self.drop = nn.Dropout(p)

    def forward(self, y, causal, y_pad, mem: TTEMemory) -> torch.Tensor:
        x = self.norms[0](y)
        y = y + self.drop(self.self_attn(x, x, x, attn_mask=causal, key_padding_mask=y_pad)[0])
        for norm, attn, keys, pad in (
            (self.norms[1], self.video_attn, mem.video, None),
            (self.norms[2], self.audio_attn, mem.audio, mem.audio_pad),
            (self.norms[3], self.comment_attn, mem.comments, mem.comments_pad),
        ):
            x = norm(y)
            y = y + self.drop(attn(x, keys, keys, key_padding_mask=pad, need_weights=False)[0])
        return y + self.drop(self.ff(self.norms[4](y)))


@register("tte")
class TTE(PrefixDecoder, Backbone):
    """The backbone ``tte`` (the module docstring says what each part is)."""

    config_class: ClassVar[type] = TTEConfig
    preset_sizes = PRESET_SIZES
    preset_training = PRESET_TRAINING

    def __init__(self, cfg: TTEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.embed = nn.Embedding(cfg.vocab_size, d, padding_idx=PAD)  # shared
        self.frame_proj = nn.Linear(cfg.frame_dim, d)
        self.missing_frame = nn.Parameter(torch.zeros(d))

        def encoder() -> nn.TransformerEncoder:
            layer = nn.TransformerEncoderLayer(
                d, cfg.heads, cfg.d_ff, cfg.dropout, batch_first=True, norm_first=True
            )
            return nn.TransformerEncoder(
                layer, cfg.layers, nn.LayerNorm(d), enable_nested_tensor=False
            )

        self.video_encoder, self.audio_encoder, self.comment_encoder = (
            encoder(),
            encoder(),
            encoder(),
        )
        self.decoder = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, cfg.vocab_size)
        self.drop = nn.Dropout(cfg.dropout)
        n_pos = max(cfg.max_len, 2 * cfg.radius * cfg.max_step_len, MAX_TEXT_LEN)
        self.register_buffer("position", sinusoid(n_pos, d), persistent=False)
        self.register_buffer("causal", causal_mask(cfg.max_len), persistent=False)
        init_weights(self, self.embed)

    # -- configuration and stages ---------------------------------------------------------

    def stages(self, train: TrainConfig) -> tuple[Stage, ...]:
        return (Stage(FINETUNE, train.epochs, train.lr, use_kg=False),)

    # -- encoders ---------------------------------------------------------------------------

    def _positions(self, n: int) -> torch.Tensor:
        if n <= len(self.position):
            return self.position[:n]
        return sinusoid(n, self.cfg.d_model).to(self.position.device)  # a longer row than set

    def _words(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids) * math.sqrt(self.cfg.d_model) + self._positions(ids.shape[1])
        return self.drop(x)

    def _comment_words(self, rows: torch.Tensor) -> torch.Tensor:
        """(B, 2l+1, n) rows -> (B, L): the 2l context seconds' rows in time order, each with
        its ``[CLS]``, padding squeezed out (the other videos' row left out)."""
        flat = rows[:, : 2 * self.cfg.radius].reshape(rows.shape[0], -1)
        order = torch.argsort(flat.eq(PAD).to(torch.int8), dim=1, stable=True)  # words first
        return trim(flat.gather(1, order))

    def encode(self, batch: Batch, use_kg: bool = True) -> TTEMemory:
        """The three encoders' outputs for a batch of contexts (no facts are read)."""
        frames = self.frame_proj(batch.frames)  # (B, 2l+1, d)
        present = batch.frame_mask.unsqueeze(-1)
        frames = torch.where(present, frames, self.missing_frame.expand_as(frames))
        video = self.video_encoder(self.drop(frames + self._positions(frames.shape[1])))

        memories = []
        for ids, encoder in (
            (trim(batch.transcript), self.audio_encoder),
            (self._comment_words(batch.rows), self.comment_encoder),
        ):
            pad = ids.eq(PAD)
            pad[:, 0] = False  # the [CLS] (or, for an empty row, one padding key) is always read
            memories += [encoder(self._words(ids), src_key_padding_mask=pad), pad]
        return TTEMemory(video, *memories)

    # -- decoder ----------------------------------------------------------------------------

    def decode(self, mem: TTEMemory, tgt_in: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits (B, len, V) after each prefix of ``tgt_in`` (B, len)."""
        n = tgt_in.shape[1]
        y = self._words(tgt_in)
        y_pad = tgt_in.eq(PAD)
        y_pad[:, 0] = False
        for block in self.decoder:
            y = block(y, self.causal[:n, :n], y_pad, mem)
        return self.out(self.final_norm(y))

    def loss(self, memory: TTEMemory, batch: TrainingBatch, stage: str) -> torch.Tensor:
        """Teacher-forced cross-entropy of one ground truth per sample, drawn at random
        (:func:`pick_one_per_sample`): the mean over the picked rows' words."""
        if stage != FINETUNE:
            raise ValueError(f"tte has no training stage {stage!r}")
        picked = pick_one_per_sample(batch.owner, len(batch.targets), batch.generator)
        return self.generation_loss(memory, batch, rows=picked)

    # -- generation -------------------------------------------------------------------------
