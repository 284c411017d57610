"""DuckDB over a `Location`: an offline connection, hive-partitioned Parquet scans and result files.

DuckDB's own S3 support lives in the `httpfs` extension, which it would download at run time; speechtok runs
offline, so extension auto-install/auto-load is switched off and `s3://` paths are served by the Location's
fsspec filesystem (s3fs) registered with the connection (DuckDB docs, "Using fsspec Filesystems").
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import duckdb
import pyarrow as pa

from storage.fs import Location, local_scratch, publish_file

# Never fetch extensions from the network (httpfs, ...): every reader speechtok needs is built in.
_OFFLINE_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def connect(location: Location | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection; for a remote `location` its fsspec filesystem serves `s3://` paths."""
    connection = duckdb.connect(config=dict(_OFFLINE_CONFIG))
    if location is not None and not location.is_local:
        connection.register_filesystem(location.fs)
    return connection


def sql_string(text: str) -> str:
    """`text` as a SQL string literal (single quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def hive_parquet_scan(location: Location, pattern: str, hive_types: dict[str, str]) -> str:
    """SQL for `read_parquet` over `location/pattern` with hive partitions as columns of `hive_types`.

    Declaring the partition types makes DuckDB agree with the copies stored inside the files (without it,
    `model_version=1` would be inferred as BIGINT while the file column is INTEGER).
    """
    types = ", ".join(f"{sql_string(name)}: {kind}" for name, kind in hive_types.items())
    return f"read_parquet({sql_string(location.url_of(pattern))}, hive_partitioning = true, hive_types = {{{types}}})"


class ResultFormat(StrEnum):
    """File formats a query result can be written in (`table` is the terminal rendering, not a file)."""

    table = "table"
    csv = "csv"
    parquet = "parquet"
    json = "json"


def _export(table: pa.Table, fmt: ResultFormat, path: Path) -> None:
    """Write `table` to the local `path` with DuckDB's writers (they handle list columns, unlike Arrow's CSV)."""
    connection = connect()
    try:
        relation = connection.from_arrow(table)
        target = sql_string(str(path))
        if fmt is ResultFormat.csv:
            relation.write_csv(str(path), header=True)
        elif fmt is ResultFormat.parquet:
            relation.write_parquet(str(path), compression="zstd")
        elif fmt is ResultFormat.json:
            connection.register("result", relation)
            # ARRAY true: one JSON array of row objects, readable with a plain json.load.
            connection.execute(f"COPY result TO {target} (FORMAT json, ARRAY true)")
        else:
            raise ValueError(f"format {fmt.value!r} is not a file format; use csv, parquet or json")
    finally:
        connection.close()


def result_text(table: pa.Table, fmt: ResultFormat) -> str:
    """`table` rendered as CSV or JSON text (for standard output)."""
    if fmt not in (ResultFormat.csv, ResultFormat.json):
        raise ValueError(f"format {fmt.value!r} cannot be printed; pass -o FILE to write it")
    with local_scratch() as scratch:
        path = scratch / f"result.{fmt.value}"
        _export(table, fmt, path)
        return path.read_text()


def write_result(table: pa.Table, fmt: ResultFormat, destination: Location, *parts: str) -> None:
    """Write `table` as `fmt` to `destination/parts` atomically (local or S3)."""
    with local_scratch() as scratch:
        path = scratch / f"result.{fmt.value}"
        _export(table, fmt, path)
        publish_file(path, destination, *parts)
