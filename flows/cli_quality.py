"""`speechtok evaluate` and `promote`: thin typer commands over `pipeline.evaluate` / `pipeline.promote`
(registered in cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.table import Table

from flows.output import JsonOption, summary_output
from flows.prefect_server import flow_api
from flows.progress import console
from flows.settings import Settings, load_settings
from storage.fs import StorageUnreachableError

SettingsOption = Annotated[
    Path | None, typer.Option("--settings", "-s", help="YAML settings file (see README, 'Configuration').")
]
S3EndpointOption = Annotated[
    str | None,
    typer.Option("--s3-endpoint", help="S3-compatible endpoint URL; default: AWS_ENDPOINT_URL or AWS's own."),
]
StorageOption = Annotated[
    str | None, typer.Option(help="Storage root whose MLflow store (STORAGE_ROOT/mlflow.db) holds the registry.")
]
# Exit status of a gate that refuses the candidate (errors in the inputs exit 2, like the other commands).
GATE_FAILED = 1


def _settings(settings_file: Path | None, overrides: dict[str, Any]) -> Settings:
    try:
        return load_settings(settings_file, overrides)
    except (FileNotFoundError, ValueError) as error:
        console.print(f"[red]invalid settings:[/red] {error}")
        raise typer.Exit(2) from error


def evaluate_command(
    model: Annotated[
        str, typer.Argument(help="Codec model URI: models:/speechtok-codec@candidate or models:/speechtok-codec/N.")
    ],
    shards: Annotated[
        str,
        typer.Option(help="Output root of `speechtok shard` (local or s3://); its hold-out speakers are evaluated."),
    ],
    max_clips: Annotated[
        int | None, typer.Option(help="Evaluate only the first N hold-out segments by key (default: all).", min=1)
    ] = None,
    max_seconds: Annotated[
        float | None, typer.Option(help="Score only the first N seconds of each segment (default: whole).", min=0.1)
    ] = None,
    corpus: Annotated[
        str | None,
        typer.Option(help="Raw corpus the shards came from; its JSON `utterances` give WER texts and ABX phones."),
    ] = None,
    skip: Annotated[
        list[str] | None,
        typer.Option(
            help="Switch off a metric group or comparison (repeatable): asr, speaker, dnsmos, mcd, abx, "
            "baselines (the Codec2 rows), production (the production row)."
        ),
    ] = None,
    storage_root: StorageOption = None,
    settings_file: SettingsOption = None,
    s3_endpoint: S3EndpointOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run the Prefect flow `evaluate_model`: encode and decode every hold-out segment with the codec and measure
    mel L1, MR-STFT, SI-SDR, STOI, wideband PESQ, F0 RMSE and voicing error per clip, plus (with the `eval`
    extra) WER / dWER (Whisper tiny.en), speaker similarity (Resemblyzer), DNSMOS, MCD and ABX of the encoder
    features and codes, and token usage, entropy and bitrate. The same metrics are measured on the same clips for
    the `production` codec and Codec2 at 700 (700C), 1200 and 2400 bit/s. Logs an MLflow run (experiment
    `evaluate`) with a Markdown + PNG report (comparison table with each metric's runtime per audio minute), and
    tags the model version with the results (`speechtok.eval.*`), which `speechtok promote` compares."""
    from flows.evaluate import evaluate_model_flow
    from flows.summaries import evaluation_summary
    from pipeline.evaluate.config import METRIC_GROUPS

    skipped = set(skip or [])
    unknown = skipped - {*METRIC_GROUPS, "baselines", "production"}
    if unknown:
        console.print(
            f"[red]unknown --skip {sorted(unknown)}[/red]: use {', '.join(METRIC_GROUPS)}, baselines, production"
        )
        raise typer.Exit(2)
    evaluate: dict[str, Any] = {"max_clips": max_clips, "max_seconds": max_seconds, "corpus": corpus}
    if skipped:
        evaluate["metrics"] = [group for group in METRIC_GROUPS if group not in skipped]
    if "baselines" in skipped:
        evaluate["baselines"] = []
    if "production" in skipped:
        evaluate["compare_production"] = False
    settings = _settings(
        settings_file,
        {"storage_root": storage_root, "s3": {"endpoint_url": s3_endpoint}, "evaluate": evaluate},
    )
    with summary_output(json_output) as output, flow_api():
        try:
            summary = evaluate_model_flow(model, shards, settings.evaluate, settings, show_progress=not json_output)
        except (StorageUnreachableError, LookupError, FileNotFoundError, ValueError) as error:
            console.print(f"[red]cannot evaluate:[/red] {error}", highlight=False)
            raise typer.Exit(2) from error
        output.show(evaluation_summary(summary, settings.tracking_uri()), lambda: print_evaluation(summary, settings))


