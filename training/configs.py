"""Typed model configuration and the `paper` / `tiny` presets.

Every number here is the model of Ioannides et al. (2025) as described in `docs/model.md`; "spec §N" in
comments refers to section N of that document. Presets are factory functions over these
dataclasses (STYLE rule 3), so a config is plain data that can be logged, diffed and loaded from YAML.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import TypeAdapter

# Encoder strides per supported sample rate: both give a hop of 0.4 s, i.e. 2.5 frames/s (spec §0, issue 6).
STRIDES_BY_SAMPLE_RATE: dict[int, tuple[int, ...]] = {
    24_000: (8, 8, 5, 5, 6),  # hop 9600
    16_000: (8, 8, 5, 5, 4),  # hop 6400, LibriLight's native rate
}


def _strides_for(sample_rate: int) -> tuple[int, ...]:
    if sample_rate not in STRIDES_BY_SAMPLE_RATE:
        supported = ", ".join(str(sr) for sr in STRIDES_BY_SAMPLE_RATE)
        raise ValueError(f"no encoder strides for sample_rate={sample_rate}; supported: {supported}")
    return STRIDES_BY_SAMPLE_RATE[sample_rate]


@dataclass(frozen=True)
class EncoderConfig:
    """Conv front end (5 gated strided blocks) → 1×1 bottleneck → Conformer stack (spec §2)."""

    sample_rate: int = 24_000
    channels: tuple[int, ...] = (64, 128, 256, 384, 512, 512)  # input conv width, then one per block
    strides: tuple[int, ...] = (8, 8, 5, 5, 6)
    n_res_blocks: int = 8
    code_dim: int = 128
    n_conformer: int = 8
    heads: int = 16
    ff_mult: int = 4
    conv_kernel: int = 31  # Conformer depthwise kernel
    dropout: float = 0.1
    daam_components: int = 4
    daam_alpha_init: float = 0.05
    daam_spread_init: bool = False  # spec §11.5: reference init ties all K components; True spreads offsets
    legacy_padding: bool = False  # spec §11.1: True reproduces the reference's N-1 frames for N hops

    @property
    def hop(self) -> int:
        """Waveform samples per latent frame (product of the strides)."""
        hop = 1
        for stride in self.strides:
            hop *= stride
        return hop

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop


@dataclass(frozen=True)
class PredictorConfig:
    """JEPA predictor: 1×1 convs around two Conformer blocks at `width` (spec §3)."""

    width: int = 256
    heads: int = 16
    n_conformer: int = 2


@dataclass(frozen=True)
class JEPAConfig:
    """Stage-1 objective: EMA target encoder, block masking in latent space, masked MSE (spec §3)."""

    ema_momentum: float = 0.996  # constant by default (spec §3, §11.3)
    ema_final_momentum: float | None = None  # set (e.g. 1.0) to ramp linearly to it over `ema_ramp_steps`
    ema_ramp_steps: int = 0
    mask_ratio: float = 0.5
    min_span: int = 2
    max_span_floor: int = 4  # s_max = max(max_span_floor, T // 4)
    predictor: PredictorConfig = field(default_factory=PredictorConfig)


@dataclass(frozen=True)
class FSQConfig:
    """Finite scalar quantiser and mixed-radix packing (spec §4, §5)."""

    levels: tuple[int, ...] = (4,) * 128  # one entry per code dimension
    group_size: int = 7  # dimensions packed into one token


@dataclass(frozen=True)
class DecoderConfig:
    """HiFi-GAN generator mirrored from the encoder (spec §6)."""

    channels: tuple[int, ...] = (512, 512, 384, 256, 128, 64)  # after un-projection, then one per block
    strides: tuple[int, ...] = (6, 5, 5, 8, 8)
    mrf_kernels: tuple[int, ...] = (3, 7, 11)
    mrf_dilations: tuple[int, ...] = (1, 3, 5)
    use_daam: bool = False  # spec §11.9: advertised by the paper, off in its training


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Multi-period + multi-scale discriminators (spec §7)."""

    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    mpd_channels: tuple[int, ...] = (32, 128, 512, 1024, 1024)
    msd_channels: tuple[int, ...] = (16, 64, 256, 1024, 1024, 1024)
    msd_groups: tuple[int, ...] = (4, 16, 64, 256)
    msd_scales: int = 3
    legacy_msd_pooling: bool = False  # spec §11.17: True pools scales 2 and 3 only once, as the reference


