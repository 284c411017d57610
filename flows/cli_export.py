"""`speechtok export-llm`: a thin typer command over `pipeline.export` (registered in cli.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from flows.cli_tables import S3EndpointOption, SettingsOption, TableArgument, _fail, _settings
from flows.output import JsonOption, summary_output
from flows.progress import console, progress_bar
from pipeline.export.config import DocumentUnit, ExportFormat, ExportOrder
from storage.fs import StorageUnreachableError

if TYPE_CHECKING:
    from pipeline.export.job import ExportSummary

SPECIAL_HELP = "an id >= the vocabulary size and < 65536, or 'none' to leave it out"


def _special(name: str, value: str) -> int | None:
    if value.strip().lower() == "none":
        return None
    try:
        return int(value)
    except ValueError as error:
        raise _fail("invalid options", ValueError(f"--{name} {value!r}: expected {SPECIAL_HELP}")) from error


def export_llm_command(
    tokens: TableArgument,
    out: Annotated[
        str,
        typer.Argument(
            help="Export directory, local or s3://: {split}-{NNNNN}.bin with .idx (megatron) or .docs.npy (flat), "
            "index.parquet, meta.json."
        ),
    ],
    model_version: Annotated[
        str | None, typer.Option("--model-version", help="Model version to export; default: the only one in TOKENS.")
    ] = None,
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="megatron: Megatron-LM indexed dataset (.bin + .idx, one sequence per document); "
            "flat: nanoGPT-style raw .bin + .docs.npy document offsets.",
        ),
    ] = ExportFormat.megatron,
    document: Annotated[
        DocumentUnit, typer.Option(help="One document per book (continuous speech) or per utterance.")
    ] = DocumentUnit.book,
    order: Annotated[
        ExportOrder, typer.Option(help="book: by speaker and book, each book in source order (file, segment).")
    ] = ExportOrder.book,
    bos: Annotated[str, typer.Option(help=f"Id before each document: {SPECIAL_HELP}.")] = "16384",
    eos: Annotated[str, typer.Option(help=f"Id after each document: {SPECIAL_HELP}.")] = "16385",
    sep: Annotated[str, typer.Option(help=f"Id between utterances of a document: {SPECIAL_HELP}.")] = "16386",
    shard_tokens: Annotated[
        int, typer.Option(help="Tokens per output file pair (2 bytes each); shards end on document boundaries.", min=1)
    ] = 1 << 28,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    storage_root: Annotated[
        str | None, typer.Option(help="Storage root whose mlflow.db records the run (unless mlflow.tracking_uri).")
    ] = None,
    settings_file: SettingsOption = None,
    s3_endpoint: S3EndpointOption = None,
    json_output: JsonOption = False,
) -> None:
    """Export a token table for LLM training: little-endian uint16 token files per split (train = non-hold-out
    speakers, validation = hold-out speakers), books in source order, frames never split inside a document.

    index.parquet maps every token back to its utterance and second of source audio; meta.json lists the
    vocabulary, special ids, tokens per frame, frame rate, model, the token table manifest's digest and counts
    per split. Memory stays bounded: the order is planned from the metadata columns alone, then each shard is
    streamed from at most 16 decoded source row groups.
    Re-running resumes: finished shards whose plan is unchanged are kept, so a killed export ends with the
    same bytes. The run is recorded in MLflow (experiment `export`). Read it back with
    `pipeline.export.dataset.ExportWindows` or megatron.core's IndexedDataset."""
    from flows.summaries import export_summary
    from pipeline.export import ExportConfig, SpecialIds, plan_export
    from pipeline.export.tracking import tracked_export
    from storage.mlflow_io import use_tracking_uri

    settings = _settings(settings_file, {"storage_root": storage_root, "s3": {"endpoint_url": s3_endpoint}})
    try:
        specials = SpecialIds(bos=_special("bos", bos), eos=_special("eos", eos), sep=_special("sep", sep))
        config = ExportConfig(format=fmt, document=document, order=order, specials=specials, shard_tokens=shard_tokens)
        with console.status("planning: reading utterance metadata"):
            plan = plan_export(tokens, config, model_version, settings.s3)
    except (ValueError, LookupError, FileNotFoundError, StorageUnreachableError) as error:
        raise _fail("cannot export", error) from error
    use_tracking_uri(settings.tracking_uri())
    with summary_output(json_output) as output:
        with progress_bar(progress and output.progress) as bar:
            task = bar.add_task("export-llm (tokens)", total=plan.tokens)
            try:
                summary = tracked_export(plan, out, settings.s3, lambda n: bar.advance(task, n))
            except (ValueError, OSError) as error:
                raise _fail("export failed (re-run to resume)", error) from error
        output.show(export_summary(summary), lambda: print_export(summary, settings.tracking_uri()))


def print_export(summary: ExportSummary, tracking_uri: str) -> None:
    """Where the export is, what it holds per split, its size on disk and throughput."""
    from storage.mlflow_io import ui_command

    plan, config = summary.plan, summary.plan.config
    fmt, document, specials = config.format, config.document, config.specials
    table = Table(title=f"export-llm → {summary.out_url}", show_header=False)
    table.add_row("source", f"{plan.source.url} ({plan.source.resolved_model_uri})")
    table.add_row("layout", f"{fmt.value}, one document per {document.value}, specials {specials.used() or 'none'}")
    for name, split in summary.meta["splits"].items():
        table.add_row(
            name,
            f"{split['utterances']:,} utterances, {split['documents']:,} documents, {split['speakers']} speakers, "
            f"{split['content_tokens']:,} + {split['special_tokens']:,} special tokens, {len(split['shards'])} shards",
        )
    table.add_row("shards", f"{summary.shards_written} written, {summary.shards_reused} reused")
    per_token = max(1, summary.content_tokens)
    table.add_row(
        "on disk",
        f"{summary.bytes_on_disk:,} bytes: {summary.token_file_bytes / per_token:.3f} per audio token in the token "
        f"files, {summary.bytes_on_disk / per_token:.3f} with index.parquet and meta.json",
    )
    table.add_row("throughput", f"{summary.tokens_per_second:,.0f} tokens / s ({summary.wall_seconds:.1f} s)")
    table.add_row("MLflow run", f"{summary.run_id}  ({ui_command(tracking_uri)})")
    console.print(table)
