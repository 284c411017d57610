"""Speaker identity: d-vectors of Resemblyzer's GE2E speaker encoder (its `pretrained.pt` ships in the wheel,
Apache-2.0) and their cosine similarity."""

from __future__ import annotations

import numpy as np
import soxr

from pipeline.evaluate.optional import require

ENCODER_RATE = 16_000  # Resemblyzer's sampling rate (hparams.sampling_rate)


class SpeakerEncoder:
    """Resemblyzer's VoiceEncoder on CPU, loaded once."""

    def __init__(self) -> None:
        resemblyzer = require("resemblyzer", "speaker")
        self.encoder = resemblyzer.VoiceEncoder(device="cpu", verbose=False)

    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """L2-normalised utterance embedding: [L] at `sample_rate` -> [256]."""
        wav = np.asarray(audio, dtype=np.float32)
        if sample_rate != ENCODER_RATE:
            wav = soxr.resample(wav, sample_rate, ENCODER_RATE).astype(np.float32)
        return np.asarray(self.encoder.embed_utterance(wav), dtype=np.float64)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings [D] × 2 -> float in [-1, 1]."""
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))
