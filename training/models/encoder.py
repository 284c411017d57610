"""The JEPA/tokenizer encoder: 5 gated strided conv blocks → 1×1 bottleneck → Conformer stack (spec §2)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from training.configs import EncoderConfig
from training.models.conformer import conformer_stack
from training.models.daam import DAAMGate, GateStats
from training.models.init import init_weights
from training.models.resblock import residual_stack
from training.models.snake import SnakeBeta

_INPUT_KERNEL = 7  # input conv k7 p3, no activation after it (spec §2.1)


def stride_padding(stride: int, legacy: bool = False) -> tuple[int, int]:
    """(left, right) zero padding of a kernel-2s, stride-s conv.

    Exact geometry pads ⌈s/2⌉ left and ⌊s/2⌋ right, so L samples give ⌊L/s⌋ frames for every stride.
    The reference pads ⌊s/2⌋ on both sides, which drops one frame at odd strides (spec §11.1).
    """
    if legacy:
        return stride // 2, stride // 2
    return (stride + 1) // 2, stride // 2


def conv_output_length(length: int, stride: int, legacy: bool = False) -> int:
    """Output length of one kernel-2s, stride-s block for `length` input samples (may be <= 0)."""
    left, right = stride_padding(stride, legacy)
    return (length + left + right - 2 * stride) // stride + 1


def frames_for_length(num_samples: int, strides: Sequence[int], legacy: bool = False) -> int:
    """Latent frames for `num_samples` waveform samples through the strided blocks (never negative).

    Exact geometry: num_samples // Π strides. Legacy: one frame fewer per odd stride for hop-aligned input.
    """
    length = int(num_samples)
    for stride in strides:
        length = conv_output_length(length, stride, legacy)
    return max(length, 0)


class EncoderBlock(nn.Module):
    """Strided conv (k = 2s) → SnakeBeta → residual stack → DAAM gate (spec §2.2).

    Shapes: [B, C_in, L] -> [B, C_out, L // stride] (exact) or one frame fewer at odd strides (legacy).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        n_res_blocks: int,
        daam_components: int = 4,
        daam_alpha_init: float = 0.05,
        daam_spread_init: bool = False,
        legacy_padding: bool = False,
    ) -> None:
        super().__init__()
        self.stride = stride
        self.padding = stride_padding(stride, legacy_padding)
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size=2 * stride, stride=stride)
        self.snake = SnakeBeta(out_channels)
        self.res_blocks = residual_stack(out_channels, n_res_blocks)
        self.gate = DAAMGate(out_channels, daam_components, daam_alpha_init, daam_spread_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C_in, L] -> [B, C_out, L // stride]."""
        x = self.conv(F.pad(x, self.padding))
        return self.gate(self.res_blocks(self.snake(x)))


class Encoder(nn.Module):
    """Waveform → continuous latent frames z, the JEPA target space and the FSQ input (spec §2.1).

    input conv (1 → C₀, k7) → 5 EncoderBlocks (each ending in a DAAM gate) → 1×1 bottleneck (→ code_dim)
    → Conformer stack (the last block's final LayerNorm output is z; no projection or gate after it).

    Exact geometry by default: L = N·hop samples give N frames; `legacy_padding=True` reproduces the
    reference's N − 1 (spec §11.1). Weight shapes are the same either way.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        channels = config.channels
        if len(channels) != len(config.strides) + 1:
            raise ValueError(
                f"EncoderConfig.channels has {len(channels)} entries for {len(config.strides)} strides; "
                "it needs one for the input conv plus one per stride"
            )
        self.config = config
        self.input_conv = nn.Conv1d(1, channels[0], _INPUT_KERNEL, padding=_INPUT_KERNEL // 2)
        self.blocks = nn.ModuleList(
            EncoderBlock(
                channels[i],
                channels[i + 1],
                stride,
                config.n_res_blocks,
                config.daam_components,
                config.daam_alpha_init,
                config.daam_spread_init,
                config.legacy_padding,
            )
            for i, stride in enumerate(config.strides)
        )
        self.bottleneck_proj = nn.Conv1d(channels[-1], config.code_dim, kernel_size=1)
        self.conformers = conformer_stack(
            config.n_conformer, config.code_dim, config.heads, config.ff_mult, config.conv_kernel, config.dropout
        )
        self.apply(init_weights)

    @property
    def hop(self) -> int:
        """Waveform samples per latent frame (9600 at 24 kHz, 6400 at 16 kHz)."""
        return self.config.hop

    @property
    def frame_rate(self) -> float:
        """Latent frames per second (2.5 for both presets)."""
        return self.config.frame_rate

    @property
    def code_dim(self) -> int:
        return self.config.code_dim

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for `num_samples` input samples, computed analytically (spec §11.26).

        Exact: num_samples // hop. Legacy: one frame fewer per odd stride for hop-aligned inputs.
        """
        return frames_for_length(num_samples, self.config.strides, self.config.legacy_padding)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Encode a batch of mono waveforms.

        wav [B, 1, L] -> z [B, code_dim, num_frames(L)] (= L // hop with exact geometry).
        """
        if wav.dim() != 3 or wav.shape[1] != 1:
            raise ValueError(f"Encoder input must be mono [B, 1, L], got shape {tuple(wav.shape)}")
        if self.num_frames(wav.shape[-1]) < 1:
            raise ValueError(
                f"waveform of {wav.shape[-1]} samples gives no frames; pad it to at least one hop "
                f"({self.hop} samples, more with legacy_padding)"
            )
        x = self.input_conv(wav)
        for block in self.blocks:
            x = block(x)
        x = self.bottleneck_proj(x)
        return self.conformers(x.transpose(1, 2)).transpose(1, 2)  # Conformers run on [B, T, D]

    def gates(self) -> list[DAAMGate]:
        """The DAAM gates, one per conv block, in block order."""
        return [module for module in self.blocks.modules() if isinstance(module, DAAMGate)]

    def gate_stats(self) -> list[GateStats | None]:
        """Last-forward statistics of the 5 DAAM gates, block order (None before the first forward)."""
        return [gate.stats() for gate in self.gates()]
