"""The evaluation report: `report.md`, `per_clip.csv`, metric distributions and the median clip's spectrograms."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display (set here, where plots are made, not at package import)
import matplotlib.pyplot as plt
import numpy as np
import torch

from pipeline.evaluate.config import CLIP_METRICS, METRIC_GROUPS, METRICS, SIGNAL_METRICS
from pipeline.evaluate.run import CANDIDATE, MEDIAN_CLIP_METRIC, TRIO_BASELINE, Evaluation
from training.reconstruction import plot_spectrograms

REPORT_FILE = "report.md"
PER_CLIP_FILE = "per_clip.csv"
DISTRIBUTIONS_FILE = "metric_distributions.png"
SPECTROGRAM_FILE = "median_clip_spectrogram.png"


@dataclass(frozen=True)
class ReportFiles:
    """Paths of the report's files (all inside one directory, logged as the run's `report/` artifacts)."""

    directory: Path
    markdown: Path
    per_clip: Path
    distributions: Path
    spectrogram: Path


def write_report(evaluation: Evaluation, model_label: str, directory: Path) -> ReportFiles:
    """Write the report of `evaluation` (of the model `model_label`, e.g. `models:/speechtok-codec/3`)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(
        directory,
        directory / REPORT_FILE,
        directory / PER_CLIP_FILE,
        directory / DISTRIBUTIONS_FILE,
        directory / SPECTROGRAM_FILE,
    )
    write_per_clip(evaluation, files.per_clip)
    plot_distributions(evaluation, files.distributions)
    if evaluation.trio_clip is None:
        plot_spectrograms(evaluation.median_clip, files.spectrogram)
    else:
        plot_trio(evaluation, files.spectrogram)
    files.markdown.write_text(markdown(evaluation, model_label))
    return files


def _clip_metric_names(evaluation: Evaluation) -> list[str]:
    """Per-clip metrics that ran in this evaluation (signal metrics always; optional ones when enabled)."""
    present = {name for system in evaluation.systems for clip in system.clips for name in (*clip.values, *clip.missing)}
    return [name for name in CLIP_METRICS if name in SIGNAL_METRICS or name in present]


def write_per_clip(evaluation: Evaluation, path: Path) -> None:
    """One row per clip and system: system, key, speaker, duration, every metric (empty when missing), the ASR
    transcript and the reasons for missing values."""
    names = _clip_metric_names(evaluation)
    systems = evaluation.systems or []
    rows = [(system.name, clip) for system in systems for clip in system.clips] or [
        (CANDIDATE, clip) for clip in evaluation.clips
    ]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "speaker", "duration_s", *names, "system", "transcript", "missing"])
        for system, clip in rows:
            values = [f"{clip.values[n]:.6g}" if n in clip.values else "" for n in names]
            reasons = "; ".join(f"{n}: {why}" for n, why in clip.missing.items())
            transcript = clip.transcript or ""
            writer.writerow([clip.key, clip.speaker, f"{clip.duration_s:.3f}", *values, system, transcript, reasons])


def plot_distributions(evaluation: Evaluation, path: Path) -> None:
    """One box plot per per-clip metric: its distribution over the clips for each system (the candidate first)."""
    names = _clip_metric_names(evaluation)
    systems = evaluation.systems
    columns = 4
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.8 * rows), squeeze=False)
    for axis, name in zip(axes.flat, names, strict=False):
        spec = CLIP_METRICS[name]
        data = [[clip.values[name] for clip in system.clips if name in clip.values] for system in systems] or [
            [clip.values[name] for clip in evaluation.clips if name in clip.values]
        ]
        labels = [system.name for system in systems] or [CANDIDATE]
        if any(data):
            axis.boxplot([values or [np.nan] for values in data], showmeans=True)
            axis.set_xticks(range(1, len(labels) + 1), labels, rotation=30, fontsize=7, ha="right")
        else:
            axis.text(0.5, 0.5, "no values", ha="center", va="center", transform=axis.transAxes)
        arrow = "↑" if spec.higher_is_better else "↓"
        axis.set_title(f"{name} {arrow}" + (f" [{spec.unit}]" if spec.unit else ""), fontsize=9)
    for axis in list(axes.flat)[len(names) :]:
        axis.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def plot_trio(evaluation: Evaluation, path: Path) -> None:
    """Spectrograms of the median clip: original, speechtok's reconstruction, Codec2 700C's."""
    item = evaluation.median_clip
    assert evaluation.trio_clip is not None
    panels = (("original", item.original), (CANDIDATE, item.decoded), (TRIO_BASELINE, evaluation.trio_clip))
    figure, axes = plt.subplots(3, 1, figsize=(8, 7), sharex=True)
    for axis, (title, audio) in zip(axes, panels, strict=True):
        spectrum = torch.stft(
            torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)),
            n_fft=512,
            hop_length=128,
            window=torch.hann_window(512),
            return_complex=True,
        ).abs()  # [257, frames]
        axis.imshow(
            20 * np.log10(spectrum.numpy() + 1e-5),
            origin="lower",
            aspect="auto",
            extent=(0, len(audio) / item.sample_rate, 0, item.sample_rate / 2000),
            vmin=-100,
            vmax=20,
        )
        axis.set_title(f"{item.key}: {title}")
        axis.set_ylabel("kHz")
    axes[-1].set_xlabel("seconds")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _runtime_of(name: str, runtimes: dict[str, float]) -> float | None:
    """Seconds per audio minute of `name`: its own timing, or its group's (ASR, speaker, DNSMOS, MCD, ABX)."""
    if name in runtimes:
        return runtimes[name]
    if name == "f0_rmse_cents" or name == "voicing_error":
        return runtimes.get("f0_rmse_hz")
    group = next((group for group, names in METRIC_GROUPS.items() if name in names), None)
    return runtimes.get(group) if group is not None else None


