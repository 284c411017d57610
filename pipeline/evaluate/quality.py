"""No-reference quality (DNSMOS P.835 + P.808, Microsoft's ONNX models shipped in the `speechmos` wheel) and
mel-cepstral distortion on voiced frames (WORLD spectral envelope via pyworld, mel-cepstrum via pysptk)."""

from __future__ import annotations

import numpy as np
import soxr

from pipeline.evaluate.metrics import MetricUnavailable
from pipeline.evaluate.optional import require

DNSMOS_RATE = 16_000  # the DNSMOS models' rate
DNSMOS_FIELDS = {"dnsmos_ovrl": "ovrl_mos", "dnsmos_sig": "sig_mos", "dnsmos_bak": "bak_mos", "dnsmos_p808": "p808_mos"}
MCD_ORDER = 24  # mel-cepstrum order c1..c24 (the usual MCD setting, Kubichek 1993 / Kominek et al. 2008)
MCD_FRAME_MS = 5.0
# MCD in dB: (10 / ln 10) · sqrt(2 · Σ_d (c_d − ĉ_d)²), c0 (energy) excluded.
_MCD_SCALE = 10.0 / np.log(10.0) * np.sqrt(2.0)


def _at(audio: np.ndarray, sample_rate: int, rate: int) -> np.ndarray:
    wav = np.asarray(audio, dtype=np.float64)
    return wav if sample_rate == rate else soxr.resample(wav, sample_rate, rate)


class Dnsmos:
    """DNSMOS (non-personalised) on CPU via onnxruntime: one clip -> OVRL, SIG, BAK and P.808 MOS."""

    def __init__(self) -> None:
        self.module = require("speechmos.dnsmos", "dnsmos")

    def score(self, audio: np.ndarray, sample_rate: int) -> dict[str, float]:
        """[L] at `sample_rate` -> {dnsmos_ovrl, dnsmos_sig, dnsmos_bak, dnsmos_p808} (MOS 1..5).

        Clips shorter than the model's 9 s window are looped to fill it by speechmos itself.
        """
        wav = np.clip(_at(audio, sample_rate, DNSMOS_RATE), -1.0, 1.0).astype(np.float32)
        if not np.any(wav):
            raise MetricUnavailable("DNSMOS of a silent clip is meaningless")
        result = self.module.run(wav, DNSMOS_RATE)
        return {name: float(result[field]) for name, field in DNSMOS_FIELDS.items()}


def mel_cepstral_distortion(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Mean MCD in dB over frames voiced in the reference (WORLD DIO+StoneMask F0 > 0): [L] × 2 -> float.

    The clips are time-aligned (a codec keeps timing), so frames are compared one to one, without DTW.
    """
    pyworld = require("pyworld", "mcd")
    pysptk = require("pysptk", "mcd")
    ref, est = np.ascontiguousarray(reference, np.float64), np.ascontiguousarray(estimate, np.float64)
    f0, times = pyworld.dio(ref, sample_rate, frame_period=MCD_FRAME_MS)
    f0 = pyworld.stonemask(ref, f0, times, sample_rate)
    voiced = f0 > 0
    if not np.any(voiced):
        raise MetricUnavailable("no voiced frame in the reference; MCD on voiced frames is undefined")
    alpha = pysptk.util.mcepalpha(sample_rate)
    cepstra = []
    for wav in (ref, est):
        envelope = pyworld.cheaptrick(wav, f0, times, sample_rate)  # [frames, n_fft // 2 + 1], the ref's F0
        cepstra.append(pysptk.sp2mc(envelope, order=MCD_ORDER, alpha=alpha)[voiced, 1:])  # [voiced, order]
    difference = cepstra[0] - cepstra[1]
    return float(np.mean(_MCD_SCALE * np.sqrt(np.sum(difference**2, axis=1))))
