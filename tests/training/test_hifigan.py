"""HiFi-GAN generator: exact and legacy output lengths, paper size, both sample rates (spec §6, §10, §11.1)."""

from __future__ import annotations

import pytest
import torch

from training.configs import DecoderConfig, paper, tiny
from training.models.hifigan import Generator

PAPER_GENERATOR_PARAMS = 69_291_649  # spec §10
# Each odd-stride upsampler of the reference adds one sample, compounded by the later strides (spec §6).
LEGACY_EXTRA = 384


@pytest.mark.parametrize("sample_rate", [24_000, 16_000])
@pytest.mark.parametrize("frames", [1, 4])
def test_tiny_output_is_exactly_hop_times_frames(sample_rate: int, frames: int) -> None:
    config = tiny(sample_rate)
    generator = Generator(config.decoder, config.encoder.code_dim)
    values = torch.rand(2, config.encoder.code_dim, frames) * 1.5 - 0.75
    audio = generator(values)
    assert generator.hop == config.encoder.hop
    assert audio.shape == (2, 1, frames * config.encoder.hop)
    assert generator.output_length(frames) == frames * config.encoder.hop
    assert audio.abs().max() <= 1.0  # tanh output


@pytest.mark.parametrize("sample_rate", [24_000, 16_000])
def test_legacy_padding_keeps_the_reference_extra_samples(sample_rate: int) -> None:
    config = tiny(sample_rate)
    generator = Generator(config.decoder, config.encoder.code_dim, legacy_padding=True)
    audio = generator(torch.zeros(1, config.encoder.code_dim, 3))
    assert audio.shape[-1] == 3 * config.encoder.hop + LEGACY_EXTRA == generator.output_length(3)


@pytest.mark.parametrize("sample_rate", [24_000, 16_000])
def test_paper_generator_shapes_on_meta(sample_rate: int) -> None:
    config = paper(sample_rate)
    with torch.device("meta"):
        generator = Generator(config.decoder, config.encoder.code_dim)
        audio = generator(torch.empty(2, 128, 3))
    assert audio.shape == (2, 1, 3 * config.encoder.hop)
    if sample_rate == 24_000:
        assert sum(p.numel() for p in generator.parameters()) == PAPER_GENERATOR_PARAMS


def test_state_dict_uses_reference_names() -> None:
    keys = Generator(tiny().decoder, 128).state_dict().keys()
    assert "bottleneck_unproj.weight" in keys
    assert "decoder.0.snake.raw" in keys and "decoder.4.deconv.weight" in keys
    assert "decoder.2.mrf.resblocks.2.convs1.0.weight" in keys
    assert "output_conv.bias" in keys


def test_decoder_daam_gates_are_optional() -> None:
    config = tiny().decoder
    plain = Generator(config, 128)
    gated = Generator(DecoderConfig(**{**config.__dict__, "use_daam": True}), 128)
    assert all(block.gate is None for block in plain.decoder)
    assert all(block.gate is not None for block in gated.decoder)
    assert gated(torch.zeros(1, 128, 2)).shape == (1, 1, 2 * 9600)


def test_gradients_reach_every_parameter() -> None:
    generator = Generator(tiny().decoder, 128)
    generator(torch.rand(1, 128, 2) - 0.5).square().mean().backward()
    assert all(p.grad is not None for p in generator.parameters())


def test_bad_inputs_are_named() -> None:
    generator = Generator(tiny().decoder, 128)
    with pytest.raises(ValueError, match=r"expected \[B, 128, T\]"):
        generator(torch.zeros(1, 64, 2))
    with pytest.raises(ValueError, match="channels"):
        Generator(DecoderConfig(channels=(8, 8), strides=(2, 2)), 128)
