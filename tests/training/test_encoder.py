"""Encoder geometry, shapes for both presets and sample rates, gate stats, parameter count (spec §2, §11.1)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from training.configs import EncoderConfig, paper, tiny
from training.models.encoder import Encoder, EncoderBlock, conv_output_length, frames_for_length

SAMPLE_RATES = [24_000, 16_000]


def _small(sample_rate: int, legacy: bool = False) -> EncoderConfig:
    """Spec §12.A internals: tiny widths with code_dim 16, the fastest real forward."""
    base = tiny(sample_rate).encoder
    return dataclasses.replace(base, code_dim=16, heads=2, legacy_padding=legacy)


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("make", [paper, tiny])
def test_frame_rate_and_hop(make, sample_rate: int) -> None:
    config = make(sample_rate).encoder
    assert config.hop == int(sample_rate * 0.4)
    assert config.frame_rate == 2.5


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_tiny_forward_shape_exact_and_legacy(sample_rate: int) -> None:
    torch.manual_seed(0)
    for legacy, frames in ((False, 4), (True, 3)):  # spec §12.A: 4 hops give T = 4 exact, 3 legacy
        encoder = Encoder(dataclasses.replace(tiny(sample_rate).encoder, legacy_padding=legacy)).eval()
        wav = torch.randn(2, 1, 4 * encoder.hop) * 0.1
        with torch.no_grad():
            z = encoder(wav)
        assert z.shape == (2, 128, frames)
        assert encoder.num_frames(wav.shape[-1]) == frames
        assert torch.isfinite(z).all()


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
def test_paper_forward_shape_on_meta(sample_rate: int) -> None:
    with torch.device("meta"):
        encoder = Encoder(paper(sample_rate).encoder)
        z = encoder(torch.empty(2, 1, 38 * encoder.hop))
    assert z.shape == (2, 128, 38)


def test_paper_block_lengths_match_spec_table() -> None:
    # spec §2.1 table: a 38-hop input through E0..E4, exact / reference.
    length_exact = length_legacy = 38 * 9600
    exact, legacy = [], []
    for stride in (8, 8, 5, 5, 6):
        length_exact = conv_output_length(length_exact, stride)
        length_legacy = conv_output_length(length_legacy, stride, legacy=True)
        exact.append(length_exact)
        legacy.append(length_legacy)
    assert exact == [45_600, 5_700, 1_140, 228, 38]
    assert legacy == [45_600, 5_700, 1_139, 227, 37]


@settings(max_examples=60, deadline=None)
@given(samples=st.integers(1, 2_000_000), sample_rate=st.sampled_from(SAMPLE_RATES))
def test_num_frames_formulas(samples: int, sample_rate: int) -> None:
    config = paper(sample_rate).encoder
    exact = frames_for_length(samples, config.strides)
    legacy = frames_for_length(samples, config.strides, legacy=True)
    assert exact == samples // config.hop
    assert legacy <= exact
    if samples % config.hop == 0:
        assert sum(stride % 2 for stride in config.strides) == 2  # two odd strides (5, 5), one frame lost
        assert legacy == max(samples // config.hop - 1, 0)  # spec §11.1: N hops → N − 1 frames


@pytest.mark.parametrize("stride", [4, 5, 6, 8])
@pytest.mark.parametrize("legacy", [False, True])
def test_block_length_matches_formula(stride: int, legacy: bool) -> None:
    block = EncoderBlock(2, 4, stride, n_res_blocks=1, legacy_padding=legacy)
    for length in (stride * 7, stride * 7 + 1, stride * 7 + stride - 1):
        with torch.no_grad():
            out = block(torch.randn(1, 2, length))
        assert out.shape[-1] == conv_output_length(length, stride, legacy)
        if not legacy:
            assert out.shape[-1] == length // stride


def test_real_forward_matches_num_frames_for_unaligned_lengths() -> None:
    encoder = Encoder(_small(24_000)).eval()
    for samples in (9_600, 19_199, 19_200 + 4_801):
        with torch.no_grad():
            assert encoder(torch.randn(1, 1, samples)).shape[-1] == encoder.num_frames(samples) == samples // 9_600


def test_too_short_and_wrong_shape_inputs() -> None:
    encoder = Encoder(_small(24_000))
    with pytest.raises(ValueError, match="9599 samples gives no frames"):
        encoder(torch.zeros(1, 1, 9_599))
    with pytest.raises(ValueError, match=r"mono \[B, 1, L\]"):
        encoder(torch.zeros(1, 2, 9_600))


def test_gate_stats_and_init() -> None:
    encoder = Encoder(_small(16_000))
    assert encoder.gate_stats() == [None] * 5
    with torch.no_grad():
        encoder(torch.randn(1, 1, 2 * encoder.hop))
    stats = encoder.gate_stats()
    assert len(stats) == 5
    for stat in stats:
        assert stat is not None and 0.0 <= stat.min <= stat.mean <= stat.max < 1.0
    # spec §2.5: truncated normal std 0.02, zero biases
    block = encoder.blocks[2]
    assert isinstance(block, EncoderBlock)
    weight, bias = block.conv.weight.detach(), block.conv.bias
    assert 0.015 < float(weight.std()) < 0.025
    assert bias is not None and float(bias.detach().abs().max()) == 0.0


def test_batch_equals_one_by_one_in_eval() -> None:
    torch.manual_seed(3)
    encoder = Encoder(_small(24_000)).eval()
    wav = torch.randn(3, 1, 2 * encoder.hop) * 0.1
    with torch.no_grad():
        batched = encoder(wav)
        single = torch.cat([encoder(wav[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=1e-4)


def test_gradients_reach_input_conv() -> None:
    encoder = Encoder(_small(24_000))
    encoder(torch.randn(1, 1, 2 * encoder.hop)).pow(2).mean().backward()
    grad = encoder.input_conv.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
