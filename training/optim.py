"""Optimiser and learning-rate schedule shared by both stages (spec §8, §11.22)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import LambdaLR


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with β (0.8, 0.99) and a linear warm-up followed by cosine decay over the run.

    Weight decay is the paper's 1e-3 (spec §8; 0.01 is only the fork's ds_config example). The paper gives no
    schedule; warm-up then cosine over the actual step count is the choice spec §11.22 recommends.
    """

    lr: float = 1.5e-4
    betas: tuple[float, float] = (0.8, 0.99)
    weight_decay: float = 1e-3
    eps: float = 1e-8
    warmup_steps: int = 1000
    min_lr_ratio: float = 0.0  # cosine floor as a fraction of lr
    grad_clip_norm: float = 1.0


def adamw(parameters: Iterable[torch.nn.Parameter], config: OptimConfig, lr_scale: float = 1.0) -> torch.optim.AdamW:
    """AdamW over the trainable `parameters`; `lr_scale` gives the stage-2 discriminator its half rate."""
    return torch.optim.AdamW(
        [p for p in parameters if p.requires_grad],
        lr=config.lr * lr_scale,
        betas=config.betas,
        weight_decay=config.weight_decay,
        eps=config.eps,
    )


def warmup_cosine(optimizer: torch.optim.Optimizer, config: OptimConfig, total_steps: int) -> LambdaLR:
    """lr multiplier: linear 0 → 1 over `warmup_steps`, then cosine 1 → `min_lr_ratio` at `total_steps`."""
    warmup = max(0, min(config.warmup_steps, total_steps - 1))

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
