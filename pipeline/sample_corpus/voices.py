"""Per-speaker voices: each speaker of a corpus maps deterministically to a distinct voice for either backend."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# espeak-ng voice variants (espeak-ng-data/voices/!v) that read English intelligibly, alternating male and
# female so that even a two-speaker corpus has clearly different voices. Variant x accent pairs are distinct
# for the first 60 speakers; after that the seeded pitch and speed keep voices apart.
_VARIANTS = ("m1", "f1", "m2", "f2", "m3", "f3", "m4", "f4", "m5", "f5", "m6", "m7")
_FEMALE_VARIANTS = frozenset({"f1", "f2", "f3", "f4", "f5"})
_ACCENTS = ("en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en")
# Typical adult reading F0 (Hz): men about 85-155, women about 165-255 (Titze, Principles of Voice Production).
_MALE_F0 = (90.0, 150.0)
_FEMALE_F0 = (170.0, 245.0)


@dataclass(frozen=True)
class SpeakerVoice:
    """How one speaker sounds: espeak-ng settings and the synthetic backend's source-filter parameters."""

    speaker_id: str
    index: int
    female: bool
    espeak_voice: str  # `-v` argument, e.g. "en-us+f3"
    espeak_pitch: int  # `-p`, 0..99
    espeak_speed: int  # `-s`, words per minute
    f0_hz: float  # synthetic: mean fundamental frequency
    formant_scale: float  # synthetic: >1 shortens the vocal tract (higher formants)
    syllables_per_second: float  # synthetic: speaking rate
    jitter: float  # synthetic: relative cycle-to-cycle F0 perturbation
    gain_db: float  # loudness offset around the -20 dBFS speech level


def speaker_voice(speaker_id: str, index: int, rng: np.random.Generator) -> SpeakerVoice:
    """The voice of the `index`-th speaker of a corpus; `rng` adds seeded per-speaker variation."""
    variant = _VARIANTS[index % len(_VARIANTS)]
    accent = _ACCENTS[(index // len(_VARIANTS)) % len(_ACCENTS)]
    female = variant in _FEMALE_VARIANTS
    low, high = _FEMALE_F0 if female else _MALE_F0
    # Spread F0 over the range by rank within the voice type (index // 2, as types alternate); golden-ratio
    # steps stay apart for any count. The seed then moves it a little.
    spread = ((index // 2) * 0.6180339887) % 1.0
    f0 = low + (high - low) * (0.8 * spread + 0.2 * float(rng.random()))
    return SpeakerVoice(
        speaker_id=speaker_id,
        index=index,
        female=female,
        espeak_voice=f"{accent}+{variant}",
        espeak_pitch=round(25 + 50 * spread),
        espeak_speed=int(rng.integers(140, 186)),
        f0_hz=round(f0, 2),
        formant_scale=round((1.15 if female else 1.0) + float(rng.uniform(-0.06, 0.06)), 3),
        syllables_per_second=round(float(rng.uniform(3.6, 5.2)), 3),
        jitter=round(float(rng.uniform(0.005, 0.02)), 4),
        gain_db=round(float(rng.uniform(-3.0, 3.0)), 2),
    )
