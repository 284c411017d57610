"""Multi-period and multi-scale discriminators for stage 2 (spec §7).

Paper sizes (spec §10): MPD 41 092 165 parameters (5 × 8.22 M), MSD 16 913 859 (3 × 5.64 M). There is no
spectral or weight norm. Every sub-discriminator returns flattened logits plus its feature maps: each
activation *and* the post-conv output, which is what feature matching compares (spec §7).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from training.configs import DiscriminatorConfig
from training.models.init import init_weights

_LEAKY_SLOPE = 0.1

# MPD (spec §7): Conv2d kernels (5, 1), stride (3, 1) on all but the last layer, padding (2, 0); post (3, 1).
_MPD_KERNEL = 5
_MPD_STRIDE = 3
_MPD_POST_KERNEL = 3

# MSD (spec §7): a k15 input conv, k41 stride-4 grouped convs, a k5 conv, then a k3 post conv.
_MSD_FIRST_KERNEL = 15
_MSD_GROUPED_KERNEL = 41
_MSD_GROUPED_STRIDE = 4
_MSD_LAST_KERNEL = 5
_MSD_POST_KERNEL = 3

# MSD inputs are average-pooled with AvgPool1d(4, stride 2, pad 2) between scales (spec §7).
_POOL_KERNEL, _POOL_STRIDE, _POOL_PADDING = 4, 2, 2


@dataclass
class SubDiscriminatorOutput:
    """One sub-discriminator's verdict: `logits` [B, N] (flattened) and `features`, one tensor per layer."""

    logits: torch.Tensor
    features: list[torch.Tensor]


@dataclass
class DiscriminatorOutput:
    """A multi-discriminator's verdicts: one entry per sub-discriminator (per period or per scale)."""

    logits: list[torch.Tensor]
    features: list[list[torch.Tensor]]

    @classmethod
    def gather(cls, outputs: Sequence[SubDiscriminatorOutput]) -> DiscriminatorOutput:
        return cls(logits=[o.logits for o in outputs], features=[o.features for o in outputs])


def _score(x: torch.Tensor, convs: nn.ModuleList, post: nn.Module) -> SubDiscriminatorOutput:
    """Conv stack with LReLU(0.1) after each layer, then the post conv; every activation is a feature map."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), _LEAKY_SLOPE)
        features.append(x)
    x = post(x)
    features.append(x)
    return SubDiscriminatorOutput(logits=x.flatten(1), features=features)


class PeriodDiscriminator(nn.Module):
    """Looks at every p-th sample: reflect-pad to a multiple of p, fold to [B, 1, L/p, p], Conv2d stack (spec §7).

    Shapes: [B, 1, L] -> logits [B, N], features [B, C_i, L_i, p].
    """

    def __init__(self, period: int, channels: Sequence[int]) -> None:
        super().__init__()
        self.period = period
        widths = (1, *channels)
        last = len(channels) - 1
        self.convs = nn.ModuleList(
            nn.Conv2d(
                widths[i],
                widths[i + 1],
                (_MPD_KERNEL, 1),
                stride=(1 if i == last else _MPD_STRIDE, 1),
                padding=(_MPD_KERNEL // 2, 0),
            )
            for i in range(len(channels))
        )
        self.post = nn.Conv2d(channels[-1], 1, (_MPD_POST_KERNEL, 1), padding=(_MPD_POST_KERNEL // 2, 0))

    def forward(self, wav: torch.Tensor) -> SubDiscriminatorOutput:
        """Score a waveform: [B, 1, L] -> logits [B, N] plus feature maps."""
        batch, channels, length = wav.shape
        remainder = length % self.period
        if remainder:
            wav = F.pad(wav, (0, self.period - remainder), mode="reflect")
        folded = wav.view(batch, channels, -1, self.period)  # [B, 1, L/p, p]
        return _score(folded, self.convs, self.post)


class MultiPeriodDiscriminator(nn.Module):
    """One PeriodDiscriminator per period, (2, 3, 5, 7, 11) in the paper (spec §7).

    Shapes: [B, 1, L] -> DiscriminatorOutput with one entry per period.
    """

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, config.mpd_channels) for p in config.periods)
        self.apply(init_weights)

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        """Score a waveform at every period: [B, 1, L] -> len(periods) logits [B, N_p] and feature lists."""
        return DiscriminatorOutput.gather([d(wav) for d in self.discriminators])


class ScaleDiscriminator(nn.Module):
    """MelGAN-style 1-D conv stack with grouped strided convs (spec §7).

    `channels` has one entry per conv (6 in the paper); `groups` one per grouped strided conv (4).
    Shapes: [B, 1, L] -> logits [B, N], features [B, C_i, L_i].
    """

    def __init__(self, channels: Sequence[int], groups: Sequence[int]) -> None:
        super().__init__()
        if len(channels) != len(groups) + 2:
            raise ValueError(
                f"MSD channels {tuple(channels)} and groups {tuple(groups)} do not fit: channels needs one "
                "entry for the input conv, one per grouped conv and one for the final k5 conv"
            )
        layers = [nn.Conv1d(1, channels[0], _MSD_FIRST_KERNEL, padding=_MSD_FIRST_KERNEL // 2)]
        for i, group in enumerate(groups):
            layers.append(
                nn.Conv1d(
                    channels[i],
                    channels[i + 1],
                    _MSD_GROUPED_KERNEL,
                    stride=_MSD_GROUPED_STRIDE,
                    groups=group,
                    padding=_MSD_GROUPED_KERNEL // 2,
                )
            )
        layers.append(nn.Conv1d(channels[-2], channels[-1], _MSD_LAST_KERNEL, padding=_MSD_LAST_KERNEL // 2))
        self.convs = nn.ModuleList(layers)
        self.post = nn.Conv1d(channels[-1], 1, _MSD_POST_KERNEL, padding=_MSD_POST_KERNEL // 2)

    def forward(self, wav: torch.Tensor) -> SubDiscriminatorOutput:
        """Score a waveform: [B, 1, L] -> logits [B, N] plus feature maps."""
        return _score(wav, self.convs, self.post)


class MultiScaleDiscriminator(nn.Module):
    """`msd_scales` ScaleDiscriminators on the waveform and average-pooled copies (spec §7, §11.17).

    By default scale i sees the input pooled i times (×1, ×2, ×4), the MelGAN/HiFi-GAN practice;
    `legacy_msd_pooling` reproduces the reference, where every scale after the first sees it pooled once.

    Shapes: [B, 1, L] -> DiscriminatorOutput with one entry per scale.
    """

    def __init__(self, config: DiscriminatorConfig) -> None:
        super().__init__()
        self.legacy_pooling = config.legacy_msd_pooling
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(config.msd_channels, config.msd_groups) for _ in range(config.msd_scales)
        )
        self.pool = nn.AvgPool1d(_POOL_KERNEL, _POOL_STRIDE, padding=_POOL_PADDING)
        self.apply(init_weights)

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        """Score a waveform at every scale: [B, 1, L] -> msd_scales logits [B, N_s] and feature lists."""
        outputs = []
        x = wav
        for i, discriminator in enumerate(self.discriminators):
            if i > 0:
                x = self.pool(wav if self.legacy_pooling else x)
            outputs.append(discriminator(x))
        return DiscriminatorOutput.gather(outputs)
