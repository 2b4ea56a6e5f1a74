"""SFAT, the Semantic Frame Aggregation-based Transformer (Fatima et al. 2025, "Semantic Frame
Aggregation-based Transformer for Live Video Comment Generation", arXiv 2510.26978), the
backbone ``sfat`` (:mod:`model.backbones.base`).

What the paper gives (its method: the semantic frame aggregation, the multimodal encoder and
the comment decoder, and its training):

- Semantic frame weighting: each frame of the window is scored by the dot product of its
  CLIP image embedding with the CLIP text embedding of the chat context; a softmax with a
  temperature over the window's frames turns the scores into weights, and the weighted sum
  of the frames is one aggregated video embedding that stresses the frames the chat talks
  about.
- A multimodal encoder combines the aggregated video with the context comments.
- The comment decoder has modality-specific cross-attention: first to the context comments,
  then to the video; teacher forcing.
- Two stages: the context-comment encoder is pre-trained with masked language modelling,
  then the whole model is trained. Audio was dropped (it hurt).

What we chose (the paper does not say, or we cannot do as it does):

- CLIP cannot be loaded offline, and the product's sentence embedder lives in the retrieval
  layer, out of a backbone's reach. So a learned joint projection stands in for CLIP: the
  frames are whatever per-second features the data ships (``Batch.frames``; precomputed CLIP
  image features where a dataset provides them), the chat vector is the ``[CLS]`` output of a
  learned transformer text encoder (``text_encoder``) over the context comments, and two
  linear maps (``frame_joint``, ``chat_joint``) put both into one ``joint_dim`` space (CLIP
  image features are projected too: the chat vector is not CLIP's text embedding). The
  similarity is the dot product of the L2-normalised projections (CLIP's embeddings are
  compared normalised), divided by the temperature.
- Temperature: the paper's value is not given; ``temperature = 0.1`` (fixed, a config field),
  which makes weights of cosine similarities in [-1, 1] clearly peaked without being one-hot.
- A second without a frame (``frame_mask`` False) gets weight 0; a window with no frame at
  all gets a learned "no video" vector instead of the (empty) weighted sum. The weighted sum
  is taken over the raw frame features, then a linear layer (``video_proj``) maps it to the
  model width.
- Context comments: the 2l context seconds' rows in time order after one leading ``[CLS]``
  (each row's own ``[CLS]`` and padding dropped, ``<&&&>`` kept between comments); the other
  videos' row, the facts, the period and subtitles are not read (``use_kg`` is ignored).
- Multimodal encoder (``multimodal_encoder``): a transformer encoder over the aggregated video
  token followed by the text encoder's outputs, with a learned type embedding per modality;
  its outputs are split back into the video token and the text states, which the decoder's
  two cross-attentions read.
- Decoder blocks (pre-norm): causal self-attention, attention to the text, attention to the
  video, feed-forward; word embeddings shared by the text encoder and the decoder;
  sinusoidal positions.
- One stage, fine-tuning (the project's choice for this backbone): no MLM pre-training of the
  text encoder.
- ``paper`` sizes (the paper's are not given): width 512 (CLIP ViT-B/32's embedding size) and a
  512 joint space, 8 heads, feed-forward 2048, dropout 0.1, 6 text-encoder layers, 2
  multimodal-encoder layers, 6 decoder layers; training: the project's paper preset (batch
  128, lr 1e-4, 10 epochs). ``cpu``: width 128, 4 heads, feed-forward 512, 2 / 1 / 2 layers,
  no dropout, rows of 16 words.

Ranking: the mean token cross-entropy of each candidate; generation: the shared beam search.
No knowledge input, no copy path, one ablation row (``default``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from model.backbones.base import FINETUNE, Backbone, SavedConfig, Stage, TrainingBatch, register
from model.backbones.decoding import PrefixDecoder, trim
from model.backbones.transformer_parts import causal_mask, init_weights, sinusoid
from model.config import TrainConfig
from model.data.vocab import PAD
from model.encoded_split import Batch


@dataclass(frozen=True)
class SFATConfig(SavedConfig):
    name: ClassVar[str] = "sfat"
    vocab_size: int  # the corpus vocabulary plus [MASK] and [CLS]
    frame_dim: int
    d_model: int = 512
    joint_dim: int = 512  # the shared frame / chat space of the similarity (CLIP's stand-in)
    temperature: float = 0.1  # the frame weights' softmax temperature
    heads: int = 8
    text_layers: int = 6  # the context-comment encoder
    fusion_layers: int = 2  # the multimodal encoder
    decoder_layers: int = 6
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
        if self.temperature <= 0:
            raise ValueError("the frame weights' temperature must be positive")
        if self.copy or self.copy_known_comment_words:
            raise ValueError("sfat has no copy path")
        if self.max_len < 3:
            raise ValueError("max_len counts <BOS> and <EOS>: it must be at least 3")


#: Each preset's sizes over the config's defaults (the paper's).
PRESET_SIZES = {
    "paper": {},
    "cpu": {
        "d_model": 128,
        "joint_dim": 128,
        "heads": 4,
        "text_layers": 2,
        "fusion_layers": 1,
        "decoder_layers": 2,
        "d_ff": 512,
        "dropout": 0.0,
        "max_step_len": 16,
    },
}


#: Training over the preset's (model.config.preset_training): the paper gives none of its own.
PRESET_TRAINING: dict[str, dict] = {"paper": {}, "cpu": {}}


def frame_weights(
    frames: torch.Tensor, chat: torch.Tensor, present: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Softmax over the window's frames of sim(frame, chat) / temperature: ``frames`` (B, n, J)
    and ``chat`` (B, J) in the joint space, ``present`` (B, n) bool -> (B, n); a missing frame
    weighs 0, and a window without any frame weighs 0 everywhere."""
    sim = torch.einsum("bnj,bj->bn", F.normalize(frames, dim=-1), F.normalize(chat, dim=-1))
    logits = (sim / temperature).masked_fill(~present, -math.inf)
    # a window without any frame: finite logits, so neither the weights nor their gradient
    # are NaN; its weights are zeroed below like any missing frame's
    logits = logits.masked_fill(~present.any(dim=-1, keepdim=True), 0.0)
    weights = logits.softmax(dim=-1)
    return torch.where(present, weights, torch.zeros_like(weights))


