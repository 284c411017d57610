"""`speechtok` command line: thin typer wrappers that parse, build the typed settings and call a flow."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from flows.cli_export import export_llm_command
from flows.cli_quality import evaluate_command, promote_command
from flows.cli_server import server_app
from flows.cli_tables import QUERY_HELP, detokenize_command, query_command, stats_command
from flows.output import JsonOption, summary_output
from flows.prefect_server import flow_api
from flows.progress import console
from flows.ray_console import VerboseOption, configure_ray_console
from flows.settings import Settings, load_settings
from flows.summaries import build_summary, shard_summary, tokenize_summary, training_summary, verify_summary
from storage.fs import StorageUnreachableError

app = typer.Typer(
    name="speechtok",
    help=(
        "Turn a LibriLight-shaped audiobook corpus into compact, reversible discrete speech tokens.\n\n"
        "Stages: sample-corpus (make a small corpus) → shard (WebDataset tar shards + Parquet manifest) → "
        "train-encoder (stage 1) → train-codec (stage 2) → evaluate → promote → tokenize (Parquet token tables) → "
        "query / stats / detokenize; export-llm writes Megatron / nanoGPT token files for LLM training. "
        "`speechtok demo` runs sample-corpus to stats as the Prefect flow build_tokens. "
        "Settings come from --settings YAML, SPEECHTOK_* environment variables and flags (flags win); the standard "
        "variables configure the services: MLFLOW_TRACKING_URI, AWS_* (S3), RAY_ADDRESS (+ RAY_AUTH_MODE=token and "
        "RAY_AUTH_TOKEN for a cluster with token authentication), PREFECT_API_URL. The same commands run locally "
        "or on a cluster; only these settings differ (README, 'Configuration' and 'Cluster'). "
        "Flow commands record their runs in Prefect: `speechtok server start` keeps one local Prefect server for "
        "them instead of a temporary one per command (README, 'Start-up')."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

SettingsOption = Annotated[
    Path | None, typer.Option("--settings", "-s", help="YAML settings file (see README, 'Configuration').")
]
S3EndpointOption = Annotated[
    str | None,
    typer.Option("--s3-endpoint", help="S3-compatible endpoint URL; default: AWS_ENDPOINT_URL or AWS's own."),
]


def _settings(settings_file: Path | None, overrides: dict[str, Any]) -> Settings:
    try:
        return load_settings(settings_file, overrides)
    except (FileNotFoundError, ValueError) as error:
        console.print(f"[red]invalid settings:[/red] {error}")
        raise typer.Exit(2) from error


@app.command("sample-corpus")
def sample_corpus(
    out: Annotated[Path, typer.Argument(help="Directory to write {split}/{speaker}/{book}/{name}.flac+.json into.")],
    speakers: Annotated[int, typer.Option(help="Number of distinct speakers (voices).", min=1)] = 4,
    minutes: Annotated[float, typer.Option(help="Total minutes of audio across all speakers.", min=0.1)] = 4.0,
    seed: Annotated[int, typer.Option(help="Same seed, same bytes.")] = 0,
    backend: Annotated[
        str, typer.Option(help="auto: espeak-ng when installed, else the built-in synthetic speech generator.")
    ] = "auto",
    overwrite: Annotated[bool, typer.Option(help="Replace an existing OUT/{split}.")] = False,
) -> None:
    """Write a small corpus with LibriLight's layout and JSON fields (speech + matching voice_activity)."""
    from pipeline.sample_corpus import SampleCorpusConfig, generate_sample_corpus

    summary = generate_sample_corpus(
        out,
        SampleCorpusConfig(speakers=speakers, minutes=minutes, seed=seed, backend=backend),  # type: ignore[arg-type]  # pydantic validates
        progress=True,
        overwrite=overwrite,
    )
    console.print(
        f"wrote {summary.num_files} files, {summary.total_seconds / 60:.1f} min of audio from {speakers} speakers "
        f"({summary.backend}) to {out}"
    )


