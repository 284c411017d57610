"""Typed configuration of the evaluation job and the metric catalogue (names, units, directions)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field, field_validator


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


# Per-clip metrics of the optional `eval` extra (issue 13), grouped by the package that computes them.
QUALITY_METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("wer", "", False, "word error rate of Whisper tiny.en on the decoded clip vs the known text"),
        MetricSpec("dwer", "", False, "WER of the decoded clip's transcript vs the original clip's transcript"),
        MetricSpec("speaker_sim", "cos", True, "cosine of Resemblyzer speaker embeddings, original vs decoded"),
        MetricSpec("dnsmos_ovrl", "MOS", True, "DNSMOS P.835 overall quality (no reference)"),
        MetricSpec("dnsmos_sig", "MOS", True, "DNSMOS P.835 speech signal quality (no reference)"),
        MetricSpec("dnsmos_bak", "MOS", True, "DNSMOS P.835 background noise quality (no reference)"),
        MetricSpec("dnsmos_p808", "MOS", True, "DNSMOS P.808 overall MOS (no reference)"),
        MetricSpec("mcd", "dB", False, "mel-cepstral distortion (c1-c24, WORLD envelope), original voiced frames"),
    )
}
# Metrics of the whole evaluation set rather than of one clip.
SET_METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("speaker_sim_floor", "cos", False, "mean cosine of decoded clips to other speakers' originals"),
        MetricSpec("abx_within_encoder", "", False, "ABX error, any context, within speaker: stage-1 encoder output"),
        MetricSpec("abx_across_encoder", "", False, "ABX error, any context, across speakers: stage-1 encoder output"),
        MetricSpec("abx_within_codes", "", False, "ABX error, any context, within speaker: dequantized FSQ codes"),
        MetricSpec("abx_across_codes", "", False, "ABX error, any context, across speakers: dequantized FSQ codes"),
    )
}
CLIP_METRICS: dict[str, MetricSpec] = {**SIGNAL_METRICS, **QUALITY_METRICS}
# Every metric an evaluation can log under its own name, with its direction: what the promotion gate accepts.
METRICS: dict[str, MetricSpec] = {**CLIP_METRICS, **SET_METRICS}
# The optional metric groups (each switchable) and the metrics each produces.
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "asr": ("wer", "dwer"),
    "speaker": ("speaker_sim", "speaker_sim_floor"),
    "dnsmos": ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"),
    "mcd": ("mcd",),
    "abx": ("abx_within_encoder", "abx_across_encoder", "abx_within_codes", "abx_across_codes"),
}
# Reference codecs scored beside speechtok (pipeline.evaluate.baselines.codec2): name -> bit rate.
BASELINES: dict[str, int] = {"codec2_700c": 700, "codec2_1200": 1200, "codec2_2400": 2400}


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
    metrics: tuple[str, ...] = Field(
        default=tuple(METRIC_GROUPS),
        description=f"optional metric groups to run (of {', '.join(METRIC_GROUPS)}); the signal metrics always run",
    )
    baselines: tuple[str, ...] = Field(
        default=tuple(BASELINES), description=f"reference codecs scored on the same clips (of {', '.join(BASELINES)})"
    )
    compare_production: bool = Field(
        default=True, description="also score the current `production` codec (when there is one) on the same clips"
    )
    corpus: str | None = Field(
        default=None,
        description="root of the raw corpus the shards came from: its JSON `utterances` give WER texts and ABX phones",
    )
    experiment: str = Field(default="evaluate", description="MLflow experiment of the evaluation runs")

    @field_validator("metrics")
    @classmethod
    def _known_groups(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(METRIC_GROUPS))
        if unknown:
            raise ValueError(f"unknown metric groups {unknown}; choose from {list(METRIC_GROUPS)}")
        return value

    @field_validator("baselines")
    @classmethod
    def _known_baselines(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(BASELINES))
        if unknown:
            raise ValueError(f"unknown baselines {unknown}; choose from {list(BASELINES)}")
        return value

    def fingerprint(self) -> dict[str, object]:
        """The fields that change the candidate's metric values (not where results are logged or read from, nor
        which other systems are scored beside it)."""
        return self.model_dump(exclude={"experiment", "corpus", "baselines", "compare_production"})
