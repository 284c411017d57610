"""Conformer block in the reference's macaron order, without positional encoding (spec §2.3, §11.7).

Layout: `ConformerBlock` and `FeedForward` work on [B, T, D] (time-major, as Linear/LayerNorm want);
`ConformerConvModule` works on [B, D, T] (as Conv1d/GroupNorm want). Callers holding [B, D, T] features
transpose once around a whole stack, not per block.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class FeedForward(nn.Module):
    """Pre-norm feed-forward: LN → Linear(d, m·d) → GELU → Dropout → Linear(m·d, d) → Dropout.

    Shapes: [B, T, D] -> [B, T, D].
    """

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim),
            nn.Linear(dim, mult * dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mult * dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, D] -> [B, T, D]."""
        return self.net(x)


class MultiHeadSelfAttention(nn.Module):
    """Pre-norm, non-causal MHSA with a fused QKV projection; no positional encoding, no padding mask.

    Attention dropout applies only in training; there is no dropout after the output projection (spec §2.3).
    Shapes: [B, T, D] -> [B, T, D].
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.1) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"Conformer dim {dim} is not divisible by heads {heads}; pick heads dividing dim")
        self.heads = heads
        self.dropout = dropout
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, D] -> [B, T, D]."""
        batch, frames, dim = x.shape
        qkv = self.qkv(self.norm(x)).view(batch, frames, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, H, T, D/H]
        attended = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(attended.transpose(1, 2).reshape(batch, frames, dim))  # [B, H, T, D/H] -> [B, T, D]


class ConformerConvModule(nn.Module):
    """GroupNorm(1) → 1×1 conv d→2d → GLU → depthwise conv k → GroupNorm(1) → SiLU → 1×1 conv → Dropout.

    GroupNorm with one group normalises over channels and time together, per sample (spec §2.3).
    Shapes: [B, D, T] -> [B, D, T].
    """

    def __init__(self, dim: int, kernel_size: int = 31, dropout: float = 0.1) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"Conformer conv kernel_size must be odd for 'same' padding, got {kernel_size}")
        self.net = nn.Sequential(
            nn.GroupNorm(1, dim),
            nn.Conv1d(dim, 2 * dim, kernel_size=1),
            nn.GLU(dim=1),
            nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim),
            nn.GroupNorm(1, dim),
            nn.SiLU(),
            nn.Conv1d(dim, dim, kernel_size=1),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, D, T] -> [B, D, T]."""
        return self.net(x)


class ConformerBlock(nn.Module):
    """x += ½FF₁(x); x += MHSA(x); x += Conv(x); x += ½FF₂(x); x = LN(x) (spec §2.3, the code's order).

    384 640 parameters at d = 128 and 1 522 944 at d = 256 with kernel 31.
    Shapes: [B, T, D] -> [B, T, D].
    """

    def __init__(self, dim: int, heads: int, ff_mult: int = 4, kernel_size: int = 31, dropout: float = 0.1) -> None:
        super().__init__()
        self.ff1 = FeedForward(dim, ff_mult, dropout)
        self.attn = MultiHeadSelfAttention(dim, heads, dropout)
        self.conv = ConformerConvModule(dim, kernel_size, dropout)
        self.ff2 = FeedForward(dim, ff_mult, dropout)
        self.norm_final = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, D] -> [B, T, D]."""
        x = x + 0.5 * self.ff1(x)
        x = x + self.attn(x)
        x = x + self.conv(x.transpose(1, 2)).transpose(1, 2)  # conv module runs on [B, D, T]
        x = x + 0.5 * self.ff2(x)
        return self.norm_final(x)


def conformer_stack(
    n_blocks: int, dim: int, heads: int, ff_mult: int = 4, kernel_size: int = 31, dropout: float = 0.1
) -> nn.Sequential:
    """`n_blocks` ConformerBlocks in sequence; [B, T, D] -> [B, T, D]."""
    return nn.Sequential(*(ConformerBlock(dim, heads, ff_mult, kernel_size, dropout) for _ in range(n_blocks)))
