"""Signal metrics of one reconstructed clip against its reference: mel L1, MR-STFT, SI-SDR, STOI, wideband PESQ.

Every function takes two equal-length mono float arrays at one sample rate, `[L] × 2 -> float`. A metric that is
undefined for a clip (too short, silent, PESQ finding no utterance) raises `MetricUnavailable` with the reason, so
the job records that clip's value as missing instead of crashing or logging a fake number.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import torch
import torchaudio.functional as AF
from pesq import PesqError, pesq
from pystoi import stoi as pystoi_stoi
from torchaudio.transforms import MelSpectrogram

from training.losses import MultiResolutionSTFTLoss

# ITU-T P.862.2 (wideband PESQ) is defined at 16 kHz only.
PESQ_WB_RATE = 16_000
# HiFi-GAN's mel loss clamps magnitudes at 1e-5 before the log (Kong et al. 2020, meldataset.py).
_MEL_FLOOR = 1e-5
# Guards SI-SDR against 0/0 for silent or identical clips; identical clips then score ~100+ dB, not inf.
_SDR_EPS = 1e-10


class MetricUnavailable(ValueError):
    """A metric has no value for this clip; the message says why (it is recorded with the clip)."""


def _pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, est = np.asarray(reference, dtype=np.float64), np.asarray(estimate, dtype=np.float64)
    if ref.ndim != 1 or ref.shape != est.shape:
        raise ValueError(
            f"reference {ref.shape} and estimate {est.shape} must be mono [samples] of equal length; "
            "crop the decoded clip to the reference's num_samples"
        )
    return ref, est


@functools.lru_cache(maxsize=8)
def _mel_transform(sample_rate: int, n_fft: int, hop: int, n_mels: int) -> MelSpectrogram:
    # Magnitude (power 1) mel, as in HiFi-GAN; the band edges stop at Nyquist of the clip's own rate.
    return MelSpectrogram(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop, n_mels=n_mels, power=1.0)


def mel_l1(
    reference: np.ndarray, estimate: np.ndarray, sample_rate: int, n_fft: int = 1024, hop: int = 256, n_mels: int = 80
) -> float:
    """Mean |ln mel(ŷ) − ln mel(y)| over bands and frames (0 for identical clips): [L] × 2 -> float."""
    ref, est = _pair(reference, estimate)
    if ref.shape[0] <= n_fft // 2:
        raise MetricUnavailable(f"clip of {ref.shape[0]} samples is shorter than half the mel FFT ({n_fft})")
    mel = _mel_transform(sample_rate, n_fft, hop, n_mels)
    both = torch.from_numpy(np.stack([ref, est])).float()  # [2, L]
    spectra = torch.log(torch.clamp(mel(both), min=_MEL_FLOOR))  # [2, n_mels, frames]
    return float(torch.mean(torch.abs(spectra[1] - spectra[0])))


def mr_stft_distance(
    reference: np.ndarray, estimate: np.ndarray, resolutions: tuple[tuple[int, int, int], ...]
) -> float:
    """The training MR-STFT distance (`training.losses`, spec §7) as a metric: [L] × 2 -> float (0 if identical)."""
    ref, est = _pair(reference, estimate)
    longest = max(n_fft for n_fft, _, _ in resolutions)
    if ref.shape[0] <= longest // 2:
        raise MetricUnavailable(f"clip of {ref.shape[0]} samples is shorter than half the largest FFT ({longest})")
    loss = MultiResolutionSTFTLoss(resolutions)
    with torch.no_grad():
        value = loss(torch.from_numpy(est).float().view(1, 1, -1), torch.from_numpy(ref).float().view(1, 1, -1))
    return float(value)


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant SDR in dB (Le Roux et al. 2019, eq. 5, zero-mean signals): [L] × 2 -> float.

    ŝ = αs + e with α = ⟨ŝ, s⟩ / ‖s‖²; SI-SDR = 10 log10(‖αs‖² / ‖e‖²). White noise added at x dB SNR scores ≈ x.
    """
    ref, est = _pair(reference, estimate)
    ref, est = ref - ref.mean(), est - est.mean()
    energy = float(np.dot(ref, ref))
    if energy <= _SDR_EPS:
        raise MetricUnavailable("reference is silent (zero energy); SI-SDR is undefined")
    target = (np.dot(est, ref) / energy) * ref
    noise = est - target
    return float(10 * np.log10((np.dot(target, target) + _SDR_EPS) / (np.dot(noise, noise) + _SDR_EPS)))


def stoi(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """STOI in [0, 1] (pystoi; it resamples to 10 kHz and drops silent frames itself): [L] × 2 -> float."""
    ref, est = _pair(reference, estimate)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(pystoi_stoi(ref, est, sample_rate, extended=False))
    # pystoi returns 1e-5 with a warning when fewer than 30 non-silent frames (~0.4 s) remain.
    short = [w for w in caught if "Not enough STFT frames" in str(w.message)]
    if short:
        raise MetricUnavailable(f"STOI needs ~0.4 s of non-silent audio: {short[0].message}")
    return value


def pesq_wb(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float:
    """Wideband PESQ (MOS-LQO, ≈ 4.64 for identical clips), after resampling both to 16 kHz: [L] × 2 -> float."""
    ref, est = _pair(reference, estimate)
    if not np.any(ref):
        raise MetricUnavailable("PESQ is undefined on a silent reference (no utterance to compare)")
    if sample_rate != PESQ_WB_RATE:
        both = AF.resample(torch.from_numpy(np.stack([ref, est])).float(), sample_rate, PESQ_WB_RATE)
        ref, est = both[0].double().numpy(), both[1].double().numpy()
    try:
        return float(pesq(PESQ_WB_RATE, ref, est, "wb"))
    except PesqError as error:  # NoUtterancesError (silence), BufferTooShortError, ...
        raise MetricUnavailable(f"PESQ failed: {type(error).__name__}: {error}") from error
