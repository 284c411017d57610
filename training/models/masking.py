"""Latent-space block masking for JEPA stage 1 (spec §3, §11.4).

The reference draws spans with Python's unseeded `random` in a per-sample while-loop. This module keeps
the same algorithm and distribution but draws from a `torch.Generator` and vectorises the loop: every
sample draws n = ⌊ρ·T⌋ candidate spans up front (each span masks at least one frame, so n spans always
reach the counter), and a span is used iff the counter before it is still below n. That is exactly the
sequential loop's stopping rule applied to the same draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# The training loop's s_max = max(4, ⌊T/4⌋) (spec §3); the function defaults (4, 16) were unused.
_MAX_SPAN_FLOOR = 4


@dataclass
class MaskResult:
    """A batch of block masks.

    visible:        [B, T] bool, True = visible to the predictor, False = masked (to be predicted).
    realised_ratio: masked fraction over the whole batch. Overlaps are double-counted, so on average it is
                    below ρ (≈ 0.45 at the paper's T = 37), but the last span may overshoot the counter:
                    one sample can exceed ρ by up to (s_max − 1)/T, and short clips (T = 4) average ≈ 0.71.
    span_starts, span_ends: [B, S] int64 candidate spans [start, end), S = ⌊ρ·T⌋.
    span_used:      [B, S] bool, which candidates the counter consumed (a prefix of each row).
    """

    visible: torch.Tensor
    realised_ratio: float
    span_starts: torch.Tensor
    span_ends: torch.Tensor
    span_used: torch.Tensor


def default_max_span(frames: int, floor: int = _MAX_SPAN_FLOOR) -> int:
    """s_max = max(floor, ⌊T/4⌋), as the reference training loop passes it (spec §3)."""
    return max(floor, frames // 4)


def block_mask(
    batch: int,
    frames: int,
    ratio: float = 0.5,
    min_span: int = 2,
    max_span: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> MaskResult:
    """Draw one block mask per sample.

    Per sample, until the counter reaches n = ⌊ρ·T⌋: ℓ ~ U{s_min..s_max}, start ~ U{0..max(1, T − ℓ)},
    mask [start, min(start + ℓ, T)), counter += end − start (spec §3). Draws happen on the CPU generator
    so results are identical across devices (pass a CPU generator); the mask is then moved to `device`.

    () -> visible [B, T] bool.
    """
    if batch < 1 or frames < 1:
        raise ValueError(f"block_mask needs batch >= 1 and frames >= 1, got batch={batch}, frames={frames}")
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"mask ratio must lie in [0, 1], got {ratio}")
    max_span = default_max_span(frames) if max_span is None else max_span
    if min_span < 1 or max_span < min_span:
        raise ValueError(f"need 1 <= min_span <= max_span, got min_span={min_span}, max_span={max_span}")
    target = math.floor(ratio * frames)
    # With T >= 2 every span masks >= 1 frame, so `target` candidates always suffice. With T = 1 a start
    # of 1 masks nothing; 64 candidates make missing the target a 2⁻⁶⁴ event.
    spans = target if frames >= 2 else 64 * target

    lengths = torch.randint(min_span, max_span + 1, (batch, spans), generator=generator)  # [B, S]
    highest_start = torch.clamp(frames - lengths, min=1)  # start ~ U{0..max(1, T − ℓ)}, inclusive
    uniform = torch.rand(batch, spans, generator=generator, dtype=torch.float64)
    starts = torch.minimum(torch.floor(uniform * (highest_start + 1)).to(torch.int64), highest_start)
    ends = torch.clamp(starts + lengths, max=frames)
    # Counter before each span; the loop draws span j iff that counter is still below the target.
    counted_before = torch.cumsum(ends - starts, dim=1) - (ends - starts)
    used = counted_before < target  # [B, S]

    positions = torch.arange(frames).view(1, 1, frames)  # [1, 1, T]
    covered = (positions >= starts.unsqueeze(-1)) & (positions < ends.unsqueeze(-1)) & used.unsqueeze(-1)
    visible = ~covered.any(dim=1)  # [B, S, T] -> [B, T]
    realised = 1.0 - float(visible.float().mean())
    return MaskResult(
        visible=visible.to(device) if device is not None else visible,
        realised_ratio=realised,
        span_starts=starts,
        span_ends=ends,
        span_used=used,
    )
