"""F0 tracks with YIN and their comparison (F0 RMSE over frames voiced in both clips, voicing error).

Why YIN (de Cheveigné & Kawahara 2002): it is the standard time-domain estimator with an explicit aperiodicity
measure (the cumulative-mean-normalised difference, CMND), so it gives a voicing decision as well as F0, and it
fits in a few vectorised numpy lines. torchaudio's `detect_pitch_frequency` has no voicing decision and a
median-smoothed, integer-lag output; pyworld and librosa's pYIN would add heavy or unbuildable dependencies.
Both clips of a pair go through the same estimator, so its residual bias cancels in the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.evaluate.metrics import MetricUnavailable

_TINY = 1e-12


@dataclass(frozen=True)
class F0Track:
    """Per-frame F0: `f0_hz` [N] (NaN where unvoiced), `voiced` [N] bool, one frame every `hop_seconds`."""

    f0_hz: np.ndarray
    voiced: np.ndarray
    hop_seconds: float


@dataclass(frozen=True)
class F0Comparison:
    """F0 error of an estimate against a reference; the RMSEs are None when no frame is voiced in both."""

    rmse_hz: float | None
    rmse_cents: float | None
    voicing_error: float
    frames_compared: int


def _frames(audio: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """Centred frames of a zero-padded clip: [L] -> [N, frame_length] with N = L // hop + 1."""
    count = audio.shape[0] // hop + 1
    before = frame_length // 2
    after = max(0, (count - 1) * hop + frame_length - before - audio.shape[0])
    padded = np.pad(audio, (before, after))
    return np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop][:count]


def cumulative_mean_normalized_difference(frames: np.ndarray, window: int, max_lag: int) -> np.ndarray:
    """YIN steps 2-3: d(τ) = Σ_{j<W} (x_j − x_{j+τ})², then d'(τ) = d(τ) τ / Σ_{k≤τ} d(k), d'(0) = 1.

    frames [N, W + max_lag] -> d' [N, max_lag + 1]. d(τ) = E(0) + E(τ) − 2 r(τ) with E(τ) the energy of
    x[τ : τ + W] (a cumulative sum) and r the window's cross-correlation with the frame (one FFT per frame).
    """
    length = frames.shape[1]
    n_fft = 1 << int(np.ceil(np.log2(length + window)))
    spectrum = np.fft.rfft(frames, n_fft) * np.conj(np.fft.rfft(frames[:, :window], n_fft))
    correlation = np.fft.irfft(spectrum, n_fft)[:, : max_lag + 1]  # r(τ) = Σ_j x_j x_{j+τ}, [N, max_lag + 1]
    energy = np.concatenate([np.zeros((frames.shape[0], 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lags = np.arange(max_lag + 1)
    shifted = energy[:, lags + window] - energy[:, lags]  # E(τ), [N, max_lag + 1]
    difference = np.maximum(shifted[:, :1] + shifted - 2 * correlation, 0.0)
    running = np.cumsum(difference[:, 1:], axis=1)  # Σ_{k=1..τ} d(k), [N, max_lag]
    normalized = np.ones_like(difference)
    normalized[:, 1:] = difference[:, 1:] * lags[1:] / np.maximum(running, _TINY)
    return normalized


def estimate_f0(
    audio: np.ndarray,
    sample_rate: int,
    *,
    f0_min_hz: float = 50.0,
    f0_max_hz: float = 500.0,
    hop_seconds: float = 0.01,
    threshold: float = 0.15,
    silence_db: float = -40.0,
) -> F0Track:
    """YIN F0 of a mono clip: [L] -> F0Track([L // hop + 1] frames).

    A frame is voiced when its CMND has a trough below `threshold` in the lag range (YIN step 4, the first such
    trough, refined by parabolic interpolation, step 5) and it is no quieter than `silence_db` below the loudest
    frame (unvoiced decisions on near-silence are noise).
    """
    signal = np.asarray(audio, dtype=np.float64)
    if signal.ndim != 1 or signal.size == 0:
        raise ValueError(f"audio has shape {signal.shape}; pass a non-empty mono clip [samples]")
    if not 0 < f0_min_hz < f0_max_hz < sample_rate / 4:
        raise ValueError(f"F0 range {f0_min_hz}-{f0_max_hz} Hz must be increasing and below {sample_rate / 4} Hz")
    min_lag = max(2, int(np.floor(sample_rate / f0_max_hz)))
    max_lag = int(np.ceil(sample_rate / f0_min_hz)) + 1  # one extra lag so the interpolation has a right neighbour
    window = max_lag  # the integration window spans the longest period (YIN §IV)
    hop = max(1, round(hop_seconds * sample_rate))
    frames = _frames(signal, window + max_lag, hop)  # [N, W + max_lag]
    cmnd = cumulative_mean_normalized_difference(frames, window, max_lag)  # [N, max_lag + 1]

    inner = cmnd[:, min_lag:max_lag]  # lags min_lag .. max_lag - 1, [N, K]
    left, right = cmnd[:, min_lag - 1 : max_lag - 1], cmnd[:, min_lag + 1 : max_lag + 1]
    troughs = (inner <= left) & (inner < right) & (inner < threshold)
    periodic = troughs.any(axis=1)
    first = np.where(periodic, troughs.argmax(axis=1), inner.argmin(axis=1))  # index into `inner`, [N]
    rows = np.arange(inner.shape[0])
    a, b, c = left[rows, first], inner[rows, first], right[rows, first]
    curvature = a - 2 * b + c
    shift = np.where(np.abs(curvature) > _TINY, 0.5 * (a - c) / np.where(curvature == 0, 1, curvature), 0.0)
    period = min_lag + first + np.clip(shift, -1.0, 1.0)

    loudness = 10 * np.log10(np.mean(frames[:, :window] ** 2, axis=1) + _TINY)
    voiced = periodic & (loudness > loudness.max() + silence_db)
    f0 = np.where(voiced, sample_rate / period, np.nan)
    return F0Track(f0_hz=f0, voiced=voiced, hop_seconds=hop / sample_rate)


def compare_f0(reference: F0Track, estimate: F0Track) -> F0Comparison:
    """RMSE (Hz and cents) over frames voiced in both, and the share of frames whose voicing differs."""
    frames = min(reference.voiced.shape[0], estimate.voiced.shape[0])
    ref_voiced, est_voiced = reference.voiced[:frames], estimate.voiced[:frames]
    both = ref_voiced & est_voiced
    voicing_error = float(np.mean(ref_voiced != est_voiced)) if frames else 0.0
    if not both.any():
        return F0Comparison(None, None, voicing_error, 0)
    ref_f0, est_f0 = reference.f0_hz[:frames][both], estimate.f0_hz[:frames][both]
    rmse_hz = float(np.sqrt(np.mean((est_f0 - ref_f0) ** 2)))
    rmse_cents = float(np.sqrt(np.mean((1200 * np.log2(est_f0 / ref_f0)) ** 2)))
    return F0Comparison(rmse_hz, rmse_cents, voicing_error, int(both.sum()))


def require_voiced(comparison: F0Comparison) -> tuple[float, float]:
    """(rmse_hz, rmse_cents), or MetricUnavailable when no frame is voiced in both clips."""
    if comparison.rmse_hz is None or comparison.rmse_cents is None:
        raise MetricUnavailable("no frame is voiced in both the reference and the decoded clip")
    return comparison.rmse_hz, comparison.rmse_cents
