"""Open a token table (local or `s3://`) as a DuckDB connection with the speechtok views, and run SQL on it."""

from __future__ import annotations

import os
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from pipeline.query import views
from storage.duckdb_io import connect, hive_parquet_scan
from storage.fs import Location, check_reachable, open_location
from storage.parquet_io import list_parquet_files
from storage.settings import S3Settings

# Only the token files: `_manifest.json` (and anything else beside them) must not be read as data.
TOKEN_FILES = "model_version=*/split=*/*.parquet"
# The types the files store for the partition columns (TOKENS_SCHEMA), so both copies agree.
PARTITION_TYPES = {"model_version": "INTEGER", "split": "VARCHAR"}


class TokenTableNotFoundError(FileNotFoundError):
    """No token files under the given location."""


class QueryError(ValueError):
    """DuckDB rejected a query (syntax, unknown column, type error, ...)."""


@dataclass
class TokenTable:
    """A token table opened for SQL: `connection` has the views and macros of `pipeline.query.views`."""

    url: str
    location: Location
    files: int
    connection: duckdb.DuckDBPyConnection

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> TokenTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_token_table(url: str | os.PathLike[str], s3: S3Settings | None = None) -> TokenTable:
    """Connect to the token table at `url` (the OUT of `speechtok tokenize`).

    Raises `TokenTableNotFoundError` naming the URL when it holds no `model_version=*/split=*/*.parquet` file,
    `StorageUnreachableError` when an S3 location cannot be reached, and `QueryError` when DuckDB cannot read
    the files' schema.
    """
    location = open_location(url, s3)
    check_reachable(location, must_exist=False)
    files = [f for f in list_parquet_files(location) if _is_token_file(f)]
    if not files:
        raise TokenTableNotFoundError(
            f"no token files ({TOKEN_FILES}) under {location.url}; pass the OUT directory of "
            "`speechtok tokenize` (the folder that holds model_version=V/)"
        )
    connection = connect(location)
    try:
        views.install(connection, hive_parquet_scan(location, TOKEN_FILES, PARTITION_TYPES))
    except duckdb.Error as error:  # e.g. a damaged file: DuckDB reads the first file's schema here
        connection.close()
        raise QueryError(
            f"cannot read the token files under {location.url}: {error}; check them with `speechtok verify-tokens`"
        ) from error
    return TokenTable(url=location.url, location=location, files=len(files), connection=connection)


def _is_token_file(relative: str) -> bool:
    parts = relative.split("/")
    return len(parts) == 3 and parts[0].startswith("model_version=") and parts[1].startswith("split=")


def run_query(table: TokenTable, sql: str) -> pa.Table:
    """Run `sql` (any DuckDB SELECT over the views) and return its rows as an Arrow table."""
    try:
        relation = table.connection.sql(sql)
        if relation is None:
            raise QueryError(f"{sql!r} returns no rows (it is not a query); pass a SELECT, e.g. {views.EXAMPLE_SQL!r}")
        return relation.to_arrow_table()
    except duckdb.Error as error:
        names = ", ".join(v.signature for v in views.VIEWS)
        raise QueryError(
            f"DuckDB rejected the query on {table.url}: {error}\n"
            f"SQL: {sql}\n"
            f"Fix the SQL; the views are {names} (see `speechtok query --help` for columns and macros)."
        ) from error
