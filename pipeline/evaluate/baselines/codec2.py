"""Codec2 (David Rowe's open narrowband speech codec, LGPL-2.1) through `pycodec2` (BSD, libcodec2 bundled in its
wheel): 700 bit/s (mode 700C, the rate closest to speechtok's ≈665 bit/s), 1200 and 2400 bit/s."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr

from pipeline.evaluate.optional import require

CODEC2_RATE = 8_000  # Codec2 is a narrowband codec: 8 kHz input and output
_INT16 = 32767
# pycodec2 names modes by their bit rate; 700 selects CODEC2_MODE_700C (pycodec2.pyx).
CODEC2_MODES = {"codec2_700c": 700, "codec2_1200": 1200, "codec2_2400": 2400}


@dataclass(frozen=True)
class Codec2Baseline:
    """One Codec2 mode as a system of the comparison table: `reconstruct` is encode → decode at the clip's rate."""

    name: str
    bitrate_bps: float

    @classmethod
    def of(cls, name: str) -> Codec2Baseline:
        if name not in CODEC2_MODES:
            raise ValueError(f"unknown Codec2 baseline {name!r}; choose from {sorted(CODEC2_MODES)}")
        return cls(name, float(CODEC2_MODES[name]))

    def reconstruct(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Encode and decode one clip: [L] float at `sample_rate` -> [L] float32 (8 kHz band, resampled back)."""
        pycodec2 = require("pycodec2", self.name)
        codec = pycodec2.Codec2(int(self.bitrate_bps))
        narrow = soxr.resample(np.asarray(audio, dtype=np.float64), sample_rate, CODEC2_RATE)
        frame = codec.samples_per_frame()
        frames = -(-narrow.shape[0] // frame)
        pcm = np.zeros(frames * frame, dtype=np.int16)  # zero-pad to whole frames
        pcm[: narrow.shape[0]] = np.clip(np.round(narrow * _INT16), -_INT16 - 1, _INT16)
        # The C API codes one frame per call (codec2_encode); bytes are joined then decoded frame by frame.
        decoded = np.concatenate([codec.decode(codec.encode(chunk)) for chunk in pcm.reshape(frames, frame)]).astype(
            np.float64
        )
        wide = soxr.resample(decoded[: narrow.shape[0]] / _INT16, CODEC2_RATE, sample_rate)
        out = np.zeros(audio.shape[0], dtype=np.float32)
        out[: min(wide.shape[0], out.shape[0])] = wide[: out.shape[0]]
        return out
