"""Evaluation measures on known signals: identical clips score perfectly, noise at a known SNR gives that SI-SDR,
YIN finds a synthetic tone's pitch and a known shift, token statistics match hand-counted arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.evaluate.clip import aggregate, score_clip
from pipeline.evaluate.config import SIGNAL_METRICS, EvaluateConfig
from pipeline.evaluate.metrics import MetricUnavailable, mel_l1, mr_stft_distance, pesq_wb, si_sdr, stoi
from pipeline.evaluate.pitch import compare_f0, estimate_f0
from pipeline.evaluate.token_stats import token_statistics
from pipeline.sample_corpus.synthetic import SyntheticBackend
from pipeline.sample_corpus.voices import speaker_voice

RATE = 16_000
TEXT = "the quick brown fox jumps over the lazy dog, then it rests beside the river for a while"


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """About 4 s of the sample corpus's synthetic speech at 16 kHz, at a speech level (peak 0.5)."""
    rng = np.random.default_rng(0)
    return 0.5 * SyntheticBackend(RATE).synthesize(TEXT, speaker_voice("s0", 0, rng), rng).astype(np.float64)


def harmonic_tone(f0: float, seconds: float = 1.5, rate: int = RATE) -> np.ndarray:
    """Five harmonics with 1/k amplitudes: a voiced, speech-like pitch signal."""
    t = np.arange(int(seconds * rate)) / rate
    return 0.3 * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))


