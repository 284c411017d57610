"""The optional metric groups of one evaluation (ASR, speaker, DNSMOS, MCD), each model loaded once, with the
reason each unavailable group is skipped and the compute time of every metric (issue 13)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from pipeline.evaluate.asr import Recognizer, word_error_rate
from pipeline.evaluate.clip import ClipScores
from pipeline.evaluate.config import METRIC_GROUPS
from pipeline.evaluate.metrics import MetricUnavailable
from pipeline.evaluate.optional import MetricSkipped
from pipeline.evaluate.quality import Dnsmos, mel_cepstral_distortion
from pipeline.evaluate.references import ClipReference
from pipeline.evaluate.speaker import SpeakerEncoder, cosine

SECONDS_PER_MINUTE = 60.0


@dataclass
class Timings:
    """Compute seconds and scored audio seconds per metric (or metric group), for `runtime per audio minute`."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    audio_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def measure(self, name: str, audio_seconds: float) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started
            self.audio_seconds[name] += audio_seconds

    def per_audio_minute(self) -> dict[str, float]:
        """Seconds of compute per minute of scored audio, by name."""
        return {
            name: seconds / (self.audio_seconds[name] / SECONDS_PER_MINUTE)
            for name, seconds in self.seconds.items()
            if self.audio_seconds[name] > 0
        }


@dataclass(frozen=True)
class Original:
    """What is measured once on an original clip and compared with every system's reconstruction."""

    key: str
    speaker: str
    reference: ClipReference
    transcript: str | None
    embedding: np.ndarray | None


class QualitySuite:
    """The enabled optional metric groups, loaded once: `skipped` maps each unavailable group to why."""

    def __init__(self, groups: tuple[str, ...], timings: Timings) -> None:
        self.timings = timings
        self.skipped: dict[str, str] = {}
        self.recognizer: Recognizer | None = self._load("asr", groups, Recognizer)
        self.speaker: SpeakerEncoder | None = self._load("speaker", groups, SpeakerEncoder)
        self.dnsmos: Dnsmos | None = self._load("dnsmos", groups, Dnsmos)
        self.mcd = self._load("mcd", groups, _check_mcd) is not None

    def _load(self, group: str, groups: tuple[str, ...], build: Callable[[], object]):  # type: ignore[no-untyped-def]
        if group not in groups:
            return None
        try:
            return build()
        except MetricSkipped as error:
            self.skipped[group] = str(error)
            return None

    def original(self, key: str, speaker: str, audio: np.ndarray, rate: int, reference: ClipReference) -> Original:
        """Transcribe and embed an original clip once (timed under `asr` / `speaker`)."""
        seconds = audio.shape[0] / rate
        transcript = embedding = None
        if self.recognizer is not None:
            with self.timings.measure("asr", seconds):
                transcript = self.recognizer.transcribe(audio, rate)
        if self.speaker is not None:
            with self.timings.measure("speaker", seconds):
                embedding = self.speaker.embed(audio, rate)
        return Original(key, speaker, reference, transcript, embedding)

    def score(self, scores: ClipScores, original: Original, audio: np.ndarray, decoded: np.ndarray, rate: int) -> None:
        """Add every enabled metric of one reconstruction to `scores` (a value, or a reason in `missing`).

        Returns nothing; the decoded clip's speaker embedding is kept in `scores.embedding` for the floor.
        """
        seconds = decoded.shape[0] / rate
        if self.recognizer is not None and original.transcript is not None:
            with self.timings.measure("asr", seconds):
                hypothesis = self.recognizer.transcribe(decoded, rate)
            scores.transcript = hypothesis
            scores.values["dwer"] = word_error_rate(original.transcript, hypothesis)
            if original.reference.text is not None:
                scores.values["wer"] = word_error_rate(original.reference.text, hypothesis)
            else:
                scores.missing["wer"] = f"no reference text: {original.reference.why}"
        if self.speaker is not None and original.embedding is not None:
            with self.timings.measure("speaker", seconds):
                scores.embedding = self.speaker.embed(decoded, rate)
            scores.values["speaker_sim"] = cosine(original.embedding, scores.embedding)
        if self.dnsmos is not None:
            try:
                with self.timings.measure("dnsmos", seconds):
                    scores.values.update(self.dnsmos.score(decoded, rate))
            except MetricUnavailable as error:
                scores.missing.update(dict.fromkeys(METRIC_GROUPS["dnsmos"], str(error)))
        if self.mcd:
            try:
                with self.timings.measure("mcd", seconds):
                    scores.values["mcd"] = mel_cepstral_distortion(audio, decoded, rate)
            except MetricUnavailable as error:
                scores.missing["mcd"] = str(error)


def _check_mcd() -> bool:
    from pipeline.evaluate.optional import require

    require("pyworld", "mcd")
    require("pysptk", "mcd")
    return True


def speaker_floor(clips: list[ClipScores], originals: dict[str, Original]) -> float | None:
    """Mean cosine of each decoded clip to the originals of the *other* speakers (what a wrong speaker scores);
    None without embeddings or with a single speaker."""
    pairs = [
        cosine(clip.embedding, other.embedding)
        for clip in clips
        if clip.embedding is not None
        for other in originals.values()
        if other.embedding is not None and other.speaker != clip.speaker
    ]
    return float(np.mean(pairs)) if pairs else None
