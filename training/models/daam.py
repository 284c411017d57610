"""Density Adaptive Attention gate (DAAM, the reference's `GAttnGateG`), spec §2.4."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

# Numerical floors from the reference (spec §2.4): variance floor, σ floor, and z-score denominator guard.
_VAR_FLOOR = 1e-6
_SIGMA_FLOOR = 1e-3
_Z_EPS = 1e-8
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
# ν starts at ln 0.5, so σ = softplus(ln 0.5) + 1e-3 ≈ 0.406 (spec §2.4).
_LOG_SIGMA_INIT = math.log(0.5)
# spec §11.5: with δ ≡ 0 all K components get identical gradients and stay tied forever. `spread_init`
# spreads δ over ±_SPREAD_OFFSET, in units of the gate logit `a`, whose per-clip std is O(0.1) at init
# (truncated-normal(0.02) 1×1 conv over ≥ 64 unit-scale channels), so the components start distinct but
# still overlapping.
_SPREAD_OFFSET = 0.1


def _autocast_off(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """Disable autocast on `device` (a no-op for devices without autocast, e.g. `meta`)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


@dataclass(frozen=True)
class GateStats:
    """Summary of one gate's last forward, for logging (plain floats)."""

    mean: float
    std: float
    min: float
    max: float


class DAAMGate(nn.Module):
    """Gate a feature map with a K-component Gaussian density of its own (per-clip standardised) logit.

    a = conv1x1(x) [B, 1, T]; μ, s = time mean and biased std of a per sample (var floored at 1e-6);
    z_k = (a − μ − δ_k) / (s·σ_k + 1e-8) with σ_k = softplus(ν_k) + 1e-3;
    gate = (1/K) Σ_k φ(z_k)/σ_k computed as exp(logsumexp_k log p_k − ln K), in (0, max_k 1/(σ_k√2π)];
    y = x · (1 + α·gate), the gate broadcast over channels.

    Everything runs in fp32 with autocast disabled, even under AMP (spec §2.4, §8); the output is fp32.
    The statistics span the whole clip, padding included (spec §11.21). `cap` and `num_heads` of the
    reference are unused there and omitted here. Parameters: C + 10 (conv C + 1, α, δ ×4, ν ×4).

    Shapes: [B, C, T] -> [B, C, T]. The last gate [B, 1, T] (detached) is kept in `last_gate`.
    """

    def __init__(self, channels: int, components: int = 4, alpha_init: float = 0.05, spread_init: bool = False) -> None:
        super().__init__()
        if components < 1:
            raise ValueError(f"DAAMGate components must be >= 1, got {components}")
        self.components = components
        self.to_attn = nn.Conv1d(channels, 1, kernel_size=1)
        self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))
        if spread_init and components > 1:
            offsets = torch.linspace(-_SPREAD_OFFSET, _SPREAD_OFFSET, components)
        else:
            offsets = torch.zeros(components)
        self.mean_offsets = nn.Parameter(offsets)  # δ_k
        # Named `log_sigma` as in the reference state dict, although σ = softplus(ν) + 1e-3, not exp(ν).
        self.log_sigma = nn.Parameter(torch.full((components,), _LOG_SIGMA_INIT))
        self.last_gate: torch.Tensor | None = None

    def sigma(self) -> torch.Tensor:
        """Component widths σ_k = softplus(ν_k) + 1e-3, shape [K]."""
        return F.softplus(self.log_sigma.float()) + _SIGMA_FLOOR

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The density gate alone, fp32.

        [B, C, T] -> [B, 1, T] with values in (0, max_k 1/(σ_k√2π)].
        """
        with _autocast_off(x.device):
            x32 = x.float()
            bias = None if self.to_attn.bias is None else self.to_attn.bias.float()
            logit = F.conv1d(x32, self.to_attn.weight.float(), bias)  # [B, 1, T]
            mean = logit.mean(dim=-1, keepdim=True)  # [B, 1, 1]
            var = logit.var(dim=-1, keepdim=True, unbiased=False)
            std = torch.sqrt(torch.clamp(var, min=_VAR_FLOOR))
            sigma = self.sigma().view(1, -1, 1)  # [1, K, 1]
            offsets = self.mean_offsets.float().view(1, -1, 1)
            z = (logit - mean - offsets) / (std * sigma + _Z_EPS)  # [B, K, T]
            log_density = -0.5 * z.pow(2) - torch.log(sigma) - _HALF_LOG_2PI
            return torch.exp(torch.logsumexp(log_density, dim=1, keepdim=True) - math.log(self.components))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the gate: y = x · (1 + α·gate).

        [B, C, T] -> [B, C, T] float32.
        """
        gate = self.gate(x)
        self.last_gate = gate.detach()
        with _autocast_off(x.device):
            return x.float() * (1.0 + self.alpha.float() * gate)

    def stats(self) -> GateStats | None:
        """Mean/std/min/max of the last gate, or None before the first forward."""
        if self.last_gate is None:
            return None
        gate = self.last_gate
        return GateStats(
            mean=float(gate.mean()),
            std=float(gate.std(unbiased=False)),
            min=float(gate.min()),
            max=float(gate.max()),
        )
