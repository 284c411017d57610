"""Mixed-radix packing of FSQ level indices into integer tokens (spec §5, §11.12, §11.13)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

_UINT16_LIMIT = 2**16


class MixedRadixPacker(nn.Module):
    """Pack D per-dimension indices into ⌈D / G⌉ tokens, G dims per token, little-endian.

    The radix vector is padded with radix-1 dims (index always 0) to a multiple of `group_size`. Inside a
    group the FIRST dim is the least significant digit, as in the reference code (spec §5, §11.12):

        token = i₀ + r₀·(i₁ + r₁·(i₂ + … + r₅·i₆))

    so (2, 1, 3, 0, 2, 1, 3) with radix 4 packs to 13 878. For the paper (128 dims of radix 4, G = 7) there
    are 19 tokens per frame, vocab 4⁷ = 16 384, and the last group only spans 16 values.

    `pack` returns int64; every token is < `vocab_size` ≤ 2¹⁶ for the paper, so `to_uint16` stores it
    losslessly. `unpack` accepts any integer dtype (uint16 included) and is the exact inverse of `pack`.
    """

    place_values: torch.Tensor
    radix_table: torch.Tensor
    group_cardinality: torch.Tensor

    def __init__(self, radices: Sequence[int], group_size: int = 7) -> None:
        super().__init__()
        radices = tuple(int(radix) for radix in radices)
        if not radices:
            raise ValueError("radices is empty; pass one radix (FSQ level count) per code dimension")
        if any(radix < 1 for radix in radices):
            raise ValueError(f"radices must all be >= 1, got {[r for r in radices if r < 1][:5]}")
        if group_size < 1:
            raise ValueError(f"group_size must be >= 1, got {group_size}")
        self.radices = radices
        self.group_size = group_size
        groups = math.ceil(len(radices) / group_size)
        padded = radices + (1,) * (groups * group_size - len(radices))  # pad dims have radix 1 (spec §5)
        table = torch.tensor(padded, dtype=torch.int64).view(groups, group_size)  # [G, group_size]
        # Little-endian place values: w_k = Π_{j<k} r_j within each group.
        ones = torch.ones(groups, 1, dtype=torch.int64)
        place = torch.cumprod(torch.cat([ones, table[:, :-1]], dim=1), dim=1)
        cardinality = torch.prod(table, dim=1)
        if int(cardinality.max()) >= 2**62:
            raise ValueError(f"group cardinality {int(cardinality.max())} overflows int64; use a smaller group_size")
        self.register_buffer("radix_table", table, persistent=False)
        self.register_buffer("place_values", place, persistent=False)
        self.register_buffer("group_cardinality", cardinality, persistent=False)

    @property
    def dim(self) -> int:
        """Number of real (unpadded) dimensions D."""
        return len(self.radices)

    @property
    def num_groups(self) -> int:
        """Tokens per frame, ⌈D / group_size⌉ (19 for the paper)."""
        return int(self.radix_table.shape[0])

    @property
    def vocab_size(self) -> int:
        """Size of the shared token vocabulary: the largest group cardinality (16 384 for the paper)."""
        return int(self.group_cardinality.max())

    @property
    def group_max(self) -> list[int]:
        """Largest valid token per group (16 383 × 18 then 15 for the paper)."""
        return [int(card) - 1 for card in self.group_cardinality]

    def pack(self, indices: torch.Tensor) -> torch.Tensor:
        """Pack per-dimension indices into tokens.

        indices [..., D] int -> tokens [..., G] int64.
        """
        if indices.dtype.is_floating_point or indices.dtype == torch.bool:
            raise ValueError(f"indices must be an integer tensor, got dtype {indices.dtype}")
        if indices.shape[-1] != self.dim:
            raise ValueError(f"indices have {indices.shape[-1]} dims in the last axis, expected {self.dim}")
        indices = indices.to(torch.int64)
        radices = self.radix_table.flatten()[: self.dim].to(indices.device)
        bad = (indices < 0) | (indices >= radices)
        if bool(bad.any()):
            lo, hi = int(indices.min()), int(indices.max())
            raise ValueError(
                f"indices out of range: found values in [{lo}, {hi}], dim d must lie in [0, radices[d] − 1] "
                f"(radices {sorted(set(self.radices))})"
            )
        pad = self.num_groups * self.group_size - self.dim
        padded = torch.nn.functional.pad(indices, (0, pad))  # pad digits are 0
        grouped = padded.view(*indices.shape[:-1], self.num_groups, self.group_size)  # [..., G, group_size]
        return (grouped * self.place_values.to(indices.device)).sum(dim=-1)

    def unpack(self, tokens: torch.Tensor) -> torch.Tensor:
        """Unpack tokens into per-dimension indices; the exact inverse of `pack`.

        tokens [..., G] int (uint16 allowed) -> indices [..., D] int64.
        """
        if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
            raise ValueError(f"tokens must be an integer tensor, got dtype {tokens.dtype}")
        if tokens.dim() == 0 or tokens.shape[-1] != self.num_groups:
            got = tokens.shape[-1] if tokens.dim() else "a scalar"
            raise ValueError(
                f"tokens have {got} tokens per frame in the last axis, expected {self.num_groups}; "
                "reshape the flat stream to [..., frames, tokens_per_frame]"
            )
        tokens = tokens.to(torch.int64)
        cardinality = self.group_cardinality.to(tokens.device)
        bad = (tokens < 0) | (tokens >= cardinality)
        if bool(bad.any()):
            group = int(torch.nonzero(bad.reshape(-1, self.num_groups).any(dim=0))[0])
            value = int(tokens[..., group][bad[..., group]].flatten()[0])
            raise ValueError(
                f"token {value} out of range for group {group}: expected 0 <= token <= {int(cardinality[group]) - 1}"
            )
        place = self.place_values.to(tokens.device)
        radix = self.radix_table.to(tokens.device)
        digits = torch.div(tokens.unsqueeze(-1), place, rounding_mode="floor") % radix  # [..., G, group_size]
        return digits.flatten(-2)[..., : self.dim]

    def to_uint16(self, tokens: torch.Tensor) -> torch.Tensor:
        """Cast packed tokens to uint16 for storage; refuses when the vocabulary does not fit.

        tokens [..., G] int64 -> [..., G] uint16.
        """
        if self.vocab_size > _UINT16_LIMIT:
            raise ValueError(f"vocab_size {self.vocab_size} does not fit uint16 (max {_UINT16_LIMIT}); keep int32")
        if bool(((tokens < 0) | (tokens >= self.vocab_size)).any()):
            raise ValueError(f"tokens outside [0, {self.vocab_size - 1}] cannot be stored as uint16")
        return tokens.to(torch.uint16)
