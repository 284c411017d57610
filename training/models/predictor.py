"""JEPA predictor: maps masked online latents to predictions of the target latents (spec §3)."""

from __future__ import annotations

import torch
from torch import nn

from training.configs import PredictorConfig
from training.models.conformer import ConformerBlock
from training.models.init import init_weights


class Predictor(nn.Module):
    """1×1 conv D→W → GELU → Conformer(W) → [1×1 conv W→W → GELU → Conformer(W)] × (n−1) → 1×1 conv W→D.

    With the paper's n = 2, W = 256, 16 heads and kernel 31 this is the reference's 3 177 600 parameters
    (the mask token lives in `JEPA`). Predictions are made at every position; the loss picks the masked ones.
    Shapes: [B, D, T] -> [B, D, T].
    """

    def __init__(
        self, config: PredictorConfig, code_dim: int, ff_mult: int = 4, kernel_size: int = 31, dropout: float = 0.1
    ) -> None:
        super().__init__()
        if config.n_conformer < 1:
            raise ValueError(f"PredictorConfig.n_conformer must be >= 1, got {config.n_conformer}")
        width = config.width
        self.in_proj = nn.Conv1d(code_dim, width, kernel_size=1)
        self.mid_projs = nn.ModuleList(nn.Conv1d(width, width, kernel_size=1) for _ in range(config.n_conformer - 1))
        self.conformers = nn.ModuleList(
            ConformerBlock(width, config.heads, ff_mult, kernel_size, dropout) for _ in range(config.n_conformer)
        )
        self.out_proj = nn.Conv1d(width, code_dim, kernel_size=1)
        self.activation = nn.GELU()
        self.apply(init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """[B, D, T] -> [B, D, T]."""
        projections = [self.in_proj, *self.mid_projs]
        for projection, conformer in zip(projections, self.conformers, strict=True):
            h = self.activation(projection(z))  # [B, W, T]
            z = conformer(h.transpose(1, 2)).transpose(1, 2)  # Conformer runs on [B, T, W]
        return self.out_proj(z)
