"""Token tables: the Parquet schema, one file per input shard, and the checks that let a re-run skip a file.

Layout (hive-partitioned, readable by DuckDB and `pyarrow.dataset` with `partitioning="hive"`):
`OUT/model_version={V}/split={S}/{shard}.parquet`. `model_version` (int32) and `split` are also stored inside
each file with the same types the partition inference gives, so both readers agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from storage.fs import Location
from storage.parquet_io import read_table, write_table

TOKENS_SCHEMA = pa.schema(
    [
        ("utterance_id", pa.string()),  # the WebDataset sample key, unique in the corpus
        ("speaker", pa.string()),
        ("book_id", pa.string()),
        ("source_path", pa.string()),  # the audio file relative to the corpus root
        ("segment_index", pa.int32()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("duration_s", pa.float64()),
        ("sample_rate", pa.int32()),  # native rate of the source; `num_samples` counts samples at it
        ("num_samples", pa.int64()),
        ("holdout", pa.bool_()),
        ("n_frames", pa.int32()),
        ("tokens", pa.list_(pa.uint16())),  # [n_frames, tokens_per_frame] flattened frame-major
        ("tokens_per_frame", pa.int32()),
        ("model_name", pa.string()),
        ("model_version", pa.int32()),
        ("split", pa.string()),
        ("shard", pa.string()),
    ]
)
# Tokens are near-incompressible 14-bit codes in 16-bit slots. BYTE_STREAM_SPLIT puts the high bytes (6 of 8 bits
# always zero) together so zstd removes them: measured 308 vs 345 KB per audio hour with the default dictionary
# encoding on random 14-bit tokens at 47.5 tokens/s (the floor is 299 KB/h).
TOKENS_ENCODING = {"tokens.list.element": "BYTE_STREAM_SPLIT"}
# Manifest columns copied into each row, by output name.
_FROM_MANIFEST = {
    "utterance_id": "key",
    "speaker": "speaker",
    "book_id": "book",
    "source_path": "source",
    "segment_index": "segment_index",
    "start_s": "start_s",
    "end_s": "end_s",
    "duration_s": "duration_s",
    "sample_rate": "sample_rate",
    "num_samples": "num_samples",
    "holdout": "holdout",
    "split": "split",
    "shard": "shard",
}


@dataclass(frozen=True)
class ModelInfo:
    """The codec a table was produced with (read from the model, never re-declared)."""

    uri: str  # as requested, e.g. models:/speechtok-codec@production
    name: str
    version: str
    tokens_per_frame: int
    frame_rate: float
    sample_rate: int
    vocab_size: int

    @property
    def resolved_uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def version_partition(version: str | int) -> str:
    """`model_version=V`: the directory of one model version's files under OUT."""
    return f"model_version={version}"


def version_dir(model: ModelInfo) -> str:
    return version_partition(model.version)


def token_file_parts(version: str | int, split: str, shard: str) -> tuple[str, str, str]:
    """Path parts of one shard's token file under OUT, for a model version."""
    return version_partition(version), f"split={split}", f"{shard}.parquet"


def shard_file(model: ModelInfo, split: str, shard: str) -> tuple[str, str, str]:
    """Path parts of one shard's token file under OUT."""
    return token_file_parts(model.version, split, shard)


@dataclass
class EncodedRows:
    """Encoder output of one shard, in arrival order: keys, tokens (uint16 bytes), frame counts, and the
    encoding policies (canonical JSON) the rows were encoded under — one, unless actors differed."""

    keys: list[str]
    tokens: list[bytes]
    n_frames: list[int]
    policies: set[str] = field(default_factory=set)


# Schema-metadata key of a token file: the JSON list of encoding policies its rows were encoded under.
POLICY_METADATA_KEY = b"speechtok.encoding_policies"


def file_policies(table: pa.Table) -> list[dict[str, object]]:
    """The encoding policies recorded in a token file's schema metadata ([] for files written before them)."""
    raw = (table.schema.metadata or {}).get(POLICY_METADATA_KEY)
    return [] if raw is None else list(json.loads(raw))


def build_table(segments: pa.Table, encoded: EncodedRows, model: ModelInfo) -> pa.Table:
    """One shard's rows sorted by utterance_id (deterministic bytes whatever the arrival order).

    `segments` holds this shard's rows of manifest/segments.parquet; every key must be encoded exactly once.
    """
    order = np.argsort(np.asarray(encoded.keys, dtype=object), kind="stable")
    keys = [encoded.keys[i] for i in order]
    manifest = segments.sort_by("key")
    if keys != manifest.column("key").to_pylist():
        raise ValueError(
            f"encoded keys of shard {manifest.column('shard')[0]} differ from manifest/segments.parquet "
            f"({len(keys)} encoded, {manifest.num_rows} listed)"
        )
    flat = [np.frombuffer(encoded.tokens[i], dtype=np.uint16) for i in order]
    offsets = np.zeros(len(flat) + 1, dtype=np.int32)
    np.cumsum([len(f) for f in flat], out=offsets[1:])
    values = np.concatenate(flat) if flat else np.zeros(0, dtype=np.uint16)
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        name: manifest.column(source) for name, source in _FROM_MANIFEST.items()
    }
    rows = manifest.num_rows
    columns["n_frames"] = pa.array(np.asarray(encoded.n_frames, dtype=np.int32)[order])
    columns["tokens"] = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.uint16()))
    columns["tokens_per_frame"] = pa.array(np.full(rows, model.tokens_per_frame, dtype=np.int32))
    columns["model_name"] = pa.array([model.name] * rows, pa.string())
    columns["model_version"] = pa.array(np.full(rows, int(model.version), dtype=np.int32))
    table = pa.table({column.name: columns[column.name] for column in TOKENS_SCHEMA}).cast(TOKENS_SCHEMA)
    policies = json.dumps([json.loads(p) for p in sorted(encoded.policies)], sort_keys=True)
    return table.replace_schema_metadata({POLICY_METADATA_KEY: policies.encode()})


def write_shard_table(
    table: pa.Table, out: Location, parts: Sequence[str], compression: str, row_group_size: int
) -> None:
    """Publish one shard's table atomically (readers see no file or the whole file)."""
    write_table(
        table, out, *parts, compression=compression, row_group_size=row_group_size, column_encoding=TOKENS_ENCODING
    )


def existing_is_valid(
    out: Location, parts: Sequence[str], expected_keys: Callable[[], list[str]], model: ModelInfo
) -> bool:
    """True when a shard's file exists, reads, and holds exactly `expected_keys()` for this model version (the keys
    are only read when there is a file to check)."""
    if not out.exists(*parts):
        return False
    try:
        table = read_table(out, *parts, columns=["utterance_id", "model_version", "model_name"])
    except (OSError, pa.ArrowException):
        return False
    return (
        table.column("utterance_id").to_pylist() == sorted(expected_keys())
        and set(table.column("model_version").to_pylist()) == {int(model.version)}
        and set(table.column("model_name").to_pylist()) == {model.name}
    )