def white_noise_at_snr(clean: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(size=clean.shape)
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return clean + noise


def test_identical_audio_scores_perfectly(speech: np.ndarray) -> None:
    assert mel_l1(speech, speech, RATE) == 0.0
    assert mr_stft_distance(speech, speech, EvaluateConfig().stft_resolutions) == 0.0
    assert si_sdr(speech, speech) > 90.0
    assert stoi(speech, speech, RATE) == pytest.approx(1.0, abs=1e-6)
    assert pesq_wb(speech, speech, RATE) == pytest.approx(4.64, abs=0.01)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_si_sdr_of_white_noise_is_its_snr(speech: np.ndarray, snr_db: float) -> None:
    assert si_sdr(speech, white_noise_at_snr(speech, snr_db)) == pytest.approx(snr_db, abs=0.5)


def test_si_sdr_ignores_scale(speech: np.ndarray) -> None:
    noisy = white_noise_at_snr(speech, 10.0)
    assert si_sdr(speech, 0.3 * noisy) == pytest.approx(si_sdr(speech, noisy), abs=1e-9)


def test_metrics_get_worse_with_noise(speech: np.ndarray) -> None:
    light, heavy = white_noise_at_snr(speech, 20.0), white_noise_at_snr(speech, 0.0)
    assert 0 < mel_l1(speech, light, RATE) < mel_l1(speech, heavy, RATE)
    assert 0 < mr_stft_distance(speech, light, ((512, 128, 512),)) < mr_stft_distance(speech, heavy, ((512, 128, 512),))
    assert stoi(speech, heavy, RATE) < stoi(speech, light, RATE) < 1.0
    assert pesq_wb(speech, heavy, RATE) < pesq_wb(speech, light, RATE) < 4.64


def test_pesq_resamples_other_rates(speech: np.ndarray) -> None:
    import torch
    import torchaudio.functional as AF

    at_24k = AF.resample(torch.from_numpy(speech).float(), RATE, 24_000).double().numpy()
    assert pesq_wb(at_24k, at_24k, 24_000) == pytest.approx(4.64, abs=0.01)


def test_undefined_metrics_raise_metric_unavailable() -> None:
    silence = np.zeros(RATE)
    with pytest.raises(MetricUnavailable, match="PESQ"):
        pesq_wb(silence, silence, RATE)
    with pytest.raises(MetricUnavailable, match="silent"):
        si_sdr(silence, silence)
    short = harmonic_tone(150.0, seconds=0.2)
    with pytest.raises(MetricUnavailable, match="STOI"):
        stoi(short, short, RATE)


def test_mismatched_lengths_are_refused(speech: np.ndarray) -> None:
    with pytest.raises(ValueError, match="equal length"):
        si_sdr(speech, speech[:-1])


@pytest.mark.parametrize("f0", [90.0, 150.0, 240.0])
def test_yin_finds_the_pitch_of_a_harmonic_tone(f0: float) -> None:
    track = estimate_f0(harmonic_tone(f0), RATE)
    assert track.voiced.mean() > 0.95
    assert np.nanmax(np.abs(track.f0_hz - f0)) < 0.01 * f0


def test_yin_calls_silence_and_noise_unvoiced() -> None:
    assert not estimate_f0(np.zeros(RATE), RATE).voiced.any()
    noise = np.random.default_rng(1).normal(scale=0.1, size=RATE)
    assert estimate_f0(noise, RATE).voiced.mean() < 0.05


def test_f0_rmse_is_zero_for_identical_and_the_shift_for_a_shifted_tone() -> None:
    reference = estimate_f0(harmonic_tone(150.0), RATE)
    same = compare_f0(reference, estimate_f0(harmonic_tone(150.0), RATE))
    assert same.rmse_hz == 0.0 and same.rmse_cents == 0.0 and same.voicing_error == 0.0
    semitone = 150.0 * 2 ** (1 / 12)  # +100 cents
    shifted = compare_f0(reference, estimate_f0(harmonic_tone(semitone), RATE))
    assert shifted.rmse_cents == pytest.approx(100.0, abs=2.0)
    assert shifted.rmse_hz == pytest.approx(semitone - 150.0, abs=0.3)
    assert shifted.voicing_error < 0.02


def test_voicing_error_counts_frames_that_lose_their_voice() -> None:
    tone = harmonic_tone(150.0, seconds=2.0)
    half_silent = tone.copy()
    half_silent[RATE:] = 0.0  # the second second is silent
    comparison = compare_f0(estimate_f0(tone, RATE), estimate_f0(half_silent, RATE))
    assert comparison.voicing_error == pytest.approx(0.5, abs=0.03)
    assert comparison.rmse_hz is not None and comparison.rmse_hz < 1.0


def test_score_clip_records_every_metric_or_why_it_is_missing(speech: np.ndarray) -> None:
    config = EvaluateConfig()
    scores = score_clip(speech, speech, RATE, config, key="a")
    assert set(scores.values) == set(SIGNAL_METRICS) and not scores.missing
    assert scores.values["f0_rmse_hz"] == 0.0 and scores.values["voicing_error"] == 0.0
    silent = score_clip(np.zeros(RATE), np.zeros(RATE), RATE, config, key="b")
    assert {"pesq_wb", "si_sdr", "f0_rmse_hz", "f0_rmse_cents"} <= set(silent.missing)
    assert set(silent.values) | set(silent.missing) == set(SIGNAL_METRICS)
    summary = aggregate([scores, silent])
    assert summary["pesq_wb"] == pytest.approx(4.64, abs=0.01) and summary["pesq_wb.missing"] == 1.0
    assert summary["mel_l1.missing"] == 0.0 and summary["mel_l1.median"] == pytest.approx(summary["mel_l1"])


def test_entropy_of_uniform_usage_is_log2_k() -> None:
    cardinality = [16, 16, 4]
    frames = 64
    tokens = np.stack(
        [np.arange(frames) % 16, (np.arange(frames) * 5) % 16, np.arange(frames) % 4], axis=1
    )  # every code of every group used equally often
    stats = token_statistics(tokens, cardinality, frame_rate=2.5)
    np.testing.assert_allclose(stats.entropy_bits, [4.0, 4.0, 2.0])
    np.testing.assert_array_equal(stats.used, [16, 16, 4])
    assert stats.unused_code_fraction == 0.0
    assert stats.bitrate_bps == pytest.approx(2.5 * (4 + 4 + 2))
    assert stats.entropy_bitrate_bps == pytest.approx(stats.bitrate_bps)
    assert stats.tokens_per_second == 7.5


def test_token_statistics_of_skewed_usage_over_clips() -> None:
    # Group 0 uses one code only (0 bits); group 1 uses two codes 3:1 (H = 0.811 bits) out of 8.
    clips = [np.array([[5, 1], [5, 1]]), np.array([[5, 1], [5, 7]])]
    stats = token_statistics(clips, [8, 8], frame_rate=2.5)
    expected = -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25))
    np.testing.assert_allclose(stats.entropy_bits, [0.0, expected])
    np.testing.assert_allclose(stats.usage, [1 / 8, 2 / 8])
    assert stats.unused_code_fraction == pytest.approx(1 - 3 / 16)
    metrics = stats.as_metrics()
    assert metrics["tokens.group_01.entropy_bits"] == pytest.approx(expected)
    assert metrics["tokens.frames"] == 4


def test_token_statistics_refuse_out_of_range_tokens() -> None:
    with pytest.raises(ValueError, match="group 1"):
        token_statistics(np.array([[0, 4]]), [4, 4], frame_rate=2.5)
