"""DAAM gate: range, formula, gradients, component tie, fp32 under autocast (spec §2.4, §11.5)."""

from __future__ import annotations

import math

import pytest
import torch

from training.models.daam import DAAMGate


def _reference_gate(module: DAAMGate, x: torch.Tensor) -> torch.Tensor:
    """Direct transcription of the spec §2.4 mixture, (1/K) Σ φ(z_k)/σ_k, in float64."""
    x = x.double()
    assert module.to_attn.bias is not None
    logit = torch.nn.functional.conv1d(x, module.to_attn.weight.double(), module.to_attn.bias.double())
    mean = logit.mean(-1, keepdim=True)
    std = logit.var(-1, keepdim=True, unbiased=False).clamp(min=1e-6).sqrt()
    gate = torch.zeros_like(logit)
    for offset, nu in zip(module.mean_offsets.double(), module.log_sigma.double(), strict=True):
        sigma = torch.nn.functional.softplus(nu) + 1e-3
        z = (logit - mean - offset) / (std * sigma + 1e-8)
        gate = gate + torch.exp(-0.5 * z**2) / (sigma * math.sqrt(2 * math.pi))
    return gate / len(module.mean_offsets)


def test_parameter_count_and_init() -> None:
    gate = DAAMGate(64)
    assert sum(p.numel() for p in gate.parameters()) == 64 + 10
    assert gate.alpha.item() == pytest.approx(0.05)
    torch.testing.assert_close(gate.sigma(), torch.full((4,), 0.406), atol=1e-3, rtol=0)


def test_gate_matches_formula_and_range() -> None:
    torch.manual_seed(0)
    module = DAAMGate(16, spread_init=True)
    x = torch.randn(3, 16, 40) * 3
    gate = module.gate(x).detach()
    assert gate.shape == (3, 1, 40)
    torch.testing.assert_close(gate.double(), _reference_gate(module, x), rtol=1e-5, atol=1e-7)
    upper = float((1.0 / (module.sigma().detach() * math.sqrt(2 * math.pi))).max())
    assert torch.isfinite(gate).all()
    assert bool((gate > 0).all())
    assert float(gate.max()) <= upper + 1e-6


def test_forward_scales_by_gate_and_keeps_last_gate() -> None:
    module = DAAMGate(8)
    x = torch.randn(2, 8, 30)
    y = module(x)
    assert module.last_gate is not None and not module.last_gate.requires_grad
    torch.testing.assert_close(y, x * (1 + 0.05 * module.last_gate))
    stats = module.stats()
    assert stats is not None and 0 < stats.min <= stats.mean <= stats.max <= 0.99


def test_constant_input_is_finite() -> None:
    # var floor 1e-6: a constant logit gives z = 0 rather than 0/0 (spec §2.4)
    module = DAAMGate(4)
    y = module(torch.ones(1, 4, 10))
    assert torch.isfinite(y).all()
    torch.testing.assert_close(
        module.last_gate, torch.full((1, 1, 10), 1 / (0.406 * math.sqrt(2 * math.pi))), atol=2e-3, rtol=0
    )


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(1)
    module = DAAMGate(8, spread_init=True)
    x = torch.randn(2, 8, 25, requires_grad=True)
    (module(x) * torch.randn(2, 8, 25)).sum().backward()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert x.grad is not None and torch.isfinite(x.grad).all()


def _component_grads(spread: bool) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(2)
    module = DAAMGate(8, spread_init=spread)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    for _ in range(3):  # several steps: tied components stay tied after updates too
        optimizer.zero_grad()
        (module(torch.randn(2, 8, 25)) * torch.randn(2, 8, 25)).sum().backward()
        optimizer.step()
    return module.mean_offsets.detach(), module.log_sigma.detach()


def test_reference_init_ties_components() -> None:
    # spec §11.5: δ = 0 and equal ν give identical gradients, so the mixture stays a single Gaussian.
    offsets, log_sigma = _component_grads(spread=False)
    torch.testing.assert_close(offsets, offsets[:1].expand(4), rtol=0, atol=1e-7)
    torch.testing.assert_close(log_sigma, log_sigma[:1].expand(4), rtol=0, atol=1e-7)


def test_spread_init_unties_components() -> None:
    offsets, log_sigma = _component_grads(spread=True)
    assert len(set(offsets.tolist())) == 4
    assert log_sigma.std() > 0


def test_fp32_under_bf16_autocast() -> None:
    module = DAAMGate(8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = module(torch.randn(2, 8, 20).to(torch.bfloat16))
        gate = module.gate(torch.randn(2, 8, 20).to(torch.bfloat16))
    assert y.dtype == torch.float32
    assert gate.dtype == torch.float32
    assert module.last_gate is not None and module.last_gate.dtype == torch.float32
