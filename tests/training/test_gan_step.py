"""One stage-2 step without Ray: frozen discriminators in the generator step, fp32 losses, legacy geometry."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
import torch

from training.codec import Codec
from training.configs import CodecConfig, tiny
from training.gan_step import GanStep, fit_length
from training.losses import MultiResolutionSTFTLoss
from training.models.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator


def build(config: CodecConfig) -> tuple[Codec, GanStep, torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    codec = Codec.from_config(config)
    codec.encoder.requires_grad_(False).eval()
    mpd, msd = MultiPeriodDiscriminator(config.discriminator), MultiScaleDiscriminator(config.discriminator)
    step = GanStep(
        generator=codec.generator,
        generator_params=list(codec.generator.parameters()),
        mpd=mpd,
        msd=msd,
        mpd_train=mpd,
        msd_train=msd,
        optimizer_g=torch.optim.AdamW(codec.generator.parameters(), lr=1e-3),
        optimizer_d=torch.optim.AdamW([*mpd.parameters(), *msd.parameters()], lr=1e-3),
        stft_loss=MultiResolutionSTFTLoss(config.loss.stft_resolutions),
        loss_config=config.loss,
        grad_clip_norm=1.0,
        autocast=contextlib.nullcontext,
    )
    return codec, step, mpd, msd


def values_for(codec: Codec, audio: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return codec.fsq(codec.encoder(audio)).values


def test_generator_step_computes_no_discriminator_gradients() -> None:
    config = tiny(16_000)  # GAN terms active from step 0 in the tiny preset
    codec, step, mpd, msd = build(config)
    audio = 0.1 * torch.randn(2, 1, 4 * codec.hop)
    values = values_for(codec, audio)

    # A full step (D then G), then a generator update alone: it must neither move nor differentiate the
    # discriminators.
    active_metrics = step(values, audio, step=0)
    assert {"disc_loss", "loss", "adversarial", "feature_matching"} <= active_metrics.keys()
    snapshot = {name: p.detach().clone() for name, p in mpd.named_parameters()}
    for p in [*mpd.parameters(), *msd.parameters()]:
        p.grad = None  # left by the discriminator update
    step._generator_update(audio, fit_length(codec.generator(values), audio.shape[-1]), step=1, active=True)
    for name, p in mpd.named_parameters():
        assert torch.equal(p, snapshot[name]), name
        assert p.grad is None, f"{name} got a gradient in the generator step"
    assert all(p.requires_grad for p in [*mpd.parameters(), *msd.parameters()])  # restored after the step
    assert all(p.grad is not None for p in codec.generator.parameters())
    assert all(v.dtype == torch.float32 and v.ndim == 0 for v in active_metrics.values())


def test_legacy_padding_trains_on_the_input_length() -> None:
    base = tiny(16_000)
    config = dataclasses.replace(base, encoder=dataclasses.replace(base.encoder, legacy_padding=True))
    codec, step, _, _ = build(config)
    audio = 0.1 * torch.randn(2, 1, 4 * codec.hop)  # 4 hops -> 3 frames -> hop·3 + 384 samples (spec §11.1)
    values = values_for(codec, audio)
    assert values.shape[-1] == 3
    metrics = step(values, audio, step=0)
    assert torch.isfinite(metrics["loss"])


@pytest.mark.parametrize(("length", "target"), [(10, 7), (7, 10), (8, 8)])
def test_fit_length_crops_or_pads(length: int, target: int) -> None:
    audio = torch.arange(1, length + 1, dtype=torch.float32).view(1, 1, -1)
    fitted = fit_length(audio, target)
    assert fitted.shape[-1] == target
    keep = min(length, target)
    assert torch.equal(fitted[..., :keep], audio[..., :keep])
    assert not fitted[..., keep:].any()
