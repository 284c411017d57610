"""Speech from Debian's espeak-ng command-line synthesiser, resampled to the corpus rate."""

from __future__ import annotations

import io
import subprocess

import numpy as np
import soundfile
import soxr

from pipeline.sample_corpus.phones import PhoneSpan, align
from pipeline.sample_corpus.voices import SpeakerVoice

ESPEAK_PROGRAM = "espeak-ng"
_TIMEOUT_SECONDS = 60.0  # one sentence takes well under a second; a hang should fail loudly, not stall the corpus


class EspeakBackend:
    """Runs `espeak-ng --stdout` once per utterance.

    espeak-ng is a deterministic formant synthesiser: the same text, voice, pitch and speed give the same
    samples (checked for espeak-ng 1.51), so a corpus is byte-identical per seed on one espeak-ng version.
    Its native rate (22050 Hz for the built-in voices) is converted with soxr rather than by hand.
    """

    name = "espeak"

    def __init__(self, sample_rate: int, program: str = ESPEAK_PROGRAM) -> None:
        self.sample_rate = sample_rate
        self.program = program
        self.version = self._version()

    def _version(self) -> str:
        result = self._run(["--version"], what="--version")
        # "eSpeak NG text-to-speech: 1.51  Data at: ..." -> "espeak-ng 1.51"
        words = result.decode(errors="replace").split()
        version = next((word for word in words if word[:1].isdigit()), "unknown")
        return f"espeak-ng {version}"

    def _run(self, arguments: list[str], what: str) -> bytes:
        try:
            completed = subprocess.run(
                [self.program, *arguments], capture_output=True, check=False, timeout=_TIMEOUT_SECONDS
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise RuntimeError(
                f"{self.program} {what} failed: {error}; check the install (apt-get install espeak-ng) "
                f"or use backend='synthetic'"
            ) from error
        if completed.returncode != 0:
            raise RuntimeError(
                f"{self.program} {what} exited with {completed.returncode}: "
                f"{completed.stderr.decode(errors='replace').strip()}; check the voice exists "
                f"(espeak-ng --voices=en) or use backend='synthetic'"
            )
        return completed.stdout

    def synthesize(self, text: str, voice: SpeakerVoice, rng: np.random.Generator) -> np.ndarray:
        """`text` read by `voice` -> float32 `[samples]` at `sample_rate` (`rng` unused: espeak-ng is deterministic)."""
        arguments = ["-v", voice.espeak_voice, "-p", str(voice.espeak_pitch), "-s", str(voice.espeak_speed)]
        wav = self._run([*arguments, "--stdout", text], what=f"{' '.join(arguments)} {text!r}")
        samples, native_rate = soundfile.read(io.BytesIO(wav), dtype="float32", always_2d=True)
        mono = samples.mean(axis=1)  # [samples, channels] -> [samples]; espeak-ng writes one channel
        if native_rate != self.sample_rate:
            mono = soxr.resample(mono, native_rate, self.sample_rate, quality="HQ")
        return np.ascontiguousarray(mono, dtype=np.float32)

    def phones(self, text: str, voice: SpeakerVoice) -> list[PhoneSpan] | None:
        """Phone timings of `synthesize(text, voice)` in seconds from its first sample (libespeak-ng phoneme
        events, `phones.align`), or None when the library cannot be loaded (the corpus then has no phones)."""
        try:
            return align(text, voice.espeak_voice, voice.espeak_pitch, voice.espeak_speed).phones
        except OSError:
            return None
