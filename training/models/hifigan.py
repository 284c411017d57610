"""HiFi-GAN-style generator: grid values → waveform, mirrored from the encoder (spec §6).

The paper's generator is 69.29 M parameters at 24 kHz (spec §10): a 1×1 un-projection, five
SnakeBeta → ConvTranspose1d → MRF blocks, and a k7 output conv with tanh. State-dict names follow the
reference (`bottleneck_unproj`, `decoder.{i}.{snake,deconv,mrf.resblocks.j}`, `output_conv`, spec §8)
so that reference weights map over without renaming inside the generator.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from training.configs import DecoderConfig
from training.models.init import init_weights
from training.models.resblock import ResBlock
from training.models.snake import SnakeBeta

_OUTPUT_KERNEL = 7  # spec §6: "out: Conv1d 64 → 1, k7 p3"


def upsample_extra(stride: int) -> int:
    """Samples a k=2s, p=⌊s/2⌋ transposed conv adds beyond T·s: 1 for odd strides, 0 for even (spec §11.1)."""
    return stride - 2 * (stride // 2)


class MRF(nn.Module):
    """Multi-receptive-field fusion: parallel ResBlocks on the same input, averaged (spec §6).

    Shapes: [B, C, T] -> [B, C, T].
    """

    def __init__(self, channels: int, kernels: Sequence[int], dilations: Sequence[int]) -> None:
        super().__init__()
        self.resblocks = nn.ModuleList(ResBlock(channels, kernel, dilations) for kernel in kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Average of the ResBlock outputs: [B, C, T] -> [B, C, T]."""
        total = self.resblocks[0](x)
        for block in self.resblocks[1:]:
            total = total + block(x)
        return total / len(self.resblocks)


class DecoderBlock(nn.Module):
    """SnakeBeta → ConvTranspose1d(k=2s, stride s, p=⌊s/2⌋) → MRF, with an optional DAAM gate (spec §6, §11.9).

    With exact geometry (the default, spec §11.1) an odd-stride upsampler's one extra sample is trimmed,
    so the block maps T frames to exactly T·s; `legacy_padding=True` keeps it (T·s + 1), as the reference.

    Shapes: [B, C_in, T] -> [B, C_out, T * stride] (+1 for odd strides with legacy padding).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        mrf_kernels: Sequence[int],
        mrf_dilations: Sequence[int],
        use_daam: bool = False,
        legacy_padding: bool = False,
    ) -> None:
        super().__init__()
        self.stride = stride
        # The exact scheme pads the encoder's odd strides ⌈s/2⌉ left and ⌊s/2⌋ right; the adjoint of that is
        # cropping ⌈s/2⌉ samples on the left of the full transposed output, i.e. one more than p on the left.
        self.trim = 0 if legacy_padding else upsample_extra(stride)
        self.snake = SnakeBeta(in_channels)
        self.deconv = nn.ConvTranspose1d(in_channels, out_channels, 2 * stride, stride=stride, padding=stride // 2)
        self.mrf = MRF(out_channels, mrf_kernels, mrf_dilations)
        self.gate: nn.Module | None = None
        if use_daam:
            from training.models.daam import DAAMGate  # lazy: only gated decoders need it (spec §11.9)

            self.gate = DAAMGate(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample by `stride`: [B, C_in, T] -> [B, C_out, T * stride]."""
        x = self.deconv(self.snake(x))
        if self.trim:
            x = x[..., self.trim :]
        x = self.mrf(x)
        if self.gate is not None:
            x = self.gate(x)
        return x


class Generator(nn.Module):
    """Decoder from FSQ grid values to a waveform in [-1, 1] (spec §6).

    Shapes: [B, code_dim, T] -> [B, 1, T * hop] (exact geometry; legacy padding adds `legacy_extra`).
    """

    def __init__(self, config: DecoderConfig, code_dim: int, legacy_padding: bool = False) -> None:
        super().__init__()
        channels = tuple(config.channels)
        strides = tuple(config.strides)
        if len(channels) != len(strides) + 1:
            raise ValueError(
                f"DecoderConfig.channels has {len(channels)} entries and strides {len(strides)}; "
                "channels needs one entry for the un-projection plus one per upsampling block"
            )
        self.config = config
        self.code_dim = code_dim
        self.legacy_padding = legacy_padding
        self.bottleneck_unproj = nn.Conv1d(code_dim, channels[0], kernel_size=1)
        self.decoder = nn.ModuleList(
            DecoderBlock(
                channels[i],
                channels[i + 1],
                stride,
                config.mrf_kernels,
                config.mrf_dilations,
                use_daam=config.use_daam,
                legacy_padding=legacy_padding,
            )
            for i, stride in enumerate(strides)
        )
        self.output_conv = nn.Conv1d(channels[-1], 1, _OUTPUT_KERNEL, padding=_OUTPUT_KERNEL // 2)
        self.apply(init_weights)

    @property
    def hop(self) -> int:
        """Output samples per input frame (product of the strides)."""
        hop = 1
        for stride in self.config.strides:
            hop *= stride
        return hop

    def output_length(self, num_frames: int) -> int:
        """Samples produced for `num_frames` frames: hop·T exactly, or the reference's hop·T + extra (spec §6)."""
        length = num_frames
        for stride in self.config.strides:
            length = length * stride + (upsample_extra(stride) if self.legacy_padding else 0)
        return length

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """Synthesise audio from grid values: [B, code_dim, T] -> [B, 1, T * hop]."""
        if values.ndim != 3 or values.shape[1] != self.code_dim:
            raise ValueError(
                f"Generator input has shape {tuple(values.shape)}; expected [B, {self.code_dim}, T] "
                "(FSQ grid values, channels first)"
            )
        x = self.bottleneck_unproj(values)
        for block in self.decoder:
            x = block(x)
        # spec §6: no activation before the output conv; tanh bounds the waveform to [-1, 1].
        return torch.tanh(self.output_conv(x))
