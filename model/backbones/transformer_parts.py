"""What the transformer backbones build the same way: sinusoidal positions (Vaswani et al.
2017), the decoder's causal mask, and their initialisation (Xavier-uniform matrices, the
``<PAD>`` embedding zero)."""

from __future__ import annotations

import math

import torch
from torch import nn

from model.data.vocab import PAD


def sinusoid(n: int, d: int) -> torch.Tensor:
    """(n, d) sinusoidal position encodings (Vaswani et al. 2017)."""
    pos = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : d // 2]
    return pe


def causal_mask(n: int) -> torch.Tensor:
    """(n, n) bool: True above the diagonal (a position never reads a later one)."""
    return torch.triu(torch.ones(n, n, dtype=torch.bool), 1)


def init_weights(model: nn.Module, embed: nn.Embedding) -> None:
    """Xavier-uniform for every matrix of ``model``, then ``embed``'s ``<PAD>`` row zero."""
    for p in model.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)
    with torch.no_grad():
        embed.weight[PAD].zero_()
