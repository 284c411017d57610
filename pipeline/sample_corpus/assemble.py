"""Lay utterances out in one file with known silences, so `voice_activity` is exact, then add a noise floor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.sample_corpus.phones import PhoneSpan

# Speech sits about 20 dB below full scale, like a levelled audiobook; each speaker's gain_db moves it a little.
_SPEECH_DBFS = -20.0
_PEAK_LIMIT = 0.9  # scale down utterances whose peaks would clip after the noise is added
# Trimming: samples quieter than this relative to the utterance peak count as leading/trailing silence. 60 dB
# below a peak of about -8 dBFS is under even the quietest noise floor (-65 dBFS), so cutting loses nothing audible.
_TRIM_DB_BELOW_PEAK = 60.0
_MS_PER_SECOND = 1000
_INT16_SCALE = 32767


@dataclass(frozen=True)
class UtteranceText:
    """What one utterance (one `voice_activity` region) says: its text and, where the backend times phones, its
    phones as [phone, start_s, end_s] in seconds from the start of the file (issue 13: WER and ABX references)."""

    start_s: float
    end_s: float
    text: str
    phones: list[tuple[str, float, float]] | None

    def as_json(self) -> dict[str, object]:
        return {"start": self.start_s, "end": self.end_s, "text": self.text, "phones": self.phones}


@dataclass(frozen=True)
class AssembledAudio:
    """One file's samples and the metadata that describes them exactly."""

    samples: np.ndarray  # int16 [T]
    voice_activity: list[list[float]]  # [[start_s, end_s], ...] sorted, non-overlapping, on whole milliseconds
    snr: float  # dB: mean speech power inside voice_activity over the noise floor's power
    speech_seconds: float
    seconds: float
    utterances: list[UtteranceText] = field(default_factory=list)  # one per voice_activity region, same order


def trim_bounds(utterance: np.ndarray) -> tuple[int, int]:
    """[start, end) of a float utterance `[T]` without its leading and trailing near-silence ((0, 0) if silent)."""
    magnitude = np.abs(utterance)
    peak = float(magnitude.max()) if len(magnitude) else 0.0
    if peak == 0.0:
        return 0, 0
    loud = np.flatnonzero(magnitude > peak * 10 ** (-_TRIM_DB_BELOW_PEAK / 20))
    return int(loud[0]), int(loud[-1]) + 1


def trim_silence(utterance: np.ndarray) -> np.ndarray:
    """Drop leading and trailing near-silence of a float utterance `[T] -> [T']` (empty if all silent)."""
    start, end = trim_bounds(utterance)
    return utterance[start:end]


