"""Weight initialisation shared by every model (spec §2.5)."""

from __future__ import annotations

from torch import nn

INIT_STD = 0.02


def init_weights(module: nn.Module) -> None:
    """Truncated-normal(0.02) weights and zero biases for conv/linear layers; norms keep their defaults.

    Use as `model.apply(init_weights)`.
    """
    if isinstance(module, nn.Conv1d | nn.Conv2d | nn.ConvTranspose1d | nn.Linear):
        nn.init.trunc_normal_(module.weight, std=INIT_STD)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