def print_evaluation(summary: Any, settings: Settings) -> None:
    from pipeline.evaluate.config import CLIP_METRICS, SET_METRICS
    from pipeline.evaluate.report import comparison_table
    from storage.mlflow_io import ui_command

    evaluation, metrics = summary.evaluation, summary.metrics
    table = Table("metric", "better", "mean", "median", "missing", title=f"evaluate {summary.version.model_uri}")
    for name, spec in CLIP_METRICS.items():
        if f"{name}.missing" not in metrics:
            continue
        mean = f"{metrics[name]:.4g}" if name in metrics else "–"
        median = f"{metrics[name + '.median']:.4g}" if name in metrics else "–"
        table.add_row(name, "↑" if spec.higher_is_better else "↓", mean, median, str(int(metrics[name + ".missing"])))
    tokens = evaluation.tokens
    for name, spec in SET_METRICS.items():
        if name in metrics:
            table.add_row(name, "↑" if spec.higher_is_better else "↓", f"{metrics[name]:.4g}", "", "")
    table.add_row("bitrate (b/s)", "", f"{tokens.bitrate_bps:.1f}", f"entropy {tokens.entropy_bitrate_bps:.1f}", "")
    table.add_row("token entropy (bits)", "", f"{tokens.entropy_bits.mean():.3f}", "", "")
    table.add_row("unused codes", "", f"{tokens.unused_code_fraction:.2%}", "", "")
    console.print(table)
    if evaluation.systems:
        console.print("\n".join(comparison_table(evaluation)), highlight=False)
    for group, why in evaluation.skipped.items():
        console.print(f"[yellow]skipped {group}[/yellow]: {why}", highlight=False)
    info = Table(show_header=False)
    info.add_row("clips", f"{len(evaluation.clips)} ({evaluation.audio_seconds:.1f} s of hold-out audio)")
    info.add_row("evaluation set", evaluation.selection.set_id)
    info.add_row("MLflow run", f"{summary.run_id} (report under artifacts/report/)")
    info.add_row("MLflow UI", ui_command(settings.tracking_uri()))
    console.print(info)


