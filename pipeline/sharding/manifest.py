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
from dataclasses import asdict, dataclass, fields

import pyarrow as pa

from pipeline.sharding.plan import SHARD_FORMAT_VERSION
from pipeline.sharding.records import Reason, Rejection, ShardPlan, Stage
from pipeline.sharding.writer import SHARDS_DIR, SegmentRow, ShardResult
from storage.fs import Location
from storage.parquet_io import write_table

MARKERS_DIR = "_markers"
MANIFEST_DIR = "manifest"
PARTS_DIR = "parts"


def segment_part_parts(shard_name: str) -> tuple[str, str, str]:
    """Path parts of one shard's segment table: `manifest/parts/{shard}.parquet`."""
    return MANIFEST_DIR, PARTS_DIR, f"{shard_name}.parquet"

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


def write_marker(location: Location, result: ShardResult, digest: str) -> None:
    payload = {
        "format": SHARD_FORMAT_VERSION,
        "digest": digest,
        "shard": result.shard,
        "sha256": result.sha256,
        "num_bytes": result.num_bytes,
        "segments": [asdict(row) for row in result.segments],
        "rejections": [asdict(rejection) for rejection in result.rejections],
    }
    location.write_bytes_atomic(json.dumps(payload, sort_keys=True).encode(), *marker_parts(result.shard))


def read_completed(location: Location, shard: ShardPlan, digest: str) -> ShardResult | None:
    """The shard's result if a marker for this exact plan exists and its tar is in place, else None."""
    if not location.exists(*marker_parts(shard.name)):
        return None
    payload = json.loads(location.read_bytes(*marker_parts(shard.name)))
    if payload.get("format") != SHARD_FORMAT_VERSION or payload.get("digest") != digest:
        return None  # built from another plan or format: rebuild
    if payload["segments"] and location.fs.size(location.path(SHARDS_DIR, shard.tar_name)) != payload["num_bytes"]:
        return None
    return ShardResult(
        shard=payload["shard"],
        sha256=payload["sha256"],
        num_bytes=payload["num_bytes"],
        segments=[SegmentRow(**row) for row in payload["segments"]],
        rejections=[
            Rejection(r["source"], Stage(r["stage"]), Reason(r["reason"]), r["detail"]) for r in payload["rejections"]
        ],
    )


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

    Checks the accounting invariant first: every discovered audio file is in segments or in rejections.
    """
    rows = sorted((row for result in results for row in result.segments), key=lambda row: (row.shard, row.key))
    rejections = sorted(
        [*plan_rejections, *(r for result in results for r in result.rejections)], key=lambda r: (r.source, r.stage)
    )
    sharded_sources = {row.source for row in rows}
    rejected_audio = {r.source for r in rejections}
    accounted = len(sharded_sources) + len(rejected_audio)
    if accounted != discovered or sharded_sources & rejected_audio:
        raise RuntimeError(
            f"accounting invariant broken: {discovered} files discovered but {len(sharded_sources)} sharded and "
            f"{len(rejected_audio)} rejected (overlap {sorted(sharded_sources & rejected_audio)[:5]})"
        )
    write_table(_table(rows, SEGMENTS_SCHEMA), location, MANIFEST_DIR, "segments.parquet")
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
    write_table(_shards_table(results), location, MANIFEST_DIR, "shards.parquet")
    return ManifestSummary(
        files=discovered,
        sharded_files=len(sharded_sources),
        segments=len(rows),
        audio_hours=sum(row.duration_s for row in rows) / 3600.0,
        shards=sum(1 for result in results if result.segments),
        holdout_speakers=len({row.speaker for row in rows if row.holdout}),
        rejections_by_reason=dict(sorted(Counter(str(r.reason) for r in rejections).items())),
    )


def _table(rows: list[SegmentRow], schema: pa.Schema) -> pa.Table:
    names = [field.name for field in fields(SegmentRow)]
    return pa.Table.from_pydict({name: [getattr(row, name) for row in rows] for name in names}, schema=schema)


def _shards_table(results: list[ShardResult]) -> pa.Table:
    records = []
    for result in sorted(results, key=lambda r: r.shard):
        if not result.segments:
            continue
        first = result.segments[0]
        records.append(
            {
                "shard": result.shard,
                "path": f"{SHARDS_DIR}/{result.shard}.tar",
                "split": first.split,
                "holdout": first.holdout,
                "num_segments": len(result.segments),
                "num_bytes": result.num_bytes,
                "sha256": result.sha256,
                "audio_seconds": sum(row.duration_s for row in result.segments),
            }
        )
    return pa.Table.from_pylist(records, schema=SHARDS_SCHEMA)
