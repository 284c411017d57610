"""Parquet tables written atomically to a `Location`, read back with pyarrow."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from storage.fs import Location, local_scratch, publish_file


def write_table(table: pa.Table, location: Location, *parts: str, compression: str = "zstd") -> None:
    """Write `table` to `location/parts` so readers see the old file or the whole new one, never a part."""
    with local_scratch() as scratch:
        staging = scratch / "table.parquet"
        pq.write_table(table, staging, compression=compression)
        publish_file(staging, location, *parts)


def read_table(location: Location, *parts: str) -> pa.Table:
    with location.open(*parts) as handle:
        return pq.read_table(handle)
