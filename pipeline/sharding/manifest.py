"""Completion markers per shard, per-shard segment tables, and the Parquet manifest assembled from them.

On-disk layout under the shard root:
- `manifest/parts/{shard}.parquet`: the segment rows of one shard (`SEGMENTS_SCHEMA`, sorted by key), written
  with the shard, before its marker. Readers that need one shard's rows read this file, not the whole manifest.
- `_markers/{shard}.json`: written last, after the tar and its part are published; records the plan digest the
  shard was built from and the shard's counts (never its rows), so a re-run can skip finished shards and the
  manifest never depends on which run wrote which shard.
- `manifest/segments.parquet`, `rejections.parquet`, `shards.parquet`: the whole corpus, written at the end;
  segments are streamed part by part, so memory is bounded by one shard, not the corpus.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any

import pyarrow as pa

from pipeline.sharding.plan import SHARD_FORMAT_VERSION
from pipeline.sharding.records import (
    SHARDS_DIR,
    Reason,
    Rejection,
    SegmentRow,
    ShardPlan,
    ShardResult,
    Stage,
    WrittenShard,
)
from storage.fs import Location
from storage.parquet_io import open_parquet, read_table, write_table, write_tables

MARKERS_DIR = "_markers"
MANIFEST_DIR = "manifest"
PARTS_DIR = "parts"


SEGMENTS_MANIFEST = (MANIFEST_DIR, "segments.parquet")
SHARDS_MANIFEST = (MANIFEST_DIR, "shards.parquet")


def segment_part_parts(shard_name: str) -> tuple[str, str, str]:
    """Path parts of one shard's segment table: `manifest/parts/{shard}.parquet`."""
    return MANIFEST_DIR, PARTS_DIR, f"{shard_name}.parquet"


@dataclass(frozen=True)
class ShardEntry:
    """One row of `manifest/shards.parquet`: a shard with at least one segment."""

    shard: str
    path: str  # relative to the shard root: shards/{shard}.tar
    split: str
    holdout: bool
    num_segments: int
    num_bytes: int
    sha256: str
    audio_seconds: float


def read_shard_entries(location: Location) -> list[ShardEntry]:
    """Every shard of a `speechtok shard` output, from `manifest/shards.parquet` (one row per shard: what jobs
    plan from without loading the segment rows)."""
    return [ShardEntry(**row) for row in read_table(location, *SHARDS_MANIFEST).to_pylist()]


def read_shard_keys(location: Location, shard: str) -> list[str]:
    """One shard's segment keys, sorted, from its part."""
    return read_shard_segments(location, shard, ["key"]).column("key").to_pylist()


def read_shard_segments(location: Location, shard: str, columns: list[str] | None = None) -> pa.Table:
    """One shard's segment rows (sorted by key), from its part; `columns` to read only some."""
    try:
        return read_table(location, *segment_part_parts(shard), columns=columns)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{location.url_of(*segment_part_parts(shard))} not found: shards written before per-shard manifest "
            f"parts (speechtok < issue 11) need `speechtok shard` re-run on the corpus into {location.url}"
        ) from error


SEGMENTS_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("shard", pa.string()),
        ("split", pa.string()),
        ("holdout", pa.bool_()),
        ("speaker", pa.string()),
        ("book", pa.string()),
        ("source", pa.string()),
        ("segment_index", pa.int32()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("duration_s", pa.float64()),
        ("start_sample", pa.int64()),
        ("num_samples", pa.int64()),
        ("sample_rate", pa.int32()),
        ("snr", pa.float64()),
        ("vad_source", pa.string()),
        ("notes", pa.string()),
    ]
)
REJECTIONS_SCHEMA = pa.schema(
    [("source", pa.string()), ("stage", pa.string()), ("reason", pa.string()), ("detail", pa.string())]
)
SHARDS_SCHEMA = pa.schema(
    [
        ("shard", pa.string()),
        ("path", pa.string()),
        ("split", pa.string()),
        ("holdout", pa.bool_()),
        ("num_segments", pa.int64()),
        ("num_bytes", pa.int64()),
        ("sha256", pa.string()),
        ("audio_seconds", pa.float64()),
    ]
)


def marker_parts(shard_name: str) -> tuple[str, str]:
    return MARKERS_DIR, f"{shard_name}.json"


def publish_shard_records(location: Location, written: WrittenShard, digest: str) -> None:
    """After the tar is published: its segment table, then its completion marker (the marker comes last, so a
    marker always means the tar and the part are in place)."""
    if written.rows:
        write_table(segments_table(written.rows), location, *segment_part_parts(written.result.shard))
    result = written.result
    payload = {"format": SHARD_FORMAT_VERSION, "digest": digest, **asdict(result)}
    payload["rejections"] = [asdict(rejection) for rejection in result.rejections]
    location.write_bytes_atomic(json.dumps(payload, sort_keys=True).encode(), *marker_parts(result.shard))