@dataclass
class SFATMemory:
    """What the decoder reads: the text states, their padding and the video token."""

    text: torch.Tensor  # (B, L, d) the multimodal encoder's text outputs
    text_pad: torch.Tensor  # (B, L) bool
    video: torch.Tensor  # (B, 1, d) the multimodal encoder's video output
    weights: torch.Tensor  # (B, 2l+1) the frame weights (for inspection)

    def select(self, idx: torch.Tensor) -> SFATMemory:
        return SFATMemory(self.text[idx], self.text_pad[idx], self.video[idx], self.weights[idx])


class DecoderBlock(nn.Module):
    """Causal self-attention, attention to the text, then to the video, feed-forward."""

    def __init__(self, cfg: SFATConfig) -> None:
        super().__init__()
        d, heads, p = cfg.d_model, cfg.heads, cfg.dropout
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=p, batch_first=True)
        self.text_attn = nn.MultiheadAttention(d, heads, dropout=p, batch_first=True)
        self.video_attn = nn.MultiheadAttention(d, heads, dropout=p, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, cfg.d_ff), nn.ReLU(), nn.Linear(cfg.d_ff, d))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(4))
        self.drop = nn.Dropout(p)

    def forward(self, y, causal, y_pad, mem: SFATMemory) -> torch.Tensor:
        x = self.norms[0](y)
        y = y + self.drop(self.self_attn(x, x, x, attn_mask=causal, key_padding_mask=y_pad)[0])
        x = self.norms[1](y)
        a = self.text_attn(x, mem.text, mem.text, key_padding_mask=mem.text_pad, need_weights=False)
        y = y + self.drop(a[0])
        x = self.norms[2](y)
        y = y + self.drop(self.video_attn(x, mem.video, mem.video, need_weights=False)[0])
        return y + self.drop(self.ff(self.norms[3](y)))


