"""Stage-2 losses: zero on identical signals, LSGAN values on known logits, GAN gating, gradients (spec §7, §11.16)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from training.configs import LossConfig, tiny
from training.losses import (
    DiscriminatorPair,
    MultiResolutionSTFTLoss,
    discriminator_loss,
    feature_matching_loss,
    gan_active,
    generator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    waveform_l1,
)
from training.models.discriminators import DiscriminatorOutput, MultiPeriodDiscriminator, MultiScaleDiscriminator

RESOLUTIONS = tiny().loss.stft_resolutions


def _constant_output(value: float, subs: int = 3, layers: int = 2) -> DiscriminatorOutput:
    """A fake multi-discriminator verdict: every logit and feature equal to `value`."""
    return DiscriminatorOutput(
        logits=[torch.full((2, 5), value) for _ in range(subs)],
        features=[[torch.full((2, 4, 3), value) for _ in range(layers)] for _ in range(subs)],
    )


def test_identical_signals_cost_nothing() -> None:
    y = torch.randn(2, 1, 4_000)
    assert waveform_l1(y, y) == 0
    assert MultiResolutionSTFTLoss(RESOLUTIONS)(y, y) == 0


def test_stft_loss_grows_with_the_error_and_runs_in_fp32() -> None:
    stft = MultiResolutionSTFTLoss(RESOLUTIONS)
    y = torch.randn(1, 1, 4_000)
    small, large = stft(y + 0.01 * torch.randn_like(y), y), stft(y + 0.3 * torch.randn_like(y), y)
    assert 0 < small < large
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert stft(y.bfloat16(), y.bfloat16()).dtype == torch.float32
    assert not any(key.startswith("window") for key in stft.state_dict())  # derived, not checkpointed


def test_lsgan_values_on_known_logits() -> None:
    zeros, ones = _constant_output(0.0), _constant_output(1.0)
    assert lsgan_generator_loss(zeros) == pytest.approx(3.0)  # Σ_sub mean((0 − 1)²)
    assert lsgan_generator_loss(ones) == 0
    assert lsgan_discriminator_loss(real=ones, fake=zeros) == 0  # a perfect discriminator
    assert lsgan_discriminator_loss(real=zeros, fake=ones) == pytest.approx(6.0)  # 3 × (1 + 1)
    assert feature_matching_loss(ones, zeros, scale=2.0) == pytest.approx(2.0 * 3 * 2)  # scale × subs × layers


def test_gan_terms_are_gated_on_disc_start_step() -> None:
    config = LossConfig(stft_resolutions=RESOLUTIONS, disc_start_step=100)
    stft = MultiResolutionSTFTLoss(RESOLUTIONS)
    y, y_hat = torch.randn(1, 1, 4_000), torch.randn(1, 1, 4_000)
    pair = DiscriminatorPair(real=_constant_output(1.0), fake=_constant_output(0.0))

    early = generator_loss(y_hat, y, step=99, config=config, stft_loss=stft)  # no discriminator needed yet
    assert not early.gan_active and not gan_active(99, config)
    assert early.adversarial_mpd == early.feature_matching_msd == 0
    assert early.total == pytest.approx(float(early.waveform + 2.0 * early.stft))

    late = generator_loss(y_hat, y, step=100, config=config, stft_loss=stft, mpd=pair, msd=pair)
    assert late.gan_active
    gan = 2 * 3.0 + 2 * (2.0 * 3 * 2)  # G_adv for MPD and MSD, then FM for both
    assert late.total == pytest.approx(float(late.waveform + 2.0 * late.stft) + 0.1 * gan, rel=1e-5)

    with pytest.raises(ValueError, match="DiscriminatorPair"):
        generator_loss(y_hat, y, step=100, config=config, stft_loss=stft)


def test_gradients_flow_to_the_generator_output_and_discriminators() -> None:
    config = dataclasses.replace(tiny().loss, disc_start_step=0)
    disc_config = tiny().discriminator
    mpd, msd = MultiPeriodDiscriminator(disc_config), MultiScaleDiscriminator(disc_config)
    y = torch.randn(1, 1, 4_000).clamp(-1, 1)
    y_hat = torch.randn(1, 1, 4_000, requires_grad=True)

    pairs = {name: DiscriminatorPair(real=d(y), fake=d(y_hat)) for name, d in (("mpd", mpd), ("msd", msd))}
    loss = generator_loss(y_hat, y, step=0, config=config, stft_loss=MultiResolutionSTFTLoss(RESOLUTIONS), **pairs)
    loss.total.backward()
    assert y_hat.grad is not None and torch.isfinite(y_hat.grad).all() and y_hat.grad.abs().sum() > 0

    mpd.zero_grad()
    detached = {name: DiscriminatorPair(real=d(y), fake=d(y_hat.detach())) for name, d in (("mpd", mpd), ("msd", msd))}
    d_loss = discriminator_loss(**detached)
    assert torch.equal(d_loss.total, d_loss.mpd + d_loss.msd)
    d_loss.total.backward()
    assert all(p.grad is not None for p in mpd.parameters())
