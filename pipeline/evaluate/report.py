"""The evaluation report: `report.md`, `per_clip.csv`, metric distributions and the median clip's spectrograms."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display (set here, where plots are made, not at package import)
import matplotlib.pyplot as plt
import numpy as np

from pipeline.evaluate.config import SIGNAL_METRICS
from pipeline.evaluate.run import MEDIAN_CLIP_METRIC, Evaluation
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
    plot_spectrograms(evaluation.median_clip, files.spectrogram)
    files.markdown.write_text(markdown(evaluation, model_label))
    return files


def write_per_clip(evaluation: Evaluation, path: Path) -> None:
    """One row per clip: key, speaker, duration, every metric (empty when missing) and the reasons."""
    names = list(SIGNAL_METRICS)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["key", "speaker", "duration_s", *names, "missing"])
        for clip in evaluation.clips:
            values = [f"{clip.values[n]:.6g}" if n in clip.values else "" for n in names]
            reasons = "; ".join(f"{n}: {why}" for n, why in clip.missing.items())
            writer.writerow([clip.key, clip.speaker, f"{clip.duration_s:.3f}", *values, reasons])


def plot_distributions(evaluation: Evaluation, path: Path) -> None:
    """One histogram per signal metric over the clips (a vertical line at the mean)."""
    names = list(SIGNAL_METRICS)
    columns = 4
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows))
    for axis, name in zip(axes.flat, names, strict=False):
        values = [clip.values[name] for clip in evaluation.clips if name in clip.values]
        spec = SIGNAL_METRICS[name]
        if values:
            axis.hist(values, bins=min(20, max(1, len(values))), color="tab:blue", alpha=0.8)
            axis.axvline(evaluation.summary[name], color="tab:red", linewidth=1)
        else:
            axis.text(0.5, 0.5, "no values", ha="center", va="center", transform=axis.transAxes)
        arrow = "↑" if spec.higher_is_better else "↓"
        axis.set_title(f"{name} {arrow}" + (f" [{spec.unit}]" if spec.unit else ""), fontsize=9)
    for axis in list(axes.flat)[len(names) :]:
        axis.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def markdown(evaluation: Evaluation, model_label: str) -> str:
    """The report text: what was evaluated, the aggregate table, token statistics and missing values."""
    summary, tokens = evaluation.summary, evaluation.tokens
    lines = [
        f"# Evaluation of {model_label}",
        "",
        f"- shards: `{evaluation.selection.shards_url}` (hold-out speakers only)",
        f"- evaluation set: `{evaluation.selection.set_id}` — {len(evaluation.clips)} clip(s), "
        f"{evaluation.audio_seconds:.1f} s of audio",
        f"- bitrate: {tokens.bitrate_bps:.1f} b/s nominal, {tokens.entropy_bitrate_bps:.1f} b/s at the measured "
        f"entropy ({tokens.tokens_per_second:g} tokens/s)",
        "",
        "| metric | better | mean | median | p10 | p90 | missing |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, spec in SIGNAL_METRICS.items():
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
