"""All signal metrics of one clip pair, with the reason for each value that could not be computed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pipeline.evaluate.config import CLIP_METRICS, SIGNAL_METRICS, EvaluateConfig
from pipeline.evaluate.metrics import MetricUnavailable, mel_l1, mr_stft_distance, pesq_wb, si_sdr, stoi
from pipeline.evaluate.pitch import compare_f0, estimate_f0, require_voiced


@dataclass
class ClipScores:
    """Metrics of one clip: `values` by metric name (see `SIGNAL_METRICS`), `missing` maps a name to why it has
    no value (e.g. PESQ on a silent clip)."""

    key: str
    speaker: str
    duration_s: float
    values: dict[str, float] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    transcript: str | None = None  # the ASR transcript of the decoded clip (issue 13), when ASR ran
    embedding: np.ndarray | None = None  # its speaker embedding [256], for the speaker-similarity floor


def score_clip(
    reference: np.ndarray,
    decoded: np.ndarray,
    sample_rate: int,
    config: EvaluateConfig,
    *,
    key: str = "",
    speaker: str = "",
    timings: dict[str, float] | None = None,
) -> ClipScores:
    """Every metric of `SIGNAL_METRICS` for one pair at the clip's own rate: [L] × 2 -> ClipScores.

    `timings`, when given, accumulates each metric's compute seconds under its first name.
    """
    scores = ClipScores(key=key, speaker=speaker, duration_s=reference.shape[0] / sample_rate)
    spent = timings if timings is not None else {}

    def record(names: tuple[str, ...], compute: Callable[[], float | tuple[float, ...]]) -> None:
        started = time.perf_counter()
        try:
            result = compute()
        except MetricUnavailable as error:
            scores.missing.update(dict.fromkeys(names, str(error)))
            return
        finally:
            spent[names[0]] = spent.get(names[0], 0.0) + time.perf_counter() - started
        results = result if isinstance(result, tuple) else (result,)
        scores.values.update(zip(names, (float(v) for v in results), strict=True))

    mel_options = (config.mel_n_fft, config.mel_hop, config.n_mels)
    record(("mel_l1",), lambda: mel_l1(reference, decoded, sample_rate, *mel_options))
    record(("mr_stft",), lambda: mr_stft_distance(reference, decoded, config.stft_resolutions))
    record(("si_sdr",), lambda: si_sdr(reference, decoded))
    record(("stoi",), lambda: stoi(reference, decoded, sample_rate))
    record(("pesq_wb",), lambda: pesq_wb(reference, decoded, sample_rate))
    pitch_options = {
        "f0_min_hz": config.f0_min_hz,
        "f0_max_hz": config.f0_max_hz,
        "hop_seconds": config.f0_hop_seconds,
        "threshold": config.yin_threshold,
        "silence_db": config.silence_db,
    }
    started = time.perf_counter()
    comparison = compare_f0(
        estimate_f0(reference, sample_rate, **pitch_options), estimate_f0(decoded, sample_rate, **pitch_options)
    )
    spent["f0_rmse_hz"] = spent.get("f0_rmse_hz", 0.0) + time.perf_counter() - started
    scores.values["voicing_error"] = comparison.voicing_error
    record(("f0_rmse_hz", "f0_rmse_cents"), lambda: require_voiced(comparison))
    assert set(scores.values) | set(scores.missing) == set(SIGNAL_METRICS), "a metric was neither scored nor missing"
    return scores


def aggregate(clips: list[ClipScores]) -> dict[str, float]:
    """Per metric over clips with a value: mean (under the metric's own name), `.median`, `.p10`, `.p90`, and
    `.missing` (clips without a value). A metric missing on every clip has only `.missing`; an optional metric
    that did not run (switched off or its package missing) has nothing."""
    summary: dict[str, float] = {}
    measured = {name for clip in clips for name in (*clip.values, *clip.missing)}
    for name in (name for name in CLIP_METRICS if name in SIGNAL_METRICS or name in measured):
        values = np.asarray([clip.values[name] for clip in clips if name in clip.values], dtype=np.float64)
        summary[f"{name}.missing"] = float(len(clips) - values.size)
        if values.size:
            summary[name] = float(values.mean())
            summary[f"{name}.median"] = float(np.median(values))
            summary[f"{name}.p10"], summary[f"{name}.p90"] = (float(v) for v in np.percentile(values, [10, 90]))
    return summary
