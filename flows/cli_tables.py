"""`speechtok query`, `stats` and `detokenize`: thin typer commands over `pipeline.query` (registered in cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from flows.output import JsonOption, summary_output
from flows.progress import console
from flows.settings import Settings, load_settings
from pipeline.query.views import describe
from storage.duckdb_io import ResultFormat
from storage.fs import StorageUnreachableError

if TYPE_CHECKING:
    import pyarrow as pa

    from pipeline.export.meta import ExportStatus
    from pipeline.query.stats import GroupStats, TableStats

# Results go to standard output (pipeable); messages and errors go to `console` (standard error).
results = Console(soft_wrap=False)

QUERY_HELP = (
    "Run DuckDB SQL over a token table (local or s3://) and print or save the result.\n\n"
    "The hive partitions model_version and split are columns; only model_version=*/split=*/*.parquet files are "
    "read (never _manifest.json). Nothing is downloaded: s3:// is read through s3fs.\n\n"
    + "\n\n".join(describe().splitlines())
)

SettingsOption = Annotated[
    Path | None, typer.Option("--settings", "-s", help="YAML settings file (see README, 'Configuration').")
]
S3EndpointOption = Annotated[
    str | None,
    typer.Option("--s3-endpoint", help="S3-compatible endpoint URL; default: AWS_ENDPOINT_URL or AWS's own."),
]
TableArgument = Annotated[
    str, typer.Argument(help="Token table root (the OUT of `speechtok tokenize`): a local path or s3://bucket/prefix.")
]
ModelVersionOption = Annotated[
    int | None, typer.Option("--model-version", help="Only rows of this model version (default: all).")
]
ALL_ROWS_NOTE = "use --format csv/parquet/json -o FILE for every row"


def _settings(settings_file: Path | None, overrides: dict[str, Any]) -> Settings:
    try:
        return load_settings(settings_file, overrides)
    except (FileNotFoundError, ValueError) as error:
        console.print(f"[red]invalid settings:[/red] {error}")
        raise typer.Exit(2) from error


def _fail(what: str, error: Exception) -> typer.Exit:
    """Print `error` (escaped: SQL and paths may hold [brackets]) and return the exit to raise (status 2)."""
    console.print(f"[red]{what}:[/red] {escape(str(error))}", highlight=False)
    return typer.Exit(2)


def query_command(
    sql: Annotated[str, typer.Argument(help="A DuckDB SELECT over the views below (quote it in the shell).")],
    tokens: Annotated[
        str | None,
        typer.Option("--tokens", help="Token table root, local or s3:// (default: STORAGE_ROOT/tokens)."),
    ] = None,
    fmt: Annotated[
        ResultFormat,
        typer.Option(
            "--format",
            "-f",
            help="table: a terminal table (first --max-rows rows); csv/json: text to -o FILE or standard output; "
            "parquet: needs -o FILE. With -o and no --format, the file's suffix picks it.",
        ),
    ] = ResultFormat.table,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write the result to this file (local or s3://).")
    ] = None,
    max_rows: Annotated[int, typer.Option(help="Rows shown by --format table.", min=1)] = 50,
    settings_file: SettingsOption = None,
    s3_endpoint: S3EndpointOption = None,
) -> None:
    """Run DuckDB SQL over a token table (the full help is QUERY_HELP, which lists the views and macros)."""
    from pipeline.query.table import QueryError, TokenTableNotFoundError, open_token_table, run_query
    from storage.duckdb_io import result_text, write_result
    from storage.outputs import open_file_target

    settings = _settings(settings_file, {"s3": {"endpoint_url": s3_endpoint}})
    if fmt is ResultFormat.table and output is not None:
        fmt = _format_of(output)
    if fmt is ResultFormat.parquet and output is None:
        raise _fail("invalid options", ValueError("--format parquet writes binary: add -o FILE.parquet"))
    url = tokens or f"{settings.storage_root.rstrip('/')}/tokens"
    try:
        with open_token_table(url, settings.s3) as table:
            result = run_query(table, sql)
    except QueryError as error:
        raise _fail("query failed", error) from error
    except (TokenTableNotFoundError, StorageUnreachableError) as error:
        raise _fail("no token table", error) from error
    if fmt is ResultFormat.table:
        print_result(result, max_rows)
    elif output is None:
        typer.echo(result_text(result, fmt), nl=False)
    else:
        target = open_file_target(output, settings.s3)
        write_result(result, fmt, target.location, target.name)
        console.print(f"wrote {result.num_rows} rows ({fmt.value}) to {target.url}")


def _format_of(output: str) -> ResultFormat:
    """The file format named by `output`'s suffix (for `-o FILE` without --format)."""
    suffix = output.rsplit(".", 1)[-1].lower() if "." in output.rsplit("/", 1)[-1] else ""
    if suffix not in ("csv", "parquet", "json"):
        error = ValueError(f"cannot tell the format of {output!r} from its suffix: add --format csv|parquet|json")
        raise _fail("invalid options", error)
    return ResultFormat(suffix)


