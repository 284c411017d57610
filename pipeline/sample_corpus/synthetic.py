"""A built-in, deterministic speech-like voice (source-filter model) for machines without espeak-ng.

Not intelligible speech, but it has what the pipeline and the codec care about: a glottal pulse train with a
per-speaker F0, declination and jitter; vowel formants scaled by vocal-tract length; syllable-rate amplitude
modulation with fricative noise at onsets; and word and comma pauses.
"""

from __future__ import annotations

import functools
import re

import numpy as np
from scipy import ndimage, signal

from pipeline.sample_corpus.text import syllable_count
from pipeline.sample_corpus.voices import SpeakerVoice

# Adult male vowel formants F1-F3 in Hz (Peterson & Barney 1952): /a/ /e/ /i/ /o/ /u/.
_VOWEL_FORMANTS = np.array(
    [[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410], [300, 870, 2240]], dtype=np.float64
)
_FORMANT_BANDWIDTHS = (80.0, 100.0, 140.0)  # Hz; typical vowel bandwidths
# Rosenberg glottal pulse: opening and closing as fractions of the period (Rosenberg 1971, shape "C").
_OPEN_FRACTION, _CLOSE_FRACTION = 0.4, 0.16
_WORD_GAP_SECONDS = (0.02, 0.07)
_COMMA_PAUSE_SECONDS = (0.15, 0.3)
_ONSET_NOISE_SECONDS = 0.05  # fricative/plosive noise at a syllable's start
_VOWEL_BLEND_SECONDS = 0.03  # formant transitions between syllables
_JITTER_SMOOTH_SECONDS = 0.005


def _rosenberg(phase: np.ndarray) -> np.ndarray:
    """Glottal flow for `phase` in [0, 1) of each period (same shape)."""
    opening = phase < _OPEN_FRACTION
    closing = (phase >= _OPEN_FRACTION) & (phase < _OPEN_FRACTION + _CLOSE_FRACTION)
    flow = np.zeros_like(phase)
    flow[opening] = 0.5 * (1.0 - np.cos(np.pi * phase[opening] / _OPEN_FRACTION))
    flow[closing] = np.cos(0.5 * np.pi * (phase[closing] - _OPEN_FRACTION) / _CLOSE_FRACTION)
    return flow


def _moving_average(values: np.ndarray, width: int) -> np.ndarray:
    """Smooth along the last axis with a centred box of `width` samples (same shape)."""
    if width <= 1:
        return values
    return ndimage.uniform_filter1d(values, size=width, axis=-1, mode="nearest")


@functools.lru_cache(maxsize=256)
def _formant_sos(formants: tuple[float, ...], rate: int) -> np.ndarray:
    """Cascade of one two-pole resonator per formant, as second-order sections `[n_formants, 6]`."""
    rows = []
    for frequency, bandwidth in zip(formants, _FORMANT_BANDWIDTHS, strict=True):
        # iirpeak returns one biquad (b, a), which is exactly one SOS row; Q = centre / bandwidth.
        b, a = signal.iirpeak(min(frequency, 0.45 * rate), frequency / bandwidth, fs=rate)
        rows.append(np.concatenate([b, a]))
    return np.stack(rows)


class SyntheticBackend:
    """Source-filter "speech": one syllable per vowel group of the text, paced by the speaker's rate."""

    name = "synthetic"
    version = "speechtok-synthetic 1"  # bump when the waveform changes, so corpora name what made them

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    def _segments(self, text: str, voice: SpeakerVoice, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Per-segment (lengths in samples, voiced flags): syllables, word gaps and comma pauses in order."""
        lengths: list[int] = []
        voiced: list[bool] = []
        rate = self.sample_rate
        for token in re.findall(r"[A-Za-z']+|,", text):
            if token == ",":
                lengths.append(int(rng.uniform(*_COMMA_PAUSE_SECONDS) * rate))
                voiced.append(False)
                continue
            for _ in range(syllable_count(token)):
                lengths.append(int(rng.uniform(0.7, 1.3) / voice.syllables_per_second * rate))
                voiced.append(True)
            lengths.append(int(rng.uniform(*_WORD_GAP_SECONDS) * rate))
            voiced.append(False)
        if not lengths:
            raise ValueError(f"text {text!r} has no words to synthesise; pass text with letters")
        return np.array(lengths, dtype=np.int64), np.array(voiced, dtype=bool)

    def synthesize(self, text: str, voice: SpeakerVoice, rng: np.random.Generator) -> np.ndarray:
        """`text` read by `voice` -> float32 `[samples]` at `sample_rate`, peak about 1."""
        rate = self.sample_rate
        lengths, voiced = self._segments(text, voice, rng)
        count = len(lengths)
        total = int(lengths.sum())
        segment = np.repeat(np.arange(count), lengths)  # [T] segment index of each sample
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        position = (np.arange(total) - starts[segment]) / np.maximum(lengths[segment], 1)  # [T] 0..1 in segment

        # Source: F0 falls ~20% over the utterance (declination), each syllable gets a random accent, and
        # smoothed per-sample noise adds jitter.
        accent = rng.uniform(0.9, 1.12, count)[segment]
        declination = np.linspace(1.1, 0.88, total)
        jitter = _moving_average(rng.normal(0.0, voice.jitter, total), int(_JITTER_SMOOTH_SECONDS * rate))
        f0 = voice.f0_hz * declination * _moving_average(accent, int(0.05 * rate)) * (1.0 + jitter)
        phase = np.cumsum(f0 / rate) % 1.0
        excitation = np.diff(_rosenberg(phase), prepend=0.0)  # lip radiation ~ differentiated glottal flow
        excitation += rng.normal(0.0, 0.002, total)  # breathiness

        # Filter: the excitation through each vowel's formant cascade, cross-faded by the syllable's vowel.
        vowels = rng.integers(0, len(_VOWEL_FORMANTS), count)
        weights = (vowels[segment][None, :] == np.arange(len(_VOWEL_FORMANTS))[:, None]).astype(np.float64)
        weights = _moving_average(weights, int(_VOWEL_BLEND_SECONDS * rate))  # [V, T]
        voiced_sound = np.zeros(total)
        for index, formants in enumerate(_VOWEL_FORMANTS * voice.formant_scale):
            if not weights[index].any():
                continue
            voiced_sound += weights[index] * signal.sosfilt(_formant_sos(tuple(formants), rate), excitation)

        # Syllable envelope: a rounded rise and fall inside voiced segments, silence in gaps; onsets carry
        # high-passed noise like a fricative or plosive release.
        envelope = np.where(voiced[segment], np.sin(np.pi * position) ** 0.6, 0.0)
        onset_seconds = position * lengths[segment] / rate
        onset = voiced[segment] & (onset_seconds < _ONSET_NOISE_SECONDS) & (rng.random(count) < 0.6)[segment]
        fricative = signal.sosfilt(
            signal.butter(4, min(3500.0, 0.4 * rate), "highpass", fs=rate, output="sos"), rng.normal(0.0, 1.0, total)
        )
        voiced_sound /= np.max(np.abs(voiced_sound)) + 1e-12
        audio = envelope * voiced_sound * np.where(onset, 0.3, 1.0) + np.where(onset, 0.15, 0.0) * fricative
        audio /= np.max(np.abs(audio)) + 1e-12
        return audio.astype(np.float32)

    def phones(self, text: str, voice: SpeakerVoice) -> None:
        """The synthetic voice says syllables, not phones: it has no phone timings (no ABX items)."""
        return None