def read_completed(location: Location, shard: ShardPlan, digest: str) -> ShardResult | None:
    """The shard's result if a marker for this exact plan exists and its tar and part are in place, else None."""
    if not location.exists(*marker_parts(shard.name)):
        return None
    payload = json.loads(location.read_bytes(*marker_parts(shard.name)))
    if payload.get("format") != SHARD_FORMAT_VERSION or payload.get("digest") != digest:
        return None  # built from another plan or format: rebuild
    if payload["num_segments"] and not _files_match(location, shard.name, payload):
        return None
    rejections = tuple(
        Rejection(r["source"], Stage(r["stage"]), Reason(r["reason"]), r["detail"]) for r in payload["rejections"]
    )
    names = {f.name for f in fields(ShardResult)} - {"rejections", "sources", "speakers"}
    return ShardResult(
        **{name: payload[name] for name in names},
        sources=tuple(payload["sources"]),
        speakers=tuple(payload["speakers"]),
        rejections=rejections,
    )


def withdraw_marker(location: Location, shard_name: str) -> None:
    """Remove a shard's marker before rebuilding it, so a run killed half-way never leaves an old marker beside
    new files."""
    if location.exists(*marker_parts(shard_name)):
        location.fs.rm(location.path(*marker_parts(shard_name)))


def _files_match(location: Location, shard_name: str, payload: dict[str, Any]) -> bool:
    """The tar has the marker's size and the part the marker's row count (a deleted tar or part: rebuild)."""
    try:
        size = location.fs.size(location.path(SHARDS_DIR, f"{shard_name}.tar"))
        with open_parquet(location, *segment_part_parts(shard_name)) as part:
            rows = part.metadata.num_rows
    except FileNotFoundError:
        return False
    return bool(size == payload["num_bytes"] and rows == payload["num_segments"])


@dataclass(frozen=True)
class ManifestSummary:
    """Counts printed at the end of a run and returned by the flow."""

    files: int
    sharded_files: int
    segments: int
    audio_hours: float
    shards: int
    holdout_speakers: int
    rejections_by_reason: dict[str, int]

    @property
    def rejected_files(self) -> int:
        return sum(self.rejections_by_reason.values())


def write_manifest(
    location: Location, results: list[ShardResult], plan_rejections: list[Rejection], discovered: int
) -> ManifestSummary:
    """Write `manifest/{segments,rejections,shards}.parquet`, sorted so identical runs give identical bytes.

    Segments are streamed from the per-shard parts in shard order (each part sorted by key), so memory holds
    one shard's rows at a time. Checks the accounting invariant first: every discovered audio file is in
    segments or in rejections.
    """
    results = sorted(results, key=lambda result: result.shard)
    rejections = sorted(
        [*plan_rejections, *(r for result in results for r in result.rejections)], key=lambda r: (r.source, r.stage)
    )
    sharded_sources = {source for result in results for source in result.sources}
    rejected_audio = {r.source for r in rejections}
    accounted = len(sharded_sources) + len(rejected_audio)
    if accounted != discovered or sharded_sources & rejected_audio:
        raise RuntimeError(
            f"accounting invariant broken: {discovered} files discovered but {len(sharded_sources)} sharded and "
            f"{len(rejected_audio)} rejected (overlap {sorted(sharded_sources & rejected_audio)[:5]})"
        )
    with_segments = [result for result in results if result.num_segments]
    segments = write_tables(_checked_parts(location, with_segments), SEGMENTS_SCHEMA, location, *SEGMENTS_MANIFEST)
    write_table(
        pa.Table.from_pylist(
            [
                {"source": r.source, "stage": str(r.stage), "reason": str(r.reason), "detail": r.detail}
                for r in rejections
            ],
            schema=REJECTIONS_SCHEMA,
        ),
        location,
        MANIFEST_DIR,
        "rejections.parquet",
    )
    write_table(_shards_table(with_segments), location, *SHARDS_MANIFEST)
    return ManifestSummary(
        files=discovered,
        sharded_files=len(sharded_sources),
        segments=segments,
        audio_hours=sum(result.audio_seconds for result in with_segments) / 3600.0,
        shards=len(with_segments),
        holdout_speakers=len({speaker for result in with_segments if result.holdout for speaker in result.speakers}),
        rejections_by_reason=dict(sorted(Counter(str(r.reason) for r in rejections).items())),
    )


def _checked_parts(location: Location, results: list[ShardResult]) -> Iterator[pa.Table]:
    """Each shard's part in order, checked against its marker before anything is published."""
    for result in results:
        part = read_table(location, *segment_part_parts(result.shard))
        if part.num_rows != result.num_segments:
            raise RuntimeError(
                f"{location.url_of(*segment_part_parts(result.shard))} holds {part.num_rows} rows but the shard's "
                f"marker counts {result.num_segments}; re-run the same command to rebuild it"
            )
        yield part


def segments_table(rows: list[SegmentRow]) -> pa.Table:
    """Segment rows as a table of `SEGMENTS_SCHEMA`."""
    names = [field.name for field in fields(SegmentRow)]
    return pa.Table.from_pydict({name: [getattr(row, name) for row in rows] for name in names}, schema=SEGMENTS_SCHEMA)


def _shards_table(results: list[ShardResult]) -> pa.Table:
    records = [
        {
            "shard": result.shard,
            "path": f"{SHARDS_DIR}/{result.shard}.tar",
            "split": result.split,
            "holdout": result.holdout,
            "num_segments": result.num_segments,
            "num_bytes": result.num_bytes,
            "sha256": result.sha256,
            "audio_seconds": result.audio_seconds,
        }
        for result in results
    ]
    return pa.Table.from_pylist(records, schema=SHARDS_SCHEMA)
