"""The token table an export reads: one model version's files, its `_manifest.json` and the utterance metadata.

The first of the export's two passes reads only the small columns (never `tokens`) of every file, so the order
of the output can be planned with O(utterances) memory; `tokens` are read later one row group at a time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.tokenize.manifest import MANIFEST_FILE, read_table_manifest
from pipeline.tokenize.verify import model_versions
from storage.fs import Location, open_location
from storage.parquet_io import list_parquet_files, open_parquet
from storage.settings import S3Settings

METADATA_COLUMNS = [
    "utterance_id",
    "speaker",
    "book_id",
    "source_path",
    "segment_index",
    "start_s",
    "end_s",
    "holdout",
    "n_frames",
    "tokens_per_frame",
    "model_name",
    "model_version",
]


@dataclass(frozen=True)
class SourceFile:
    """One token file: `path` relative to the table root and the first row of each row group (plus the total)."""

    path: str
    row_group_starts: np.ndarray  # [row_groups + 1] int64


@dataclass(frozen=True)
class TokenSource:
    """One model version of a token table, with the codec contract read from its `_manifest.json`."""

    location: Location
    model_version: str
    model_name: str
    resolved_model_uri: str
    tokens_per_frame: int
    frame_rate: float
    vocab_size: int
    manifest_sha256: str
    files: list[SourceFile]

    @property
    def url(self) -> str:
        return self.location.url_of(f"model_version={self.model_version}")


def resolve_version(location: Location, requested: str | None, s3: S3Settings | None) -> str:
    """`requested`, or the only version present; a clear error lists the versions otherwise."""
    versions = model_versions(location.url, s3)
    if requested is not None:
        if requested not in versions:
            raise LookupError(f"{location.url} has no model_version={requested}; versions: {versions or 'none'}")
        return requested
    if len(versions) != 1:
        raise LookupError(
            f"{location.url} holds model versions {versions or 'none'}; pass the one to export (--model-version V)"
        )
    return versions[0]


def open_source(url: str, model_version: str | None = None, s3: S3Settings | None = None) -> TokenSource:
    """Resolve the version, read its manifest (codec contract, digest) and check the files it lists are present."""
    location = open_location(url, s3)
    version = resolve_version(location, model_version, s3)
    directory = f"model_version={version}"
    manifest = read_table_manifest(location, version)
    if manifest is None:
        raise FileNotFoundError(
            f"{location.url_of(directory, MANIFEST_FILE)} is missing: the codec contract (vocabulary, frame rate) "
            "comes from it; re-run `speechtok tokenize` to write it"
        )
    model = manifest["model"]
    listed = sorted(f"{directory}/{entry['path']}" for entry in manifest["files"])
    present = list_parquet_files(location, directory)
    if listed != present:
        missing, extra = sorted(set(listed) - set(present)), sorted(set(present) - set(listed))
        raise ValueError(
            f"{location.url_of(directory)} does not match its {MANIFEST_FILE} (listed but missing: {missing[:5]}; "
            f"present but not listed: {extra[:5]}); finish or re-run `speechtok tokenize` before exporting"
        )
    files = []
    for path in present:
        with open_parquet(location, path) as parquet:
            sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)]
        files.append(SourceFile(path, np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])))
    return TokenSource(
        location=location,
        model_version=version,
        model_name=str(model["name"]),
        resolved_model_uri=str(model.get("resolved_uri", f"models:/{model['name']}/{version}")),
        tokens_per_frame=int(model["tokens_per_frame"]),
        frame_rate=float(model["frame_rate"]),
        vocab_size=int(model["vocab_size"]),
        manifest_sha256=hashlib.sha256(location.read_bytes(directory, MANIFEST_FILE)).hexdigest(),
        files=files,
    )


def read_metadata(source: TokenSource) -> pa.Table:
    """Every row's metadata (no tokens), with `_file` (index into `source.files`) and `_row` (row in that file).

    Checks the codec contract row by row against the manifest and names the file of the first offending row.
    """
    tables = []
    for index, file in enumerate(source.files):
        with open_parquet(source.location, file.path) as parquet:
            missing = [c for c in METADATA_COLUMNS if c not in parquet.schema_arrow.names]
            if missing:
                raise ValueError(f"{source.location.url_of(file.path)} lacks columns {missing}; is it a token table?")
            table = parquet.read(columns=METADATA_COLUMNS)
        _check_contract(source, file.path, table)
        rows = table.num_rows
        table = table.append_column("_file", pa.array(np.full(rows, index, dtype=np.int32)))
        tables.append(table.append_column("_row", pa.array(np.arange(rows, dtype=np.int64))))
    if not tables:
        raise ValueError(f"{source.url} has no token files to export")
    return pa.concat_tables(tables)


def _check_contract(source: TokenSource, path: str, table: pa.Table) -> None:
    where = source.location.url_of(path)
    for column, expected in (
        ("tokens_per_frame", source.tokens_per_frame),
        ("model_version", int(source.model_version)),
        ("model_name", source.model_name),
    ):
        values = pc.unique(table.column(column)).to_pylist()
        if values and values != [expected]:
            raise ValueError(f"{where}: {column} {values} differs from {MANIFEST_FILE}'s {expected!r}")
    frames = table.column("n_frames")
    if frames.null_count or (table.num_rows and pc.min(frames).as_py() < 0):
        raise ValueError(f"{where}: n_frames must be present and >= 0 in every row")
