"""Token statistics of an evaluation set: per-group code usage, entropy in bits, unused codes and bitrates.

Group cardinalities come from the codec's packer (`Codec.packer.group_max`), never re-declared (STYLE rule 6):
for the paper every group spans 4⁷ = 16 384 codes except the last, which spans 16.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TokenStats:
    """Usage of each token group over `frames` frames; arrays are [G], one entry per group (position in frame)."""

    frames: int
    cardinality: np.ndarray  # codes each group can take
    used: np.ndarray  # distinct codes seen
    entropy_bits: np.ndarray  # Shannon entropy of the group's empirical code distribution
    frame_rate: float

    @property
    def usage(self) -> np.ndarray:
        """Share of each group's codes seen at least once, [G] in [0, 1]."""
        return self.used / self.cardinality

    @property
    def unused_code_fraction(self) -> float:
        """Share of all (group, code) pairs never seen."""
        return float(1.0 - self.used.sum() / self.cardinality.sum())

    @property
    def bitrate_bps(self) -> float:
        """Capacity of the token stream: frame_rate × Σ_g log2(cardinality_g) (640 b/s for the paper)."""
        return float(self.frame_rate * np.log2(self.cardinality).sum())

    @property
    def entropy_bitrate_bps(self) -> float:
        """frame_rate × Σ_g H_g: what a per-group entropy coder would need on this set (≤ bitrate_bps)."""
        return float(self.frame_rate * self.entropy_bits.sum())

    @property
    def tokens_per_second(self) -> float:
        return float(self.frame_rate * self.cardinality.shape[0])

    def as_metrics(self) -> dict[str, float]:
        """MLflow metrics: `tokens.*` aggregates, `tokens.group_{g:02d}.*` per group, and the bitrates."""
        metrics = {
            "tokens.frames": float(self.frames),
            "tokens.entropy_bits_mean": float(self.entropy_bits.mean()),
            "tokens.entropy_bits_min": float(self.entropy_bits.min()),
            "tokens.usage_mean": float(self.usage.mean()),
            "tokens.unused_code_fraction": self.unused_code_fraction,
            "tokens_per_second": self.tokens_per_second,
            "bitrate_bps": self.bitrate_bps,
            "entropy_bitrate_bps": self.entropy_bitrate_bps,
        }
        for group, (usage, entropy) in enumerate(zip(self.usage, self.entropy_bits, strict=True)):
            metrics[f"tokens.group_{group:02d}.usage"] = float(usage)
            metrics[f"tokens.group_{group:02d}.entropy_bits"] = float(entropy)
        return metrics


def token_statistics(
    tokens: Sequence[np.ndarray] | np.ndarray, group_cardinality: Sequence[int], frame_rate: float
) -> TokenStats:
    """Count codes per group: clips of tokens [T_i, G] (or one [N, G] array) -> TokenStats.

    One bincount over `group * V + token` gives the [G, V] count table (V = largest cardinality) without a loop
    over groups or frames (STYLE rule 9).
    """
    cardinality = np.asarray(group_cardinality, dtype=np.int64)
    groups = cardinality.shape[0]
    clips = [tokens] if isinstance(tokens, np.ndarray) else list(tokens)
    flat = np.concatenate([np.asarray(c, dtype=np.int64).reshape(-1, groups) for c in clips]) if clips else None
    if flat is None or flat.shape[0] == 0:
        raise ValueError("no tokens to count; the evaluation set produced no frames")
    if flat.min() < 0 or (flat >= cardinality).any():
        bad = np.argwhere((flat < 0) | (flat >= cardinality))[0]
        raise ValueError(
            f"token {flat[bad[0], bad[1]]} in group {bad[1]} is outside [0, {cardinality[bad[1]]}); "
            "were these tokens made by this codec?"
        )
    width = int(cardinality.max())
    counts = np.bincount((np.arange(groups) * width + flat).ravel(), minlength=groups * width).reshape(groups, width)
    probability = counts / flat.shape[0]  # [G, V]
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.sum(np.where(counts > 0, probability * np.log2(probability), 0.0), axis=1)
    return TokenStats(
        frames=int(flat.shape[0]),
        cardinality=cardinality,
        used=(counts > 0).sum(axis=1),
        entropy_bits=entropy + 0.0,  # -0.0 -> 0.0 for single-code groups
        frame_rate=float(frame_rate),
    )