@register("sfat")
class SFAT(PrefixDecoder, Backbone):
    """The backbone ``sfat`` (the module docstring says what each part is)."""

    config_class: ClassVar[type] = SFATConfig
    preset_sizes = PRESET_SIZES
    preset_training = PRESET_TRAINING

    def __init__(self, cfg: SFATConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.embed = nn.Embedding(cfg.vocab_size, d, padding_idx=PAD)  # shared

        def encoder(layers: int) -> nn.TransformerEncoder:
            layer = nn.TransformerEncoderLayer(
                d, cfg.heads, cfg.d_ff, cfg.dropout, batch_first=True, norm_first=True
            )
            return nn.TransformerEncoder(layer, layers, nn.LayerNorm(d), enable_nested_tensor=False)

        self.text_encoder = encoder(cfg.text_layers)
        self.frame_joint = nn.Linear(cfg.frame_dim, cfg.joint_dim)
        self.chat_joint = nn.Linear(d, cfg.joint_dim)
        self.video_proj = nn.Linear(cfg.frame_dim, d)
        self.no_video = nn.Parameter(torch.zeros(d))
        self.modality = nn.Embedding(2, d)  # 0: video, 1: text
        self.multimodal_encoder = encoder(cfg.fusion_layers)
        self.comment_decoder = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.decoder_layers))
        self.final_norm = nn.LayerNorm(d)
        self.out = nn.Linear(d, cfg.vocab_size)
        self.drop = nn.Dropout(cfg.dropout)
        n_pos = max(cfg.max_len, 2 * cfg.radius * cfg.max_step_len + 1)
        self.register_buffer("position", sinusoid(n_pos, d), persistent=False)
        self.register_buffer("causal", causal_mask(cfg.max_len), persistent=False)
        init_weights(self, self.embed)

    # -- configuration and stages ---------------------------------------------------------

    def stages(self, train: TrainConfig) -> tuple[Stage, ...]:
        return (Stage(FINETUNE, train.epochs, train.lr, use_kg=False),)

    # -- encoders ---------------------------------------------------------------------------

    def _words(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids) * math.sqrt(self.cfg.d_model) + self.position[: ids.shape[1]]
        return self.drop(x)

    def _comment_words(self, rows: torch.Tensor) -> torch.Tensor:
        """(B, 2l+1, n) rows -> (B, 1 + words): ``[CLS]`` then the context seconds' words in
        time order (each row's ``[CLS]`` and padding dropped; the other videos' row left out)."""
        cls_id = self.cfg.vocab_size - 1
        flat = rows[:, : 2 * self.cfg.radius].reshape(rows.shape[0], -1)
        keep = flat.ne(PAD) & flat.ne(cls_id)
        order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # words first
        words = torch.where(keep, flat, torch.full_like(flat, PAD)).gather(1, order)
        start = torch.full_like(flat[:, :1], cls_id)
        return trim(torch.cat([start, words], dim=1))[:, : len(self.position)]

    def aggregate(
        self, frames: torch.Tensor, present: torch.Tensor, chat: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The frame weights (B, n) of ``frames`` (B, n, F) against the chat vectors ``chat``
        (B, d), and the aggregated video (B, F): the weighted sum of the frames."""
        weights = frame_weights(
            self.frame_joint(frames), self.chat_joint(chat), present, self.cfg.temperature
        )
        frames = torch.where(present.unsqueeze(-1), frames, torch.zeros_like(frames))
        return weights, torch.einsum("bn,bnf->bf", weights, frames)

    def encode(self, batch: Batch, use_kg: bool = True) -> SFATMemory:
        """The decoder's memory for a batch of contexts; ``use_kg`` is ignored (no facts)."""
        words = self._comment_words(batch.rows)  # (B, L)
        pad = words.eq(PAD)
        text = self.text_encoder(self._words(words), src_key_padding_mask=pad)  # (B, L, d)
        weights, video = self.aggregate(batch.frames, batch.frame_mask, text[:, 0])
        seen = batch.frame_mask.any(dim=1, keepdim=True)  # (B, 1)
        video = torch.where(seen, self.video_proj(video), self.no_video.expand(len(words), -1))
        tokens = torch.cat([video.unsqueeze(1), text], dim=1) + self.modality(
            torch.cat([torch.zeros_like(words[:, :1]), torch.ones_like(words)], dim=1)
        )
        mask = torch.cat([torch.zeros_like(pad[:, :1]), pad], dim=1)
        fused = self.multimodal_encoder(self.drop(tokens), src_key_padding_mask=mask)
        return SFATMemory(fused[:, 1:], pad, fused[:, :1], weights)

    # -- decoder ----------------------------------------------------------------------------

    def decode(self, mem: SFATMemory, tgt_in: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits (B, len, V) after each prefix of ``tgt_in`` (B, len)."""
        n = tgt_in.shape[1]
        y = self._words(tgt_in)
        y_pad = tgt_in.eq(PAD)
        y_pad[:, 0] = False
        for block in self.comment_decoder:
            y = block(y, self.causal[:n, :n], y_pad, mem)
        return self.out(self.final_norm(y))

    def loss(self, memory: SFATMemory, batch: TrainingBatch, stage: str) -> torch.Tensor:
        """Teacher-forced cross-entropy of the ground truths, mean over words."""
        if stage != FINETUNE:
            raise ValueError(f"sfat has no training stage {stage!r}")
        return self.generation_loss(memory, batch)