def comparison_table(evaluation: Evaluation) -> list[str]:
    """Markdown table: rows = systems with their bit rates, columns = metric means with direction, and a last row
    with each metric's compute time per audio minute (all systems together)."""
    names = [n for n in METRICS if any(n in system.summary for system in evaluation.systems)]
    header = ["system", "bit/s", *(f"{n} {'↑' if METRICS[n].higher_is_better else '↓'}" for n in names)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for system in evaluation.systems:
        cells = [f"{system.summary[n]:.3g}" if n in system.summary else "–" for n in names]
        lines.append(f"| {system.name} | {system.bitrate_bps:.0f} | " + " | ".join(cells) + " |")
    runtimes = [_runtime_of(n, evaluation.runtimes) for n in names]
    cells = ["–" if value is None else f"{value:.2g}" for value in runtimes]
    lines.append("| *runtime, s per audio min* | | " + " | ".join(cells) + " |")
    return lines


def markdown(evaluation: Evaluation, model_label: str) -> str:
    """The report text: what was evaluated, the aggregate table, token statistics and missing values."""
    summary, tokens = evaluation.summary, evaluation.tokens
    per_minute = evaluation.wall_seconds / max(evaluation.audio_seconds, 1e-9) * 60
    lines = [
        f"# Evaluation of {model_label}",
        "",
        f"- shards: `{evaluation.selection.shards_url}` (hold-out speakers only)",
        f"- evaluation set: `{evaluation.selection.set_id}` — {len(evaluation.clips)} clip(s), "
        f"{evaluation.audio_seconds:.1f} s of audio",
        f"- bitrate: {tokens.bitrate_bps:.1f} b/s nominal, {tokens.entropy_bitrate_bps:.1f} b/s at the measured "
        f"entropy ({tokens.tokens_per_second:g} tokens/s)",
        f"- wall time: {evaluation.wall_seconds:.1f} s ({per_minute:.1f} s per audio minute, every system and metric)",
        "",
    ]
    if evaluation.systems:
        lines += ["## Systems compared on the same clips", "", *comparison_table(evaluation), ""]
        lines += [
            "Means over clips (ABX and speaker_sim_floor: over the set). speaker_sim_floor is what another "
            "speaker's original scores: speaker_sim should sit well above it. Runtimes are compute seconds per "
            "minute of audio scored by the metric (each system's reconstructions and, for ASR and speaker, the "
            "originals count as audio scored).",
            "",
        ]
    if evaluation.skipped:
        lines += ["## Skipped metrics", "", *[f"- {group}: {why}" for group, why in evaluation.skipped.items()], ""]
    lines += [
        f"## {CANDIDATE} per metric",
        "",
        "| metric | better | mean | median | p10 | p90 | missing |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, spec in CLIP_METRICS.items():
        if f"{name}.missing" not in summary:
            continue
        suffixes = ("", ".median", ".p10", ".p90")
        cells = [f"{summary[f'{name}{suffix}']:.4g}" if name in summary else "–" for suffix in suffixes]
        better = "higher" if spec.higher_is_better else "lower"
        lines.append(f"| {name} | {better} | {' | '.join(cells)} | {int(summary[f'{name}.missing'])} |")
    lines += [
        "",
        "## Tokens",
        "",
        f"- entropy per group: mean {tokens.entropy_bits.mean():.3f} bits, min {tokens.entropy_bits.min():.3f} bits "
        f"(of at most {np.log2(tokens.cardinality.max()):.1f} bits)",
        f"- codes used per group: mean {tokens.usage.mean():.2%}; unused codes overall: "
        f"{tokens.unused_code_fraction:.2%}",
        "",
        f"## Median clip (by {MEDIAN_CLIP_METRIC}): `{evaluation.median_clip.key}`",
        "",
        f"![spectrograms]({SPECTROGRAM_FILE})",
        "",
        f"![distributions]({DISTRIBUTIONS_FILE})",
        "",
    ]
    missing = [(clip.key, name, why) for clip in evaluation.clips for name, why in clip.missing.items()]
    if missing:
        lines += ["## Missing values", "", *[f"- `{key}` {name}: {why}" for key, name, why in missing], ""]
    return "\n".join(lines)
