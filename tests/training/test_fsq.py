"""FSQ: grid, tie-breaking, exact dequantisation, straight-through gradient, errors (spec §4, §11.11)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from training.models.fsq import FSQ
from training.models.packing import MixedRadixPacker

GRID_4 = torch.tensor([-0.75, -0.25, 0.25, 0.75])


def test_no_parameters_and_grid() -> None:
    fsq = FSQ([4] * 8)
    assert list(fsq.parameters()) == []
    assert "levels_buffer" in fsq.state_dict()
    assert fsq.bits_per_frame == 16.0
    values = fsq.indices_to_values(torch.arange(4).view(1, 4, 1).expand(1, 4, 8))
    assert torch.equal(values[0, 0], GRID_4)


def test_nearest_level_matches_argmin() -> None:
    fsq = FSQ([4] * 16)
    z = torch.randn(3, 16, 50) * 2
    result = fsq(z)
    bounded = torch.tanh(z)
    argmin = (bounded.unsqueeze(-1) - GRID_4).abs().argmin(dim=-1)  # [B, D, T]
    assert torch.equal(result.indices, argmin.transpose(1, 2))


def test_ties_go_to_lower_index() -> None:
    fsq = FSQ([4, 3, 2])
    # Midpoints between grid points, exactly representable: L=4 at −0.5, 0, 0.5; L=3 at ±1/3 (inexact, skipped);
    # L=2 at 0.
    bounded = torch.tensor([[[-0.5, 0.0, 0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])  # [1, D=3, T=3]
    indices = fsq.bounded_to_indices(bounded)
    assert indices[0, 0].tolist() == [0, 1, 2]
    assert indices[0, 2].tolist() == [0, 0, 0]
    # z = 0 through the whole forward: tanh(0) = 0 exactly, a tie between −0.25 and 0.25 → −0.25.
    result = FSQ([4])(torch.zeros(1, 1, 1))
    assert result.indices.item() == 1
    assert result.values.item() == -0.25


def test_extremes_clamp() -> None:
    fsq = FSQ([4])
    result = fsq(torch.tensor([[[-1e6, -1.0, 1.0, 1e6]]]))
    assert result.indices.flatten().tolist() == [0, 0, 3, 3]
    bounded = torch.tensor([[[-1.0, 1.0]]])
    assert fsq.bounded_to_indices(bounded).flatten().tolist() == [0, 3]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    levels=st.lists(st.integers(2, 9), min_size=1, max_size=12),
    scale=st.floats(0.01, 10.0),
)
def test_dequantize_quantize_is_exactly_a_grid_value(seed: int, levels: list[int], scale: float) -> None:
    fsq = FSQ(levels)
    z = torch.randn(2, len(levels), 7, generator=torch.Generator().manual_seed(seed)) * scale
    result = fsq(z)
    assert result.indices.shape == (2, 7, len(levels))
    assert result.indices.dtype == torch.int64
    # forward value is bit-exactly the grid value, and dequantising the indices gives the same tensor
    assert torch.equal(result.values.detach(), fsq.indices_to_values(result.indices))
    level_tensor = torch.tensor(levels).view(1, -1, 1)
    assert torch.equal(result.values.detach(), -1.0 + (2.0 * result.indices.transpose(1, 2) + 1.0) / level_tensor)
    # quantising a grid value returns the same index (idempotence)
    again = fsq.bounded_to_indices(result.values.detach())
    assert torch.equal(again, result.indices.transpose(1, 2))


def test_straight_through_gradient_is_tanh_derivative() -> None:
    fsq = FSQ([4] * 4)
    z = torch.randn(2, 4, 5, requires_grad=True)
    weights = torch.randn(2, 4, 5)
    (fsq(z).values * weights).sum().backward()
    assert z.grad is not None
    expected = weights * (1 - torch.tanh(z.detach()) ** 2)
    torch.testing.assert_close(z.grad, expected)


def test_fp32_under_autocast() -> None:
    fsq = FSQ([4] * 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        result = fsq(torch.randn(1, 4, 3, dtype=torch.bfloat16))
    assert result.values.dtype == torch.float32


def test_indices_to_packing_round_trip() -> None:
    # spec §11.13: indices → tokens → indices → values.
    fsq, packer = FSQ([4] * 128), MixedRadixPacker([4] * 128)
    result = fsq(torch.randn(2, 128, 5))
    tokens = packer.pack(result.indices)  # [B, T, 19]
    assert torch.equal(fsq.indices_to_values(packer.unpack(tokens)), result.values.detach())


def test_errors() -> None:
    fsq = FSQ([4] * 8)
    with pytest.raises(ValueError, match=r"out of range.*found values in \[4, 4\]"):
        fsq.indices_to_values(torch.full((1, 2, 8), 4))
    with pytest.raises(ValueError, match="out of range"):
        fsq.indices_to_values(torch.full((1, 2, 8), -1))
    with pytest.raises(ValueError, match="7 code dimensions but this FSQ has 8"):
        fsq.indices_to_values(torch.zeros(1, 2, 7, dtype=torch.int64))
    with pytest.raises(ValueError, match="integer"):
        fsq.indices_to_values(torch.zeros(1, 2, 8))
    with pytest.raises(ValueError, match="5 code dimensions"):
        fsq(torch.zeros(1, 5, 3))
    with pytest.raises(ValueError, match=">= 2"):
        FSQ([4, 1])