def _parse_tolerances(items: list[str]) -> dict[str, float]:
    tolerances = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            tolerances[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            console.print(f"[red]invalid --tolerance {item!r}[/red]: write METRIC=VALUE, e.g. --tolerance mel_l1=0.05")
            raise typer.Exit(2)
    return tolerances


def promote_command(
    candidate: Annotated[
        str | None,
        typer.Option(help="Version number (or models:/ URI) to promote; default: the version with alias `candidate`."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Move the alias even if the gate fails; needs --reason (recorded).")
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option(help="Why --force overrides the gate; stored in the version tag speechtok.promotion.reason."),
    ] = None,
    primary_metric: Annotated[
        str | None, typer.Option(help="Metric that must improve (default from settings: mel_l1).")
    ] = None,
    min_improvement: Annotated[
        float | None, typer.Option(help="How much the primary metric must improve, in its unit (default 0).", min=0)
    ] = None,
    tolerance: Annotated[
        list[str] | None,
        typer.Option(
            help="METRIC=VALUE: regression allowed for a gated metric (repeatable; adds to/overrides the settings)."
        ),
    ] = None,
    eval_set: Annotated[
        str | None,
        typer.Option(help="Compare evaluations on this evaluation set id (default: the candidate's latest)."),
    ] = None,
    storage_root: StorageOption = None,
    settings_file: SettingsOption = None,
    json_output: JsonOption = False,
) -> None:
    """Move the alias `production` of speechtok-codec to the candidate if the quality gate passes: the primary
    metric must be better than production's and no gated metric worse beyond its tolerance (settings `gate:`).
    With no production version the candidate is promoted. Both versions need an evaluation on the same hold-out
    set (`speechtok evaluate`). The decision, compared metrics and who promoted are recorded as version tags
    (`speechtok.promotion.*`). Exits 1 when the gate refuses the candidate (the alias is unchanged)."""
    from flows.summaries import promotion_summary
    from pipeline.promote.gate import GateConfig
    from pipeline.promote.promote import default_actor, promote

    settings = _settings(settings_file, {"storage_root": storage_root})
    updates: dict[str, Any] = {"primary_metric": primary_metric, "min_primary_improvement": min_improvement}
    gate_values = {**settings.gate.model_dump(), **{k: v for k, v in updates.items() if v is not None}}
    gate_values["tolerances"] = {**settings.gate.tolerances, **_parse_tolerances(tolerance or [])}
    try:
        gate = GateConfig(**gate_values)
    except ValidationError as error:
        console.print(f"[red]invalid gate:[/red] {error}", highlight=False)
        raise typer.Exit(2) from error
    from storage.mlflow_io import use_tracking_uri

    use_tracking_uri(settings.tracking_uri())
    with summary_output(json_output) as output:
        try:
            outcome = promote(
                candidate,
                gate,
                actor=default_actor("speechtok promote" + (" --force" if force else "")),
                force=force,
                force_reason=reason,
                eval_set=eval_set,
                experiment=settings.evaluate.experiment,
            )
        except (LookupError, ValueError) as error:
            console.print(f"[red]cannot promote:[/red] {error}", highlight=False)
            raise typer.Exit(2) from error
        output.show(promotion_summary(outcome), lambda: print_promotion(outcome))
    if not outcome.promoted and outcome.label != "unchanged":
        raise typer.Exit(GATE_FAILED)


def print_promotion(outcome: Any) -> None:
    """The side-by-side table of the compared metrics and the decision."""
    previous = outcome.previous
    production_label = f"production v{previous.version}" if previous is not None else "production (none)"
    table = Table(
        "metric",
        "better",
        production_label,
        f"candidate v{outcome.candidate.version}",
        "Δ (+ = better)",
        "tolerance",
        "result",
        title="quality gate",
    )
    for row in outcome.decision.comparisons:
        improvement = row.improvement
        name = f"{row.metric} (primary)" if row.primary else row.metric
        table.add_row(
            name,
            "↑" if row.higher_is_better else "↓",
            "–" if row.production is None else f"{row.production:.4g}",
            "–" if row.candidate is None else f"{row.candidate:.4g}",
            "–" if improvement is None else f"{improvement:+.4g}",
            "–" if row.tolerance is None else f"{row.tolerance:g}",
            ("[green]ok[/green] " if row.ok else "[red]fail[/red] ") + row.note,
        )
    console.print(table)
    colour = {"promoted": "green", "forced": "yellow", "unchanged": "cyan"}.get(outcome.label, "red")
    target = outcome.candidate.model_uri
    console.print(f"[{colour}]{outcome.label}[/{colour}] {target}: {outcome.reason}", highlight=False)
    if outcome.forced:
        console.print(f"gate said: {outcome.decision.reason}", highlight=False)
    console.print(f"recorded on {target} as speechtok.promotion.* tags (by {outcome.actor})", highlight=False)
