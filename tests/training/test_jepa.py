"""JEPA stage 1: loss normalisation, stop-gradient target, EMA formula, collapse monitor, overfitting."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
import torch

from training.configs import CodecConfig, JEPAConfig, PredictorConfig, tiny
from training.models.jepa import JEPA, ema_momentum, masked_mse
from training.models.masking import block_mask


def _small() -> CodecConfig:
    """Spec §12.A internals (code_dim 16) for the fastest structural checks."""
    config = tiny(24_000)
    return dataclasses.replace(
        config,
        encoder=dataclasses.replace(config.encoder, code_dim=16, heads=2),
        jepa=JEPAConfig(predictor=PredictorConfig(width=32, heads=2, n_conformer=2)),
    )


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest single-threaded, and the 2-core test machine is shared by concurrent runs."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _wav(samples: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 1, samples, generator=torch.Generator().manual_seed(seed)) * 0.1


def test_output_shapes_and_mask_from_generator() -> None:
    torch.manual_seed(0)
    model = JEPA(_small())
    wav = _wav(6 * 9_600)
    out = model(wav, torch.Generator().manual_seed(5))
    assert out.predictions.shape == out.targets.shape == (2, 16, 6)
    assert out.mask.shape == (2, 6) and out.mask.dtype == torch.bool
    # the mask is drawn from T computed analytically, before any forward (spec §11.26)
    expected = block_mask(2, 6, 0.5, 2, 4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(out.mask, expected.visible)
    assert out.realised_mask_ratio == expected.realised_ratio
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)


def test_target_starts_identical_frozen_and_in_eval() -> None:
    model = JEPA(_small())
    for (name, online), target in zip(model.encoder.named_parameters(), model.target_encoder.parameters(), strict=True):
        assert torch.equal(online, target), name
        assert not target.requires_grad
    model.train()
    assert model.encoder.training and model.predictor.training
    assert not model.target_encoder.training
    assert model.mask_token.shape == (1, 16, 1)
    trainable = {id(p) for p in model.trainable_parameters()}
    assert trainable.isdisjoint(id(p) for p in model.target_encoder.parameters())
    assert id(model.mask_token) in trainable


def test_loss_is_masked_mse_and_gradient_skips_target() -> None:
    torch.manual_seed(1)
    model = JEPA(_small())
    out = model(_wav(4 * 9_600), torch.Generator().manual_seed(0))
    masked = ~out.mask
    manual = ((out.predictions - out.targets) ** 2 * masked[:, None]).sum() / (masked.sum() * 16)
    torch.testing.assert_close(out.loss, manual)
    assert not out.targets.requires_grad
    out.loss.backward()
    assert all(p.grad is None for p in model.target_encoder.parameters())
    assert model.mask_token.grad is not None and model.mask_token.grad.abs().sum() > 0
    assert model.encoder.input_conv.weight.grad is not None


def test_masked_mse_normalisation() -> None:
    predictions, targets = torch.randn(3, 5, 8), torch.randn(3, 5, 8)
    visible = torch.rand(3, 8, generator=torch.Generator().manual_seed(0)) > 0.5
    loss = masked_mse(predictions, targets, visible)
    # only masked positions count: changing visible predictions leaves the loss unchanged
    changed = predictions + visible[:, None] * 100.0
    torch.testing.assert_close(masked_mse(changed, targets, visible), loss)
    # all masked → ordinary MSE; N_masked is over the whole batch, not a per-sample mean
    all_masked = torch.zeros(3, 8, dtype=torch.bool)
    torch.testing.assert_close(masked_mse(predictions, targets, all_masked), torch.mean((predictions - targets) ** 2))
    uneven = torch.ones(3, 8, dtype=torch.bool)
    uneven[0, :1] = False
    uneven[1, :4] = False
    per_position = ((predictions - targets) ** 2).mean(dim=1)  # [B, T]
    expected = (per_position[0, :1].sum() + per_position[1, :4].sum()) / 5
    torch.testing.assert_close(masked_mse(predictions, targets, uneven), expected)
    assert masked_mse(predictions, targets, torch.ones(3, 8, dtype=torch.bool)).item() == 0.0


def test_collapse_monitor_is_per_channel_std() -> None:
    model = JEPA(_small())
    out = model(_wav(4 * 9_600), torch.Generator().manual_seed(0))
    std = out.targets.permute(1, 0, 2).reshape(16, -1).std(dim=1, correction=0)
    torch.testing.assert_close(out.target_std_mean, std.mean())
    torch.testing.assert_close(out.target_std_min, std.min())


def test_ema_update_matches_formula() -> None:
    torch.manual_seed(2)
    model = JEPA(_small())
    with torch.no_grad():
        for parameter in model.encoder.parameters():
            parameter.add_(torch.randn_like(parameter))
    before = [p.clone() for p in model.target_encoder.parameters()]
    tau = model.update_target(step=10)
    assert tau == 0.996
    for old, online, new in zip(before, model.encoder.parameters(), model.target_encoder.parameters(), strict=True):
        torch.testing.assert_close(new, 0.996 * old + 0.004 * online)


def test_ema_ramp_option() -> None:
    ramp = JEPAConfig(ema_final_momentum=1.0, ema_ramp_steps=100)
    assert ema_momentum(JEPAConfig(), 5_000) == 0.996
    assert ema_momentum(ramp, 0) == 0.996
    assert ema_momentum(ramp, 50) == pytest.approx(0.998)
    assert ema_momentum(ramp, 10_000) == 1.0
    with pytest.raises(ValueError, match="ema_ramp_steps"):
        ema_momentum(JEPAConfig(ema_final_momentum=1.0), 1)


def test_tiny_stage1_overfits_one_clip() -> None:
    # The `tiny` preset as shipped (code_dim 128): on one clip with a fixed mask the masked MSE must halve.
    torch.manual_seed(0)
    model = JEPA(tiny(24_000))
    wav = _wav(4 * 9_600, batch=1, seed=1)
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=2e-3)
    losses = []
    for step in range(40):
        out = model(wav, torch.Generator().manual_seed(0))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        model.update_target(step)
        losses.append(out.loss.item())
        if losses[-1] < losses[0] / 2:
            break
    assert losses[-1] < losses[0] / 2, losses