def _cell(value: Any) -> str:
    """A short rendering of one value: long lists show their head and length."""
    if isinstance(value, list) and len(value) > 8:
        return f"[{', '.join(map(str, value[:6]))}, … ({len(value)} items)]"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def print_result(result: pa.Table, max_rows: int) -> None:
    # Headers stay readable when many columns meet a narrow terminal; rows then extend past its width.
    table = Table(*(Column(name, min_width=min(len(name), 24)) for name in result.column_names))
    for row in result.slice(0, max_rows).to_pylist():
        table.add_row(*(_cell(v) for v in row.values()))
    results.print(table, markup=False, highlight=False, crop=False)
    shown = min(max_rows, result.num_rows)
    note = f"{result.num_rows} rows" if shown == result.num_rows else f"{shown} of {result.num_rows} rows shown"
    console.print(note if shown == result.num_rows else f"{note}; {ALL_ROWS_NOTE}")


def stats_command(
    out: TableArgument,
    histogram: Annotated[
        str, typer.Option(help="Where to write the token-frequency histogram PNG (local or s3://).")
    ] = "token_histogram.png",
    model_version: ModelVersionOption = None,
    top: Annotated[int, typer.Option(help="Speakers and books listed (most audio first).", min=1)] = 20,
    export: Annotated[
        list[str] | None,
        typer.Option(
            "--export",
            help="An `export-llm` output (local or s3://) to list with its token counts and whether it is current "
            "(its source manifest digest equals this table's); repeatable.",
        ),
    ] = None,
    settings_file: SettingsOption = None,
    s3_endpoint: S3EndpointOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print a token table's audio hours, tokens, tokens/s and per split, speaker and book counts; write the
    token-frequency histogram (count per token value and rank-frequency) as a PNG. With --export, also a row per
    LLM export of the table."""
    from flows.summaries import stats_summary
    from pipeline.query.histogram import histogram_png
    from pipeline.query.stats import table_stats
    from pipeline.query.table import TokenTableNotFoundError, open_token_table
    from storage.outputs import open_file_target

    settings = _settings(settings_file, {"s3": {"endpoint_url": s3_endpoint}})
    with summary_output(json_output) as output:
        try:
            with open_token_table(out, settings.s3) as table:
                stats = table_stats(table, model_version)
        except (TokenTableNotFoundError, StorageUnreachableError, LookupError) as error:
            raise _fail("no token table", error) from error
        statuses = _export_statuses(out, export or [], settings)
        target = open_file_target(histogram, settings.s3)
        target.write_bytes(histogram_png(stats.histogram, title=stats.url))
        output.show(stats_summary(stats, top, statuses, target.url), lambda: print_stats(stats, top, statuses))
    console.print(f"histogram: {target.url}")


def print_stats(stats: TableStats, top: int, exports: list[ExportStatus]) -> None:
    """The summary, the per-group tables and (when any) the LLM exports, on standard output."""
    summary = Table(title=f"token table {stats.url}", show_header=False)
    if stats.model_version is not None:
        summary.add_row("model version", str(stats.model_version))
    summary.add_row("utterances", f"{stats.utterances:,}")
    summary.add_row("audio hours", f"{stats.hours:.3f}")
    summary.add_row("frames", f"{stats.frames:,}")
    summary.add_row("tokens", f"{stats.tokens:,}")
    summary.add_row("tokens / audio second", f"{stats.tokens_per_second:.2f}")
    summary.add_row("speakers / books", f"{stats.speakers} / {stats.books}")
    summary.add_row("distinct token values", f"{stats.histogram.distinct:,}")
    summary.add_row("unigram entropy", f"{stats.histogram.entropy_bits:.2f} bits/token")
    results.print(summary)
    results.print(_group_table("model version / split", stats.by_version_split, top, ("speakers", "books")))
    results.print(_group_table("speaker", stats.by_speaker, top, ("books",)))
    results.print(_group_table("book", stats.by_book, top, ("speakers",)))
    if exports:
        results.print(_export_table(exports))


def _export_statuses(table_url: str, exports: list[str], settings: Settings) -> list[ExportStatus]:
    """What each `export-llm` output holds and whether it is current with the table."""
    from pipeline.export.meta import export_status

    try:
        return [export_status(url, table_url, settings.s3) for url in exports]
    except (FileNotFoundError, ValueError, StorageUnreachableError) as error:
        raise _fail("cannot read export", error) from error


def _export_table(statuses: list[ExportStatus]) -> Table:
    """One row per `export-llm` output: layout, tokens per split, shards, current or stale."""
    table = Table("export", "layout", "model version", "train tokens", "validation tokens", "shards", "source")
    table.title = "LLM exports"
    for status in statuses:
        source = {True: "current", False: "stale (table changed since)", None: "version not in table"}[status.current]
        table.add_row(
            status.url,
            f"{status.layout} / {status.document}",
            status.model_version,
            f"{status.tokens.get('train', 0):,}",
            f"{status.tokens.get('validation', 0):,}",
            str(status.shards),
            source,
        )
    return table


def _group_table(title: str, groups: list[GroupStats], top: int, counts: tuple[str, ...]) -> Table:
    """Groups with the most audio first (at most `top` rows); `counts` names distinct-count columns to show."""
    table = Table("utterances", "hours", "tokens", *counts, title=f"by {title}")
    table.columns.insert(0, Column(title, no_wrap=True))  # keys (model_version=V/split=S) stay on one line
    for group in groups[:top]:
        cells = [f"{group.utterances:,}", f"{group.seconds / 3600:.3f}", f"{group.tokens:,}"]
        table.add_row(group.key, *cells, *(str(getattr(group, name)) for name in counts))
    if len(groups) > top:
        table.add_row(f"… {len(groups) - top} more", *[""] * (3 + len(counts)))
    return table


def detokenize_command(
    out: TableArgument,
    utterance: Annotated[
        str | None, typer.Option("--utterance", "-u", help="Decode this utterance_id; -o is the WAV file.")
    ] = None,
    sql: Annotated[
        str | None,
        typer.Option(
            "--sql",
            help="Decode every row this query selects (whole rows, e.g. \"SELECT * FROM tokens WHERE speaker = '12' "
            'LIMIT 5"); -o is a directory of {utterance_id}.wav files.',
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", help="WAV file (--utterance; default {ID}.wav) or directory (--sql; default detokenized)."
        ),
    ] = None,
    model_version: ModelVersionOption = None,
    max_rows: Annotated[int, typer.Option(help="Refuse selections larger than this.", min=1)] = 1000,
    storage_root: Annotated[
        str | None, typer.Option(help="Storage root whose mlflow.db is the registry (unless mlflow.tracking_uri).")
    ] = None,
    settings_file: SettingsOption = None,
    s3_endpoint: S3EndpointOption = None,
) -> None:
    """Decode token rows back to audio with the codec version recorded in each row (model_name, model_version),
    fetched from the MLflow registry. Each WAV (32-bit float) is at the row's native sample_rate and exactly
    num_samples long."""
    from pipeline.query.detokenize import RegistryCodecs, RowSelection, clip_name, detokenize, select_rows
    from pipeline.query.table import QueryError, TokenTableNotFoundError, open_token_table
    from storage.mlflow_io import use_tracking_uri

    settings = _settings(settings_file, {"storage_root": storage_root, "s3": {"endpoint_url": s3_endpoint}})
    try:
        selection = RowSelection(utterance_id=utterance, sql=sql, model_version=model_version, max_rows=max_rows)
    except ValueError as error:
        raise _fail("invalid options", error) from error
    destination = output or (clip_name(utterance) if utterance is not None else "detokenized")
    try:
        use_tracking_uri(settings.tracking_uri())
        with open_token_table(out, settings.s3) as table:
            rows = select_rows(table, selection)
            written = detokenize(rows, RegistryCodecs(), destination, settings.s3, single_file=bool(utterance))
    except (QueryError, LookupError, ValueError, TokenTableNotFoundError, StorageUnreachableError) as error:
        raise _fail("cannot detokenize", error) from error
    listing = Table("utterance_id", "model", "sample rate", "seconds", "file", title="detokenized")
    for clip in written:
        seconds = f"{clip.num_samples / clip.sample_rate:.3f}"
        listing.add_row(clip.utterance_id, clip.model_uri, str(clip.sample_rate), seconds, clip.url)
    results.print(listing)