@app.command()
def shard(
    source: Annotated[str, typer.Argument(help="Corpus root: a local path or s3://bucket/prefix.")],
    destination: Annotated[str, typer.Argument(help="Output root for shards/, manifest/ (local or s3://).")],
    split: Annotated[
        list[str] | None, typer.Option("--split", help="Only these top-level splits (repeatable).")
    ] = None,
    max_seconds: Annotated[float | None, typer.Option(help="Longest segment in seconds (default 16).")] = None,
    target_shard_mb: Annotated[float | None, typer.Option(help="Target shard size in MiB (default 1024).")] = None,
    holdout_fraction: Annotated[float | None, typer.Option(help="Share of speakers held out (default 0.02).")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Shards/batches processed at once (default 2).")] = None,
    vad_fallback: Annotated[
        str | None, typer.Option(help="No voice_activity in a JSON: 'energy' (detect) or 'reject' (default energy).")
    ] = None,
    settings_file: SettingsOption = None,
    s3_endpoint: S3EndpointOption = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Inspect and write shards as Ray tasks on this cluster (HEAD:6379, ray://HEAD:10001, auto, or local "
            "for a new local instance) instead of this process's threads; same shards, byte for byte. Token "
            "authentication needs RAY_AUTH_MODE=token and RAY_AUTH_TOKEN."
        ),
    ] = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Run the Prefect flow `shard_corpus`: cut files at their voice activity into ≤ max-seconds segments,
    write `{split}-{index:06d}.tar` WebDataset shards (FLAC + JSON) and `manifest/*.parquet`.

    Every discovered audio file is either sharded or listed in manifest/rejections.parquet with a reason;
    the command fails only when the run itself fails. Re-running resumes: finished shards are kept."""
    from flows.shard import run_shard_corpus

    configure_ray_console(verbose)  # only matters with --ray-address

    settings = _settings(
        settings_file,
        {
            "s3": {"endpoint_url": s3_endpoint},
            "shard": {
                "splits": split or None,
                "max_seconds": max_seconds,
                "target_shard_bytes": int(target_shard_mb * 1024**2) if target_shard_mb else None,
                "holdout_fraction": holdout_fraction,
                "concurrency": concurrency,
                "vad_fallback": vad_fallback,
            },
        },
    )
    with summary_output(json_output) as output, flow_api():
        try:
            summary = run_shard_corpus(
                source,
                destination,
                settings.shard,
                settings.s3,
                show_progress=progress and output.progress,
                ray_address=ray_address,
            )
        except StorageUnreachableError as error:
            console.print(f"[red]storage error:[/red] {error}")
            raise typer.Exit(2) from error
        output.show(shard_summary(summary), lambda: print_shard_summary(summary))


def print_shard_summary(summary: Any) -> None:
    manifest = summary.manifest
    table = Table(title=f"shard_corpus → {summary.destination}", show_header=False)
    table.add_row("audio files discovered", str(manifest.files))
    table.add_row("files sharded", str(manifest.sharded_files))
    table.add_row("segments", str(manifest.segments))
    table.add_row("audio hours", f"{manifest.audio_hours:.3f}")
    table.add_row("shards", f"{manifest.shards} ({summary.shards_written} written, {summary.shards_reused} reused)")
    table.add_row("hold-out speakers", str(manifest.holdout_speakers))
    table.add_row("task runs", str(summary.task_runs))
    table.add_row("files rejected", str(manifest.rejected_files))
    for reason, count in manifest.rejections_by_reason.items():
        table.add_row(f"  {reason}", str(count))
    console.print(table)


PresetOption = Annotated[str, typer.Option("--config", help="Model preset: tiny (CPU tests) or paper.")]
WorkersOption = Annotated[int, typer.Option(help="Ray Train workers (one per GPU on a cluster).", min=1)]
GpusOption = Annotated[float, typer.Option(help="GPUs per worker; 0 trains on CPU with gloo.", min=0)]
StepsOption = Annotated[int | None, typer.Option(help="Optimiser steps (default from settings: 200).")]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        help="Ray cluster to run on (HEAD:6379, ray://HEAD:10001 or auto); default RAY_ADDRESS, else a local Ray. "
        "A cluster with token authentication also needs RAY_AUTH_MODE=token and RAY_AUTH_TOKEN."
    ),
]
RunNameOption = Annotated[
    str | None, typer.Option(help="Checkpoint/MLflow run name; default derived from the inputs, so re-runs resume.")
]
BatchOption = Annotated[int | None, typer.Option(help="Clips per worker per step (default 4).")]
SampleRateOption = Annotated[int | None, typer.Option(help="Model sample rate: 24000 (paper) or 16000.")]
StorageOption = Annotated[
    str | None,
    typer.Option(
        help="Storage root (local or s3://) for checkpoints and the default MLflow store; default "
        "SPEECHTOK_STORAGE_ROOT, else ./speechtok-data."
    ),
]


def _train_settings(
    settings_file: Path | None,
    storage_root: str | None,
    s3_endpoint: str | None,
    max_steps: int | None,
    batch_size: int | None,
    sample_rate: int | None,
) -> Settings:
    return _settings(
        settings_file,
        {
            "storage_root": storage_root,
            "s3": {"endpoint_url": s3_endpoint},
            "train": {"max_steps": max_steps, "batch_size": batch_size, "sample_rate": sample_rate},
        },
    )


@app.command("train-encoder")
def train_encoder_command(
    shards: Annotated[str, typer.Argument(help="Output root of `speechtok shard` (local or s3://).")],
    config: PresetOption = "tiny",
    workers: WorkersOption = 2,
    gpus_per_worker: GpusOption = 0.0,
    max_steps: StepsOption = None,
    batch_size: BatchOption = None,
    sample_rate: SampleRateOption = None,
    ray_address: RayAddressOption = None,
    run_name: RunNameOption = None,
    storage_root: StorageOption = None,
    settings_file: SettingsOption = None,
    s3_endpoint: S3EndpointOption = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Stage 1 on Ray Train (Prefect flow `train_encoder`): JEPA encoder with DAAM, masked latent prediction
    against an EMA target. Checkpoints every N steps; re-running the same command resumes. Registers the
    encoder in MLflow as `speechtok-encoder` with alias `candidate`."""
    configure_ray_console(verbose)
    from flows.train import train_encoder
    from training.launch import Scaling

    settings = _train_settings(settings_file, storage_root, s3_endpoint, max_steps, batch_size, sample_rate)
    with summary_output(json_output) as output, flow_api():
        result = train_encoder(shards, config, settings, Scaling(workers, gpus_per_worker, ray_address), run_name)
        output.show(training_summary(result, settings.tracking_uri()), lambda: _print_training(result, settings))


@app.command("train-codec")
def train_codec_command(
    shards: Annotated[str, typer.Argument(help="Output root of `speechtok shard` (local or s3://).")],
    encoder: Annotated[str, typer.Option(help="Stage-1 encoder model URI.")] = "models:/speechtok-encoder@candidate",
    config: PresetOption = "tiny",
    workers: WorkersOption = 2,
    gpus_per_worker: GpusOption = 0.0,
    max_steps: StepsOption = None,
    batch_size: BatchOption = None,
    sample_rate: SampleRateOption = None,
    ray_address: RayAddressOption = None,
    run_name: RunNameOption = None,
    storage_root: StorageOption = None,
    settings_file: SettingsOption = None,
    s3_endpoint: S3EndpointOption = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Stage 2 on Ray Train (Prefect flow `train_codec`): frozen encoder → FSQ → HiFi-GAN with MPD+MSD,
    MR-STFT and feature matching. Logs held-out reconstructions and registers the whole codec as
    `speechtok-codec` with alias `candidate`."""
    configure_ray_console(verbose)
    from flows.train import train_codec
    from training.launch import Scaling

    settings = _train_settings(settings_file, storage_root, s3_endpoint, max_steps, batch_size, sample_rate)
    scaling = Scaling(workers, gpus_per_worker, ray_address)
    with summary_output(json_output) as output, flow_api():
        result = train_codec(shards, encoder, config, settings, scaling, run_name)
        output.show(training_summary(result, settings.tracking_uri()), lambda: _print_training(result, settings))


def _print_training(result: Any, settings: Settings) -> None:
    from storage.mlflow_io import ui_command

    table = Table(title="training finished", show_header=False)
    table.add_row("registered", f"{result.registered.model_uri} (alias candidate)")
    table.add_row("steps", str(result.steps))
    for key in ("loss", "stft", "target_std_mean"):
        if key in result.metrics:
            table.add_row(f"final {key}", f"{result.metrics[key]:.4f}")
    table.add_row("MLflow run", result.run_id)
    table.add_row("MLflow UI", ui_command(settings.tracking_uri()))
    console.print(table)


@app.command("tokenize")
def tokenize_command(
    shards: Annotated[str, typer.Argument(help="Output root of `speechtok shard` (local or s3://).")],
    out: Annotated[str, typer.Argument(help="Token table root; files go to OUT/model_version=V/split=S/.")],
    model: Annotated[
        str | None,
        typer.Option(
            help="Codec model URI; default SPEECHTOK_TOKENIZE__MODEL_URI, else models:/speechtok-codec@production. "
            "An alias is resolved once; the version is recorded."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Codec actors (one per GPU on a cluster); default 1.", min=1)
    ] = None,
    gpus_per_worker: Annotated[
        float | None, typer.Option(help="GPUs per actor; fractions share a GPU (default 0).", min=0)
    ] = None,
    batch_seconds: Annotated[
        float | None,
        typer.Option(help="Audio seconds per actor batch (does not change the tokens; default 120).", min=0.1),
    ] = None,
    chunks_per_forward: Annotated[
        int | None,
        typer.Option(
            help="Chunks per encoder forward; default: the codec's encoding policy (1 on CPU, 8 on GPU). Another "
            "value is another encoding policy, recorded in every token file.",
            min=1,
        ),
    ] = None,
    ray_address: RayAddressOption = None,
    storage_root: StorageOption = None,
    settings_file: SettingsOption = None,
    s3_endpoint: S3EndpointOption = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Run the Prefect flow `tokenize_corpus`: decode every shard (all splits, hold-out included) on Ray Data,
    encode it with the codec's actor pool and write one Parquet token file per shard plus `_manifest.json`.

    Every option is also a setting (`tokenize:` in --settings, SPEECHTOK_TOKENIZE__WORKERS=4, ...), so a Prefect
    deployment configures its runs through the worker's environment. Re-running skips shards whose file is
    complete; damaged shards are reported and the others finish (the exit status stays 0, as for `shard`;
    `verify-tokens` exits 1 while a gap remains). Without the alias `production` it stops and says how to promote a
    codec (`speechtok promote`) or which --model to pass."""
    configure_ray_console(verbose)
    from flows.tokenize import tokenize_corpus

    settings = _settings(
        settings_file,
        {
            "storage_root": storage_root,
            "s3": {"endpoint_url": s3_endpoint},
            "tokenize": {
                "model_uri": model,
                "ray_address": ray_address,
                "workers": workers,
                "gpus_per_worker": gpus_per_worker,
                "batch_seconds": batch_seconds,
                "chunks_per_forward": chunks_per_forward,
            },
        },
    )
    with summary_output(json_output) as output, flow_api():
        try:
            summary = tokenize_corpus(
                shards, out, config=settings.tokenize, settings=settings, show_progress=output.progress
            )
        except (StorageUnreachableError, LookupError, FileNotFoundError) as error:
            console.print(f"[red]cannot tokenize:[/red] {error}")
            raise typer.Exit(2) from error
        output.show(tokenize_summary(summary), lambda: print_tokenize_summary(summary))
    if summary.rejected:  # like `shard`: rejected inputs are recorded results, not a failed run
        console.print(
            f"[yellow]{len(summary.rejected)} shard(s) rejected[/yellow] (listed in the summary and _manifest.json); "
            "`speechtok verify-tokens` reports the gap until they are re-sharded."
        )


def print_tokenize_summary(summary: Any) -> None:
    table = Table(title=f"tokenize_corpus → {summary.table_url}", show_header=False)
    table.add_row("model", f"{summary.model.uri} → {summary.model.resolved_uri}")
    table.add_row("shards", f"{summary.shards} ({summary.shards_written} written, {summary.shards_reused} reused)")
    table.add_row("segments", str(summary.segments))
    table.add_row("audio hours", f"{summary.audio_hours:.3f}")
    table.add_row("tokens", f"{summary.tokens:,} ({summary.tokens_per_audio_second:.2f} per audio s)")
    table.add_row("throughput", f"{summary.throughput:.1f} audio s / wall s ({summary.wall_seconds:.1f} s)")
    table.add_row("rejected shards", str(len(summary.rejected)))
    for rejection in summary.rejected:
        table.add_row(f"  {rejection.shard}", rejection.reason)
    table.add_row("MLflow run", summary.run_id)
    console.print(table)


@app.command("verify-tokens")
def verify_tokens_command(
    out: Annotated[str, typer.Argument(help="Token table root (the OUT of `speechtok tokenize`).")],
    shards: Annotated[str, typer.Option(help="Output root of `speechtok shard` whose manifest is the reference.")],
    model_version: Annotated[
        str | None, typer.Option(help="Model version to check; default: the only one under OUT.")
    ] = None,
    settings_file: SettingsOption = None,
    s3_endpoint: S3EndpointOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check that a token table has exactly one row per manifest segment and files matching `_manifest.json`;
    exits 1 on any gap. Warns (exit 0) when the files were encoded under more than one encoding policy."""
    from pipeline.tokenize import verify_tokens

    settings = _settings(settings_file, {"s3": {"endpoint_url": s3_endpoint}})
    with summary_output(json_output) as output:
        try:
            report = verify_tokens(out, shards, model_version, settings.s3)
        except (ValueError, FileNotFoundError, StorageUnreachableError) as error:
            console.print(f"[red]cannot verify:[/red] {error}")
            raise typer.Exit(2) from error
        output.show(verify_summary(report), lambda: print_verify_report(report))
    if not report.ok:
        raise typer.Exit(1)


def print_verify_report(report: Any) -> None:
    table = Table(title=f"verify-tokens {report.table_url}", show_header=False)
    table.add_row("files", str(report.files))
    table.add_row("rows / manifest segments", f"{report.rows} / {report.expected_rows}")
    for line in report.problems():
        table.add_row("[red]gap[/red]", line)
    if len(report.encoding_policies) == 1:
        policy = report.encoding_policies[0]
        table.add_row("encoding policy", ", ".join(f"{k}={v}" for k, v in sorted(policy.items())))
    for line in report.warnings():
        table.add_row("[yellow]warning[/yellow]", line)
    for rejected in report.rejected_shards:
        table.add_row("rejected shard", rejected)
    table.add_row("result", "[green]ok[/green]" if report.ok else "[red]gaps found[/red]")
    console.print(table)


# Token tables: SQL, statistics and decoding back to audio (flows/cli_tables.py).
app.command("query", help=QUERY_HELP)(query_command)
app.command("stats")(stats_command)
app.command("detokenize")(detokenize_command)
app.command("export-llm")(export_llm_command)

# Codec quality: evaluation on the hold-out speakers and the gated promotion (flows/cli_quality.py).
app.command("evaluate")(evaluate_command)
app.command("promote")(promote_command)

# One local Prefect server for the flow commands (flows/cli_server.py, flows/prefect_server.py).
app.add_typer(server_app, name="server")


# The paper's reported sizes (Ioannides et al. 2025; spec §10), shown beside ours by `model-info`.
PAPER_PARAMETERS = {
    "encoder": "118.5 M (target)",
    "predictor": "3.2 M",
    "stage1_total": "240.2 M",
    "generator": "69.2-69.3 M",
    "stage2_total": "309.5 M",
    "tokenizer_inference": "191.0 M (incl. the unused predictor)",
}


@app.command("model-info")
def model_info(
    config: PresetOption = "paper",
    sample_rate: Annotated[int, typer.Option(help="24000 (paper) or 16000.")] = 24_000,
) -> None:
    """Print a preset's token contract and parameter counts per component (built on the meta device)."""
    from training.configs import preset
    from training.params import parameter_report

    model = preset(config, sample_rate)
    report = parameter_report(model)
    groups = -(-model.encoder.code_dim // model.fsq.group_size)
    console.print(
        f"{config} @ {sample_rate} Hz: hop {model.encoder.hop}, {model.encoder.frame_rate} frames/s, {groups} "
        f"tokens/frame, {model.encoder.frame_rate * groups} tokens/s"
    )
    table = Table("component", "parameters", "paper")
    for name, count in report.items():
        table.add_row(name, f"{count:,}", PAPER_PARAMETERS.get(name, "") if config == "paper" else "")
    console.print(table)


@app.command("demo")
def demo(
    workdir: Annotated[str, typer.Option(help="Where the demo writes corpus, shards, tokens and MLflow.")] = (
        "speechtok-data"
    ),
    speakers: Annotated[int, typer.Option(help="Speakers in the generated corpus (one is held out).", min=2)] = 4,
    minutes: Annotated[float, typer.Option(help="Minutes of generated audio.", min=0.5)] = 4.0,
    encoder_steps: Annotated[int, typer.Option(help="Stage-1 optimiser steps.", min=1)] = 100,
    codec_steps: Annotated[int, typer.Option(help="Stage-2 optimiser steps.", min=1)] = 60,
    workers: Annotated[int, typer.Option(help="Ray Train workers (CPU).", min=1)] = 2,
    ray_address: RayAddressOption = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """The main job on embedded defaults, as the Prefect flow `build_tokens`: sample corpus → shards →
    stage 1 (tiny) → stage 2 (tiny) → evaluate → promote → tokenize → stats (about 10 minutes on 2 CPU cores).

    Re-running reuses the corpus, shards, checkpoints and token files already there."""
    configure_ray_console(verbose)
    from flows.build_tokens import BuildTokensConfig, build_tokens

    config = BuildTokensConfig(
        workdir=workdir,
        speakers=speakers,
        minutes=minutes,
        encoder_steps=encoder_steps,
        codec_steps=codec_steps,
        train_workers=workers,
        ray_address=ray_address,
    )
    with summary_output(json_output) as output, flow_api():
        result = build_tokens(config)
        output.show(build_summary(result), lambda: print_build_summary(result))


def print_build_summary(result: Any) -> None:
    """Where everything is after `build_tokens`, and what to run next."""
    from storage.mlflow_io import ui_command

    config, tokens, stats, promotion = result.config, result.tokens, result.stats, result.promotion
    table = Table(title="build_tokens: where everything is", show_header=False)
    table.add_row("corpus", config.corpus)
    table.add_row("shards", f"{config.shards}/shards ({result.shards.manifest.segments} segments)")
    table.add_row("encoder", f"{result.encoder.registered.model_uri} ({result.encoder.steps} steps)")
    table.add_row("codec", f"{result.codec.registered.model_uri} ({result.codec.steps} steps)")
    table.add_row("promotion", f"{promotion.label}: {promotion.reason}")
    table.add_row("token table", f"{tokens.table_url} ({tokens.model.resolved_uri})")
    table.add_row(
        "tokens",
        f"{stats.tokens:,} for {stats.hours * 60:.1f} audio min ({stats.tokens_per_second:.1f}/s), "
        f"{stats.utterances} utterances, {stats.speakers} speakers",
    )
    table.add_row("token histogram", result.histogram)
    table.add_row("MLflow UI", ui_command(result.tracking_uri))
    table.add_row("Prefect UI", "prefect server start  (flow run build_tokens " + result.flow_run_id + ")")
    table.add_row(
        "try",
        f'speechtok query "SELECT speaker, count(*) AS n, sum(n_tokens) AS tokens FROM utterances GROUP BY 1" '
        f"--tokens {config.tokens}",
    )
    console.print(table)


def ray_authentication_hint(error: BaseException) -> str | None:
    """What to do when a Ray cluster refused this process's token (None: `error` is something else)."""
    ray = sys.modules.get("ray")
    if ray is None or not isinstance(error, ray.exceptions.AuthenticationError):
        return None
    return (
        f"Ray refused the connection: {error.message}. The cluster uses token authentication: export "
        "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN=<the cluster's token> (or RAY_AUTH_TOKEN_PATH=<file>), as on its nodes."
    )


def main() -> None:
    # speechtok runs offline by default: Prefect's usage telemetry would only log failed network calls.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted; re-run the same command to resume")
        sys.exit(130)
    except Exception as error:
        hint = ray_authentication_hint(error)
        if hint is None:
            raise
        console.print(f"[red]cannot join the Ray cluster:[/red] {hint}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":  # `python -m flows.cli ...` is the same as the `speechtok` script
    main()