def level(utterance: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale a trimmed utterance to the speech level plus `gain_db`, never past the peak limit (same shape)."""
    rms = float(np.sqrt(np.mean(utterance.astype(np.float64) ** 2)))
    if rms == 0.0:
        return utterance.astype(np.float64)
    gain = 10 ** ((_SPEECH_DBFS + gain_db) / 20) / rms
    gain = min(gain, _PEAK_LIMIT / float(np.max(np.abs(utterance))))
    return utterance.astype(np.float64) * gain


class FileLayout:
    """Places utterances one after another, each after a seeded pause, up to a target length.

    Positions are whole milliseconds so the rounded `voice_activity` times are exact sample positions at
    16 kHz (16 samples per ms); each region spans its utterance's samples, rounded up to the next millisecond.
    """

    def __init__(
        self, sample_rate: int, target_seconds: float, pause_seconds: tuple[float, float], rng: np.random.Generator
    ) -> None:
        self.sample_rate = sample_rate
        self.target_ms = round(target_seconds * _MS_PER_SECOND)
        self.pause_seconds = pause_seconds
        self.rng = rng
        self.cursor_ms = 0
        self.pieces: list[tuple[int, np.ndarray]] = []  # (start sample, float utterance)
        self.regions_ms: list[tuple[int, int]] = []
        self.texts: list[tuple[str, Sequence[PhoneSpan] | None]] = []
        self._next_pause_ms = self._draw_pause()

    def _draw_pause(self) -> int:
        return round(self.rng.uniform(*self.pause_seconds) * _MS_PER_SECOND)

    def _length_ms(self, utterance: np.ndarray) -> int:
        return -(-len(utterance) * _MS_PER_SECOND // self.sample_rate)  # ceiling division

    @property
    def empty(self) -> bool:
        return not self.pieces

    def fits(self, utterance: np.ndarray) -> bool:
        """Whether pause + utterance + the shortest closing pause stay within the target length."""
        closing_ms = round(self.pause_seconds[0] * _MS_PER_SECOND)
        return self.cursor_ms + self._next_pause_ms + self._length_ms(utterance) + closing_ms <= self.target_ms

    def add(self, utterance: np.ndarray, text: str = "", phones: Sequence[PhoneSpan] | None = None) -> None:
        """Place a trimmed, levelled float utterance after the next pause; `text` is what it says and `phones` its
        phones timed from the utterance's first sample."""
        start_ms = self.cursor_ms + self._next_pause_ms
        end_ms = start_ms + self._length_ms(utterance)
        self.pieces.append((start_ms * self.sample_rate // _MS_PER_SECOND, utterance))
        self.regions_ms.append((start_ms, end_ms))
        self.texts.append((text, phones))
        self.cursor_ms = end_ms
        self._next_pause_ms = self._draw_pause()

    def finish(self, noise_dbfs: float) -> AssembledAudio:
        """Mix the utterances over Gaussian noise at `noise_dbfs` RMS; the file ends after a closing pause."""
        if not self.pieces:
            raise ValueError("a file needs at least one utterance; add() one before finish()")
        # fits() kept room for the shortest pause, so this fills up to the target unless the one utterance of a
        # very short file overran it.
        closing_ms = max(round(self.pause_seconds[0] * _MS_PER_SECOND), self.target_ms - self.cursor_ms)
        total = (self.cursor_ms + closing_ms) * self.sample_rate // _MS_PER_SECOND
        speech = np.zeros(total)
        for start, utterance in self.pieces:
            speech[start : start + len(utterance)] = utterance
        noise = self.rng.normal(0.0, 10 ** (noise_dbfs / 20), total)
        mixed = np.clip(np.round((speech + noise) * _INT16_SCALE), -_INT16_SCALE - 1, _INT16_SCALE)

        speech_samples = sum(len(utterance) for _, utterance in self.pieces)
        speech_power = sum(float(np.sum(utterance**2)) for _, utterance in self.pieces) / max(speech_samples, 1)
        noise_power = float(np.mean(noise**2))
        snr = 10 * np.log10(speech_power / noise_power)
        utterances = [
            UtteranceText(start / _MS_PER_SECOND, end / _MS_PER_SECOND, text, _shift(phones, start, end))
            for (start, end), (text, phones) in zip(self.regions_ms, self.texts, strict=True)
        ]
        return AssembledAudio(
            samples=mixed.astype(np.int16),
            voice_activity=[[start / _MS_PER_SECOND, end / _MS_PER_SECOND] for start, end in self.regions_ms],
            snr=round(float(snr), 4),
            speech_seconds=speech_samples / self.sample_rate,
            seconds=total / self.sample_rate,
            utterances=utterances,
        )


def _shift(phones: Sequence[PhoneSpan] | None, start_ms: int, end_ms: int) -> list[tuple[str, float, float]] | None:
    """Phones timed from their utterance's start -> seconds from the file's start, clipped to the region."""
    if phones is None:
        return None
    end_s = end_ms / _MS_PER_SECOND
    shifted = [
        (
            p.phone,
            round(start_ms / _MS_PER_SECOND + p.start_s, 4),
            round(min(start_ms / _MS_PER_SECOND + p.end_s, end_s), 4),
        )
        for p in phones
        if p.end_s > 0
    ]
    return [(name, max(begin, start_ms / _MS_PER_SECOND), end) for name, begin, end in shifted if end > begin]
