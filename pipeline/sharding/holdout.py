"""Deterministic speaker-level hold-out, so evaluation never sees a training speaker (issue 2)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

_HASH_SPACE = float(2**64)


def speaker_score(speaker: str, salt: str) -> float:
    """A stable pseudo-random number in [0, 1) for a speaker (first 8 bytes of SHA-256)."""
    digest = hashlib.sha256(f"{salt}:{speaker}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _HASH_SPACE


def holdout_speakers(speakers: Iterable[str], fraction: float, min_count: int, salt: str) -> frozenset[str]:
    """Speakers whose hash score is below `fraction`, topped up to `min_count` with the lowest scores.

    The threshold rule keeps each speaker's membership stable as a corpus grows; the top-up only matters for
    small corpora (e.g. the sample corpus) where 2% of speakers would round to nobody. The top-up never
    takes every speaker: at least one always remains for training.
    """
    unique = sorted(set(speakers))
    ranked = sorted(unique, key=lambda speaker: (speaker_score(speaker, salt), speaker))
    chosen = {speaker for speaker in ranked if speaker_score(speaker, salt) < fraction}
    top_up = min(min_count, len(unique) - 1)
    for speaker in ranked[:top_up]:
        chosen.add(speaker)
    return frozenset(chosen)
