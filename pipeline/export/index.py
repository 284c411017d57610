"""`index.parquet` of an export: one row per utterance, mapping token positions back to source audio.

Columns: `split`, `shard` (file prefix, e.g. `train-00000`), `document` (split-wide), `utterance_id`, `offset`
(first token of the utterance in the shard's `.bin`), `length` (its tokens, = n_frames × tokens_per_frame),
`n_frames`, `speaker`, `book_id`, `source_path`, `segment_index`, `start_s`, `end_s`, `model_version`; rows in
file order (split, shard, offset). Token `p` of shard `s` is frame `(p - offset) // tokens_per_frame` of the row
with `offset <= p < offset + length`, i.e. second `start_s + frame / frame_rate` of `source_path`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.export.plan import SplitPlan
from storage.fs import Location
from storage.parquet_io import read_table, write_table

INDEX_FILE = "index.parquet"
INDEX_COLUMNS = [
    "split",
    "shard",
    "document",
    "utterance_id",
    "offset",
    "length",
    "n_frames",
    "speaker",
    "book_id",
    "source_path",
    "segment_index",
    "start_s",
    "end_s",
    "model_version",
]


def index_table(plans: list[SplitPlan]) -> pa.Table:
    """The index rows of every split, in file order."""
    tables = []
    for plan in plans:
        rows = plan.rows
        names = np.array([s.name for s in plan.shards] or [""], dtype=object)
        shard = pa.array(names[rows.column("shard").to_numpy()] if rows.num_rows else [], pa.string())
        columns = {name: rows.column(name) for name in INDEX_COLUMNS if name in rows.column_names and name != "shard"}
        columns["split"] = pa.array([plan.name] * rows.num_rows, pa.string())
        columns["shard"] = shard
        tables.append(pa.table({name: columns[name] for name in INDEX_COLUMNS}))
    return pa.concat_tables(tables)


# Offsets grow by an utterance's length (~10 bits of delta), seconds are floats whose sign/exponent bytes repeat:
# measured 18.2 instead of 24.7 bytes per row with the defaults (benchmarks/export_llm.py, 36,000 rows).
INDEX_ENCODING = {
    "offset": "DELTA_BINARY_PACKED",
    "document": "DELTA_BINARY_PACKED",
    "start_s": "BYTE_STREAM_SPLIT",
    "end_s": "BYTE_STREAM_SPLIT",
}


def write_index(out: Location, table: pa.Table, row_group_size: int) -> None:
    write_table(table, out, INDEX_FILE, row_group_size=row_group_size, column_encoding=INDEX_ENCODING)


def read_index(out: Location, split: str | None = None) -> pa.Table:
    table = read_table(out, INDEX_FILE)
    return table if split is None else table.filter(pc.equal(table.column("split"), split))


@dataclass(frozen=True)
class SourcePoint:
    """Where a token of an export came from."""

    utterance_id: str
    source_path: str
    frame: int  # frame of the utterance
    second: float  # in the source audio file


def locate(index: pa.Table, shard: str, position: int, tokens_per_frame: int, frame_rate: float) -> SourcePoint:
    """The utterance, frame and source-audio second of token `position` of `shard`; LookupError on a special."""
    rows = index.filter(pc.equal(index.column("shard"), shard))
    offsets = rows.column("offset").to_numpy()
    row = int(np.searchsorted(offsets, position, side="right")) - 1
    if row < 0 or position >= offsets[row] + rows.column("length")[row].as_py():
        raise LookupError(f"token {position} of {shard} is a special token (bos/sep/eos), not audio")
    frame = (position - int(offsets[row])) // tokens_per_frame
    return SourcePoint(
        utterance_id=rows.column("utterance_id")[row].as_py(),
        source_path=rows.column("source_path")[row].as_py(),
        frame=frame,
        second=rows.column("start_s")[row].as_py() + frame / frame_rate,
    )