@dataclass(frozen=True)
class LossConfig:
    """Stage-2 generator/discriminator loss weights (spec §7, §11.16)."""

    stft_resolutions: tuple[tuple[int, int, int], ...] = (
        (2048, 512, 2048),
        (1024, 256, 1024),
        (512, 128, 512),
        (256, 64, 256),
        (128, 32, 128),
    )  # (n_fft, hop, win)
    waveform_weight: float = 1.0
    stft_weight: float = 2.0
    adversarial_weight: float = 0.1
    feature_matching_scale: float = 2.0
    disc_start_step: int = 5000  # generator GAN/FM terms are gated on the same step (spec §11.16)


@dataclass(frozen=True)
class CodecConfig:
    """Everything needed to rebuild the tokenizer: encoder, stage-1 objective, quantiser, decoder, losses."""

    name: str = "paper"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    jepa: JEPAConfig = field(default_factory=JEPAConfig)
    fsq: FSQConfig = field(default_factory=FSQConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodecConfig:
        return TypeAdapter(cls).validate_python(data)

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(_plain(self.to_dict()), sort_keys=False))

    @classmethod
    def from_yaml(cls, path: str | Path) -> CodecConfig:
        return cls.from_dict(yaml.safe_load(Path(path).read_text()))


def _plain(value: Any) -> Any:
    """Tuples → lists so YAML stays readable (pydantic converts back on load)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def paper(sample_rate: int = 24_000) -> CodecConfig:
    """The paper's model (spec §0–§8): 118.5 M encoder, 69.3 M generator at 24 kHz."""
    strides = _strides_for(sample_rate)
    return CodecConfig(
        name="paper",
        encoder=EncoderConfig(sample_rate=sample_rate, strides=strides),
        decoder=DecoderConfig(strides=tuple(reversed(strides))),
    )


def tiny(sample_rate: int = 24_000) -> CodecConfig:
    """Same structure and hop as `paper`, far narrower (spec §12.A), fast enough for CPU tests.

    `code_dim` stays 128 so the token contract (2.5 frames/s, 19 tokens/frame, vocab 16384) is the
    paper's; a 1×1 bottleneck from width 32 costs almost nothing.
    """
    strides = _strides_for(sample_rate)
    return CodecConfig(
        name="tiny",
        encoder=EncoderConfig(
            sample_rate=sample_rate,
            channels=(8, 16, 16, 32, 32, 32),
            strides=strides,
            n_res_blocks=1,
            code_dim=128,
            n_conformer=1,
            heads=16,  # head dim 8, as in the full model
            conv_kernel=7,
        ),
        jepa=JEPAConfig(predictor=PredictorConfig(width=32, heads=2, n_conformer=2)),
        decoder=DecoderConfig(channels=(32, 32, 32, 16, 16, 8), strides=tuple(reversed(strides))),
        discriminator=DiscriminatorConfig(
            mpd_channels=(4, 8, 16, 32, 32),
            msd_channels=(4, 8, 16, 32, 32, 32),
            msd_groups=(1, 2, 4, 8),
        ),
        loss=LossConfig(stft_resolutions=((512, 128, 512), (256, 64, 256), (128, 32, 128)), disc_start_step=0),
    )


PresetName = Literal["paper", "tiny"]
PRESETS = {"paper": paper, "tiny": tiny}


def preset(name: str, sample_rate: int = 24_000) -> CodecConfig:
    """Build a preset by name; the error lists the valid names."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name](sample_rate)
