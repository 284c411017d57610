"""ResBlock: cutting dilated taps that only read padding never changes the output (spec §2.2, issue 12)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from training.models.resblock import _LEAKY_SLOPE, ResBlock


def full_convolution(block: ResBlock, x: torch.Tensor) -> torch.Tensor:
    """The block with every dilated conv run at full size (no shortcut): [B, C, T] -> [B, C, T]."""
    for conv1, conv2 in zip(block.convs1, block.convs2, strict=True):
        y = conv1(F.leaky_relu(x, _LEAKY_SLOPE))
        x = x + conv2(F.leaky_relu(y, _LEAKY_SLOPE))
    return x


@pytest.mark.parametrize("kernel_size", [3, 7, 11])
def test_shortcut_equals_full_convolution_for_every_length(kernel_size: int) -> None:
    torch.manual_seed(kernel_size)
    # The decoder MRF's dilations and the encoder's largest ones, so every tap count from 1 to k is exercised.
    block = ResBlock(4, kernel_size, dilations=(1, 3, 5, 9, 25)).double()
    for length in range(1, 41):
        x = torch.randn(2, 4, length, dtype=torch.float64)
        with torch.no_grad():
            expected, got = full_convolution(block, x), block(x)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12, msg=f"k={kernel_size} T={length}")


def test_shortcut_is_taken_on_short_sequences() -> None:
    """The cut kernel is what runs: a conv whose far taps are poisoned with NaN still gives finite output
    when those taps can only read padding (T = 6, d = 5, k = 7: only the centre and ±1 tap can reach)."""
    block = ResBlock(2, 7, dilations=(5,))
    with torch.no_grad():
        block.convs1[0].weight[:, :, 0] = float("nan")
        block.convs1[0].weight[:, :, -1] = float("nan")
    assert torch.isfinite(block(torch.randn(1, 2, 6))).all()
