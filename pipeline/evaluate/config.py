"""Typed configuration of the evaluation job and the metric catalogue (names, units, directions)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field


@dataclass(frozen=True)
class MetricSpec:
    """One per-clip quality metric: its MLflow name, unit, direction and a one-line meaning."""

    name: str
    unit: str
    higher_is_better: bool
    description: str


# The per-clip signal metrics, in report order. Their MLflow names are these keys (the mean over clips) plus
# `{name}.median`, `{name}.p10`, `{name}.p90` and `{name}.missing` (clips without a value).
SIGNAL_METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("mel_l1", "ln-mel", False, "mean |Δ ln mel| (80-band log-mel spectrogram L1, as HiFi-GAN's loss)"),
        MetricSpec("mr_stft", "", False, "multi-resolution STFT distance: mean |ΔS| + mean |Δ ln S| per resolution"),
        MetricSpec("si_sdr", "dB", True, "scale-invariant signal-to-distortion ratio (Le Roux et al. 2019)"),
        MetricSpec("stoi", "", True, "short-time objective intelligibility (Taal et al. 2011, pystoi)"),
        MetricSpec("pesq_wb", "MOS-LQO", True, "wideband PESQ (ITU-T P.862.2) at 16 kHz"),
        MetricSpec("f0_rmse_hz", "Hz", False, "F0 RMSE over frames voiced in both clips (YIN)"),
        MetricSpec("f0_rmse_cents", "cents", False, "F0 RMSE in cents over frames voiced in both clips"),
        MetricSpec("voicing_error", "", False, "fraction of frames whose voiced/unvoiced decision differs"),
    )
}


class EvaluateConfig(BaseModel):
    """What `evaluate_codec` measures and how. Every field but `experiment` is part of the evaluation set id, so
    runs are only compared with runs that scored the same clips the same way."""

    max_clips: int | None = Field(
        default=None, ge=1, description="evaluate only the first N hold-out segments (sorted by key); None: all"
    )
    max_seconds: float | None = Field(
        default=None, gt=0, description="score only the first N seconds of each segment (faster); None: whole segments"
    )
    n_mels: int = Field(default=80, ge=8, description="mel bands of the mel L1 (HiFi-GAN: 80)")
    mel_n_fft: int = Field(default=1024, ge=64, description="FFT size of the mel spectrogram")
    mel_hop: int = Field(default=256, ge=16, description="hop of the mel spectrogram in samples")
    stft_resolutions: tuple[tuple[int, int, int], ...] = Field(
        default=((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048)),
        description="(n_fft, hop, win_length) per STFT resolution of the MR-STFT distance",
    )
    f0_min_hz: float = Field(default=50.0, gt=0, description="lowest F0 searched (speech: ~50 Hz)")
    f0_max_hz: float = Field(default=500.0, gt=0, description="highest F0 searched (speech: ~500 Hz)")
    f0_hop_seconds: float = Field(default=0.01, gt=0, description="F0 frame hop (10 ms, the usual rate)")
    yin_threshold: float = Field(
        default=0.15, gt=0, lt=1, description="YIN aperiodicity threshold: a frame is voiced below it (paper: 0.1-0.15)"
    )
    silence_db: float = Field(
        default=-40.0, lt=0, description="frames quieter than this (dB re the clip's loudest frame) are unvoiced"
    )
    experiment: str = Field(default="evaluate", description="MLflow experiment of the evaluation runs")

    def fingerprint(self) -> dict[str, object]:
        """The fields that change metric values (everything but where results are logged)."""
        return self.model_dump(exclude={"experiment"})
