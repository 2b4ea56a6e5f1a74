"""KLVCG's building blocks (Chen et al., §IV-A): the transformer encoders, the knowledge
encoder of eq. (1), the encoding the decoder reads (:class:`EncoderOutput`), the decoder layer
computed with the memory's keys and values prepared once per context (:func:`layer_rest`),
which the teacher-forced decoder uses, and the incremental decoder of beam search
(:class:`StepDecoder`). The model itself is :class:`model.backbones.klvcg.KLVCG`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.backbones.klvcg_config import KLVCGConfig
from model.backbones.klvcg_copy import PointerStep

# the encoders' nested-tensor fast path (inference) warns that its API is a prototype
warnings.filterwarnings("ignore", message="The PyTorch API of nested tensors", category=UserWarning)


def transformer_encoder(
    cfg: KLVCGConfig, layers: int, heads: int, nested: bool = False
) -> nn.TransformerEncoder:
    """``nested``: in inference, rows of different lengths go through the layers as one nested
    tensor, so their padding costs nothing (PyTorch's fast path; training pads as before)."""
    layer = nn.TransformerEncoderLayer(
        cfg.d_model,
        heads,
        cfg.ffn_factor * cfg.d_model,
        cfg.dropout,
        batch_first=True,
        norm_first=False,
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=nested)


class KnowledgeEncoder(nn.Module):
    """Eq. (1): self-attention among the knowledge words, then cross-attention from M."""

    def __init__(self, cfg: KLVCGConfig) -> None:
        super().__init__()
        d, h = cfg.d_model, cfg.knowledge_heads
        self.self_block = transformer_encoder(cfg, 1, h)
        self.cross = nn.MultiheadAttention(d, h, dropout=cfg.dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(
            nn.Linear(d, cfg.ffn_factor * d),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.ffn_factor * d, d),
        )
        self.norm2 = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self, m: torch.Tensor, k: torch.Tensor, k_pad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(K' of shape (B, rows, d), attention over the knowledge words (B, m+1), and K~)."""
        k_tilde = self.self_block(k, src_key_padding_mask=k_pad)
        att, weights = self.cross(m, k_tilde, k_tilde, key_padding_mask=k_pad)
        x = self.norm1(m + self.drop(att))
        x = self.norm2(x + self.drop(self.ffn(x)))
        return x, weights.mean(dim=1), k_tilde  # attention averaged over the comment steps


@dataclass
class EncoderOutput:
    """W, and with the copy path the decoder's whole memory ([W; source]), its padding, and
    the source's pointer keys and extended ids (the first ``n_facts`` positions are the fact
    words, the rest the window's comment words)."""

    memory: torch.Tensor  # (B, L, d)
    knowledge_attention: torch.Tensor | None  # (B, m+1) or None without KG
    memory_pad: torch.Tensor | None = None  # (B, L) True: not attended
    keys: torch.Tensor | None = None  # (B, S, 2 dim): the pointer's keys and values
    source_ext: torch.Tensor | None = None  # (B, S)
    n_facts: int = 0
    # per decoder layer, the cross-attention keys and values of the memory (B, heads, L, d/h):
    # computed once per context, however many comments are decoded against it
    memory_kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    n_source: int = 0  # the source's full length (the positions extended ids count)
    source_positions: torch.Tensor | None = None  # (S,) the full-layout position of each kept
    # (B, S, span) the extended ids of the words just before each source position, nearest
    # first (PAD: none): the pointer's "go on copying" feature
    # (:class:`model.backbones.klvcg_copy.PointerHead`)
    source_before: torch.Tensor | None = None

    def select(self, idx: torch.Tensor) -> EncoderOutput:
        """The encodings of samples ``idx`` (repeats allowed: candidates, ground truths)."""

        def pick(x: torch.Tensor | None) -> torch.Tensor | None:
            return x[idx] if x is not None else None

        return EncoderOutput(
            self.memory[idx],
            pick(self.knowledge_attention),
            memory_pad=pick(self.memory_pad),
            keys=pick(self.keys),
            source_ext=pick(self.source_ext),
            n_facts=self.n_facts,
            memory_kv=[(k[idx], v[idx]) for k, v in self.memory_kv]
            if self.memory_kv is not None
            else None,
            n_source=self.n_source,
            source_positions=self.source_positions,
            source_before=pick(self.source_before),
        )

    def repeat(self, n: int) -> EncoderOutput:
        """Each sample's encoding ``n`` times in a row (beams)."""
        rows = torch.arange(self.memory.shape[0], device=self.memory.device)
        return self.select(rows.repeat_interleave(n))


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(n, t, d) -> (n, heads, t, d/heads)"""
    n, t, d = x.shape
    return x.reshape(n, t, heads, d // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    n, h, t, hd = x.shape
    return x.transpose(1, 2).reshape(n, t, h * hd)


def key_mask(pad: torch.Tensor | None) -> torch.Tensor | None:
    """scaled_dot_product_attention's boolean mask (True: attended) of a key padding mask."""
    return None if pad is None else ~pad[:, None, None, :]


def self_attention(
    layer: nn.TransformerDecoderLayer, x: torch.Tensor, allowed: torch.Tensor | None, training: bool
) -> torch.Tensor:
    """The layer's self-attention output for ``x`` (n, t, d)."""
    sa = layer.self_attn
    q, k, v = F.linear(x, sa.in_proj_weight, sa.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (split_heads(t, sa.num_heads) for t in (q, k, v))
    p = sa.dropout if training else 0.0
    att = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=p)
    return sa.out_proj(merge_heads(att))


def layer_rest(layer, x, sa_out, mk, mv, memory_mask, training: bool) -> torch.Tensor:
    """The rest of a post-norm ``nn.TransformerDecoderLayer`` after its self-attention, for
    ``x`` (n, t, d), with the memory's keys and values ``mk``/``mv`` (n, heads, L, d/h)
    computed beforehand."""
    x = layer.norm1(x + layer.dropout1(sa_out))
    ca = layer.multihead_attn
    d = ca.embed_dim
    q = split_heads(F.linear(x, ca.in_proj_weight[:d], ca.in_proj_bias[:d]), ca.num_heads)
    p = ca.dropout if training else 0.0
    att = F.scaled_dot_product_attention(q, mk, mv, attn_mask=memory_mask, dropout_p=p)
    x = layer.norm2(x + layer.dropout2(ca.out_proj(merge_heads(att))))
    ffn = layer.linear2(layer.dropout(layer.activation(layer.linear1(x))))
    return layer.norm3(x + layer.dropout3(ffn))


class StepDecoder:
    """Incremental decoding with the weights of ``model.decoder`` (``model``: a
    :class:`~model.backbones.klvcg.KLVCG`), one position at a time, for the hypotheses of ONE
    context (beam search; eval mode).

    Each layer keeps the self-attention keys and values of the positions decoded so far (with
    the causal mask, earlier positions never change) in one buffer, and uses the memory's keys
    and values of the encoding (computed once), its padded positions dropped, not masked. All
    hypotheses read the same memory, so its cross-attention is one attention with the
    hypotheses as the queries. The states equal those of
    :meth:`~model.backbones.klvcg.KLVCG.decode_states` at the last position, at a cost
    independent of the prefix length."""

    def __init__(self, model: nn.Module, enc: EncoderOutput) -> None:
        self.model = model
        self.layers = list(model.decoder.layers)
        self.pos = 0
        keep = slice(None) if enc.memory_pad is None else ~enc.memory_pad[0]
        self.memory_kv = [(k[:1, :, keep], v[:1, :, keep]) for k, v in enc.memory_kv]
        # per layer (n, 2, heads, g, d/heads): the keys [:, 0] and values [:, 1] so far
        self.cache: list[torch.Tensor] = []
        self.pointer = None
        if model.cfg.copy:
            self.pointer = PointerStep(
                model.pointer, enc.keys[0], enc.source_ext[0], enc.source_before[0], enc.n_source
            )

    def step(self, words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder state (n, d) after ``words`` (n,) at the current position, and the
        input it read (the copy gate's ``x``)."""
        model, t = self.model, self.pos
        x_in = model.norm_in(model.input_words(words) + model.target_pos.weight[t])
        x, n = x_in, len(words)
        for i, layer in enumerate(self.layers):
            sa = layer.self_attn
            heads, d = sa.num_heads, sa.embed_dim
            qkv = F.linear(x, sa.in_proj_weight, sa.in_proj_bias).view(n, 3, heads, d // heads)
            if t == 0:
                self.cache.append(x.new_zeros(n, 2, heads, self.model.cfg.max_len, d // heads))
            cache = self.cache[i]
            cache[:, :, :, t] = qkv[:, 1:]
            att = F.scaled_dot_product_attention(
                qkv[:, 0, :, None], cache[:, 0, :, : t + 1], cache[:, 1, :, : t + 1]
            )
            # the hypotheses as one sequence of queries of the context's memory (batch 1)
            sa_out = sa.out_proj(att.reshape(1, n, d))
            mk, mv = self.memory_kv[i]
            x = layer_rest(layer, x[None], sa_out, mk, mv, None, False)[0]
        self.pos += 1
        return x, x_in

    def next_logp(self, words: torch.Tensor) -> torch.Tensor:
        """log P of the next word, ``(n, vocab)`` (``vocab + n_source`` extended ids with the
        copy path), after the words read last (n, span, nearest first:
        :func:`~model.backbones.klvcg_copy.words_before`); decodes the position of
        ``words[:, 0]``."""
        h, x = self.step(words[:, 0])
        logits = self.model.out(h)
        if self.pointer is None:
            return F.log_softmax(logits.float(), dim=-1)
        return self.pointer.log_probs(logits, h, x, words)

    def reorder(self, parents: torch.Tensor) -> None:
        """Keep the caches of the hypotheses that go on (``parents``: their rows now)."""
        self.cache = [c.index_select(0, parents) for c in self.cache]
