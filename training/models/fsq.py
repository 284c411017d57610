"""Finite scalar quantiser: tanh bound → per-dimension uniform grid, no parameters (spec §4, §11.11)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn


def _autocast_off(device: torch.device) -> contextlib.AbstractContextManager[object]:
    """Disable autocast on `device` (a no-op for devices without autocast, e.g. `meta`)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


@dataclass
class FSQResult:
    """What `FSQ.forward` returns.

    values:  [B, D, T] float32 grid values; straight-through gradient to the tanh-bounded input.
    indices: [B, T, D] int64 level index per dimension, in [0, L_d − 1] (the reference's layout, spec §4).
    """

    values: torch.Tensor
    indices: torch.Tensor


class FSQ(nn.Module):
    """Quantise each dimension of z to one of L_d levels on the grid c_i = −1 + (2i + 1)/L_d.

    For L = 4 the grid is {−0.75, −0.25, 0.25, 0.75} (no zero level). z is bounded with plain tanh
    (τ = 1), the index is the nearest grid point with exact ties going to the lower index, via the closed
    form idx = clamp(⌈(z′ + 1)·L/2⌉ − 1, 0, L − 1) (spec §4).

    The straight-through estimator sits on the tanh output (spec §11.11): the forward value is exactly the
    grid value and the gradient flows through tanh to z, so an unfrozen encoder gets correct gradients.

    `levels` has one entry per code dimension (128 entries of 4 for the paper). The module has no
    parameters; the levels live in a buffer so they move with `.to(device)` and appear in state dicts.
    """

    levels_buffer: torch.Tensor

    def __init__(self, levels: Sequence[int]) -> None:
        super().__init__()
        levels = tuple(int(level) for level in levels)
        if not levels:
            raise ValueError("FSQ levels is empty; pass one level count per code dimension, e.g. (4,) * 128")
        bad = [level for level in levels if level < 2]
        if bad:
            raise ValueError(f"FSQ levels must all be >= 2, got {bad[:5]}; a 1-level dimension carries no information")
        self.levels = levels
        self.register_buffer("levels_buffer", torch.tensor(levels, dtype=torch.int64), persistent=True)

    @property
    def dim(self) -> int:
        """Number of code dimensions D."""
        return len(self.levels)

    @property
    def bits_per_frame(self) -> float:
        """Information bits in one frame: Σ_d log2 L_d (256 for the paper)."""
        return float(torch.log2(torch.tensor(self.levels, dtype=torch.float64)).sum())

    def _levels(self, like: torch.Tensor) -> torch.Tensor:
        """Levels as a float tensor shaped [1, D, 1] to broadcast over [B, D, T]."""
        return self.levels_buffer.to(device=like.device, dtype=like.dtype).view(1, -1, 1)

    def _check_dim(self, name: str, size: int) -> None:
        if size != self.dim:
            raise ValueError(f"{name} has {size} code dimensions but this FSQ has {self.dim}; check code_dim/levels")

    def bounded_to_indices(self, bounded: torch.Tensor) -> torch.Tensor:
        """Nearest-level index of already-bounded values, ties to the lower index.

        [B, D, T] in [−1, 1] -> [B, D, T] int64.
        """
        self._check_dim("bounded input", bounded.shape[1])
        levels = self._levels(bounded)
        raw = torch.ceil((bounded + 1.0) * levels / 2.0) - 1.0
        return torch.minimum(raw.clamp(min=0.0), levels - 1.0).to(torch.int64)

    def _grid_values(self, indices_bdt: torch.Tensor) -> torch.Tensor:
        """[B, D, T] int64 -> [B, D, T] float32 grid values c_i = −1 + (2i + 1)/L."""
        levels = self._levels(indices_bdt.to(torch.float32))
        return -1.0 + (2.0 * indices_bdt.to(torch.float32) + 1.0) / levels

    def forward(self, z: torch.Tensor) -> FSQResult:
        """Quantise encoder output.

        z [B, D, T] -> FSQResult(values [B, D, T] float32, indices [B, T, D] int64).
        """
        if z.dim() != 3:
            raise ValueError(f"FSQ input must be [B, D, T], got shape {tuple(z.shape)}")
        self._check_dim("FSQ input", z.shape[1])
        with _autocast_off(z.device):
            bounded = torch.tanh(z.float())
            indices = self.bounded_to_indices(bounded.detach())
            grid = self._grid_values(indices)
            # STE on the tanh output: forward value is exactly `grid` (the added term is exactly 0),
            # backward is identity to `bounded` (spec §11.11).
            values = grid + (bounded - bounded.detach())
        return FSQResult(values=values, indices=indices.transpose(1, 2).contiguous())  # [B, D, T] -> [B, T, D]

    def indices_to_values(self, indices: torch.Tensor) -> torch.Tensor:
        """Dequantise level indices to grid values (no other scaling, spec §4).

        indices [B, T, D] int -> values [B, D, T] float32.
        """
        if indices.dim() != 3:
            raise ValueError(f"FSQ indices must be [B, T, D], got shape {tuple(indices.shape)}")
        if indices.dtype.is_floating_point or indices.dtype == torch.bool:
            raise ValueError(f"FSQ indices must be an integer tensor, got dtype {indices.dtype}")
        self._check_dim("FSQ indices", indices.shape[-1])
        indices_bdt = indices.to(torch.int64).transpose(1, 2)  # [B, T, D] -> [B, D, T]
        levels = self.levels_buffer.to(indices_bdt.device).view(1, -1, 1)
        bad = (indices_bdt < 0) | (indices_bdt >= levels)
        if bool(bad.any()):
            dims = torch.nonzero(bad.any(dim=2).any(dim=0)).flatten().tolist()
            lo, hi = int(indices_bdt.min()), int(indices_bdt.max())
            raise ValueError(
                f"FSQ indices out of range in dims {dims[:5]} (found values in [{lo}, {hi}]); "
                f"dim d must lie in [0, levels[d] − 1] with levels {sorted(set(self.levels))}"
            )
        return self._grid_values(indices_bdt)
