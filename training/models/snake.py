"""SnakeBeta periodic activation (spec §2.2)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# a = softplus(raw) + 0.01 keeps the frequency positive; 1/a is capped at 10 so tiny frequencies cannot
# blow up the amplitude term (spec §2.2).
_MIN_FREQUENCY = 0.01
_MAX_INVERSE_FREQUENCY = 10.0


class SnakeBeta(nn.Module):
    """y = x + min(1/a, 10) · sin²(a·x) with one learnable frequency per channel.

    Despite the name it has a single per-channel parameter `raw` (init 0, so a ≈ 0.703).
    Shapes: [B, C, T] -> [B, C, T].
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.raw = nn.Parameter(torch.zeros(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frequency = F.softplus(self.raw) + _MIN_FREQUENCY
        inverse = torch.clamp(1.0 / frequency, max=_MAX_INVERSE_FREQUENCY)
        return x + inverse * torch.sin(frequency * x).pow(2)
