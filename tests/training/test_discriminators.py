"""MPD and MSD: output and feature shapes, pooling schemes, paper parameter counts (spec §7, §10, §11.17)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from training.configs import DiscriminatorConfig, tiny
from training.models.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator

PAPER_MPD_PARAMS = 41_092_165  # spec §10
PAPER_MSD_PARAMS = 16_913_859
LENGTH = 4_001  # deliberately not a multiple of any period


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_parameter_counts_on_meta() -> None:
    with torch.device("meta"):
        mpd = MultiPeriodDiscriminator(DiscriminatorConfig())
        msd = MultiScaleDiscriminator(DiscriminatorConfig())
    assert _params(mpd) == PAPER_MPD_PARAMS
    assert _params(msd) == PAPER_MSD_PARAMS


def test_mpd_shapes() -> None:
    config = tiny().discriminator
    out = MultiPeriodDiscriminator(config)(torch.randn(2, 1, LENGTH))
    assert len(out.logits) == len(out.features) == len(config.periods)
    for period, logits, features in zip(config.periods, out.logits, out.features, strict=True):
        assert len(features) == len(config.mpd_channels) + 1  # every activation plus the post output
        assert [f.shape[1] for f in features] == [*config.mpd_channels, 1]
        assert all(f.shape[0] == 2 and f.shape[-1] == period for f in features)
        assert logits.shape == (2, features[-1].shape[2] * period)


@pytest.mark.parametrize("legacy", [False, True])
def test_msd_shapes_and_pooling(legacy: bool) -> None:
    config = dataclasses.replace(tiny().discriminator, legacy_msd_pooling=legacy)
    out = MultiScaleDiscriminator(config)(torch.randn(2, 1, LENGTH))
    assert len(out.logits) == config.msd_scales
    input_lengths = [features[0].shape[-1] for features in out.features]  # first conv keeps the length
    once = LENGTH // 2 + 1  # AvgPool1d(4, 2, pad 2)
    twice = once // 2 + 1
    assert input_lengths == ([LENGTH, once, once] if legacy else [LENGTH, once, twice])
    for logits, features in zip(out.logits, out.features, strict=True):
        assert [f.shape[1] for f in features] == [*config.msd_channels, 1]
        assert logits.shape == (2, features[-1].shape[-1])


def test_gradients_reach_the_input() -> None:
    config = tiny().discriminator
    wav = torch.randn(1, 1, 2_000, requires_grad=True)
    mpd, msd = MultiPeriodDiscriminator(config), MultiScaleDiscriminator(config)
    total = sum(logits.mean() for logits in mpd(wav).logits + msd(wav).logits)
    assert isinstance(total, torch.Tensor)
    total.backward()
    assert wav.grad is not None and wav.grad.abs().sum() > 0


def test_msd_config_mismatch_is_named() -> None:
    with pytest.raises(ValueError, match="groups"):
        MultiScaleDiscriminator(DiscriminatorConfig(msd_channels=(4, 8, 16), msd_groups=(1, 2, 4)))
