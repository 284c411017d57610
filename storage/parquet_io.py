"""Parquet tables written atomically to a `Location`, read back with pyarrow."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.parquet as pq

from storage.fs import Location, local_scratch, publish_file


def write_table(
    table: pa.Table,
    location: Location,
    *parts: str,
    compression: str = "zstd",
    row_group_size: int | None = None,
    column_encoding: dict[str, str] | None = None,
) -> None:
    """Write `table` to `location/parts` so readers see the old file or the whole new one, never a part.

    `column_encoding` maps Parquet column paths (e.g. `tokens.list.element`) to an encoding; those columns are
    written without a dictionary (Parquet allows only one of the two), all others with one.
    """
    dictionary: bool | list[str] = True
    if column_encoding:
        encoded = {path.split(".")[0] for path in column_encoding}
        dictionary = [name for name in table.column_names if name not in encoded]
    with local_scratch() as scratch:
        staging = scratch / "table.parquet"
        pq.write_table(
            table,
            staging,
            compression=compression,
            row_group_size=row_group_size,
            use_dictionary=dictionary,
            column_encoding=column_encoding,
        )
        publish_file(staging, location, *parts)


def write_tables(
    tables: Iterable[pa.Table],
    schema: pa.Schema,
    location: Location,
    *parts: str,
    compression: str = "zstd",
    rows_per_group: int = 32_768,
) -> int:
    """Write `tables` one after another into one Parquet file at `location/parts`, published atomically at the end.
    Small tables are gathered into row groups of about `rows_per_group` rows (few, large groups keep the footer
    small and scans fast); memory holds one group. Returns the number of rows."""
    rows = 0
    pending: list[pa.Table] = []
    with local_scratch() as scratch:
        staging = scratch / "table.parquet"
        with pq.ParquetWriter(staging, schema, compression=compression) as writer:
            for table in tables:
                pending.append(table.cast(schema))
                rows += table.num_rows
                if sum(t.num_rows for t in pending) >= rows_per_group:
                    writer.write_table(pa.concat_tables(pending), row_group_size=rows_per_group)
                    pending = []
            if pending or rows == 0:
                writer.write_table(pa.concat_tables(pending) if pending else schema.empty_table())
        publish_file(staging, location, *parts)
    return rows


def read_table(location: Location, *parts: str, columns: list[str] | None = None) -> pa.Table:
    with location.open(*parts) as handle:
        return pq.read_table(handle, columns=columns)


@contextmanager
def open_parquet(location: Location, *parts: str) -> Iterator[pq.ParquetFile]:
    """A Parquet file opened for reading row groups one at a time (streaming; nothing is read up front but the
    footer)."""
    with location.open(*parts) as handle:
        yield pq.ParquetFile(handle)


def list_parquet_files(location: Location, *parts: str) -> list[str]:
    """Paths of every `*.parquet` file under `location/parts`, relative to `location`, sorted.

    Hidden and in-progress files (names starting with `.` or `_`) are skipped, as Parquet readers do.
    """
    base = location.path(*parts)
    if not location.fs.exists(base):
        return []
    found = location.fs.find(base)
    names = [location.relative(path) for path in found if path.endswith(".parquet")]
    return sorted(n for n in names if not n.rsplit("/", 1)[-1].startswith((".", "_")))
