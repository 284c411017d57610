"""HiFi-GAN "type 1" residual block shared by the encoder blocks and the decoder MRF (spec §2.2, §6)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

_LEAKY_SLOPE = 0.1


class ResBlock(nn.Module):
    """For each dilation d: x ← x + conv_{k,1}(lrelu(conv_{k,d}(lrelu(x)))), "same" padding.

    Shapes: [B, C, T] -> [B, C, T].

    A tap at offset j·d from the centre (|j| ≤ (k−1)/2) reads only zero padding at every output position once
    |j|·d ≥ T. Those taps contribute exactly nothing, so a dilated conv equals the conv with its kernel cut to
    the taps |j| ≤ ⌊(T−1)/d⌋ (padding cut to match), and to its centre tap alone when d ≥ T. This skips padding
    by up to 78 125 samples on short sequences without changing the output, for every kernel size (the encoder's
    k = 3 and the decoder MRF's k = 7 and 11).
    """

    def __init__(self, channels: int, kernel_size: int = 3, dilations: Sequence[int] = (1, 3, 5)) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.dilations = tuple(dilations)
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=d * (kernel_size - 1) // 2)
            for d in self.dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=1, padding=(kernel_size - 1) // 2)
            for _ in self.dilations
        )

    def _dilated(self, conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
        """The dilated conv restricted to the taps that can reach a real sample: [B, C, T] -> [B, C, T]."""
        dilation, half = conv.dilation[0], (self.kernel_size - 1) // 2
        reach = min(half, (x.shape[-1] - 1) // dilation)  # taps each side that can land inside [0, T)
        if reach == half:
            return conv(x)
        centre = self.kernel_size // 2
        weight = conv.weight[:, :, centre - reach : centre + reach + 1]
        return F.conv1d(x, weight, conv.bias, padding=reach * dilation, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2, strict=True):
            y = self._dilated(cast(nn.Conv1d, conv1), F.leaky_relu(x, _LEAKY_SLOPE))
            x = x + conv2(F.leaky_relu(y, _LEAKY_SLOPE))
        return x


def residual_stack(channels: int, n_blocks: int, kernel_size: int = 3) -> nn.Sequential:
    """The encoder's `n_blocks` ResBlocks, block i with dilations (1, 3^i, 5^i) (spec §2.2)."""
    return nn.Sequential(*(ResBlock(channels, kernel_size, dilations=(1, 3**i, 5**i)) for i in range(n_blocks)))
