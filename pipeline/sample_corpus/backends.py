"""Choosing the speech backend: espeak-ng when installed (or asked for), else the built-in synthetic voice."""

from __future__ import annotations

import shutil
from typing import Protocol

import numpy as np

from pipeline.sample_corpus.config import Backend
from pipeline.sample_corpus.espeak import ESPEAK_PROGRAM, EspeakBackend
from pipeline.sample_corpus.phones import PhoneSpan
from pipeline.sample_corpus.synthetic import SyntheticBackend
from pipeline.sample_corpus.voices import SpeakerVoice


class BackendUnavailableError(RuntimeError):
    """The requested backend cannot run on this machine."""


class SpeechBackend(Protocol):
    """Text to one utterance of mono float audio at `sample_rate`."""

    name: str
    version: str
    sample_rate: int

    def synthesize(self, text: str, voice: SpeakerVoice, rng: np.random.Generator) -> np.ndarray:
        """`text` read by `voice` -> float32 `[samples]` in [-1, 1], may start/end with silence."""
        ...

    def phones(self, text: str, voice: SpeakerVoice) -> list[PhoneSpan] | None:
        """Phone timings of `synthesize(text, voice)` from its first sample, or None when the backend has none."""
        ...


def resolve_backend(choice: Backend, sample_rate: int) -> SpeechBackend:
    """The backend for `choice`; `auto` prefers espeak-ng (real phonetics) and falls back to synthetic."""
    program = shutil.which(ESPEAK_PROGRAM)
    if choice == "synthetic" or (choice == "auto" and program is None):
        return SyntheticBackend(sample_rate)
    if program is None:
        raise BackendUnavailableError(
            f"backend='espeak' needs the {ESPEAK_PROGRAM} program, which is not on PATH; install it "
            f"(apt-get install espeak-ng) or use backend='synthetic' (--backend synthetic)"
        )
    return EspeakBackend(sample_rate, program)
