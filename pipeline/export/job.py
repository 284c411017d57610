"""`export_llm`: token tables → per-split uint16 token files, `index.parquet` and `meta.json` (issue 14).

Two passes. `plan_export` reads the metadata columns only (O(utterances) memory) and fixes every utterance's
split, document, shard and offset. `run_export` then writes each output shard on its own, sequentially in
output order, from a bounded cache of source row groups (`pipeline.export.stream`: memory is a few row groups,
whatever the shard or corpus size), into local scratch; it is published atomically with its index and a marker
holding the shard's plan fingerprint. A re-run skips shards whose marker matches, so a killed export
finishes with byte-identical files.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.export.config import ExportConfig, ExportFormat
from pipeline.export.flat import write_docs
from pipeline.export.index import INDEX_FILE, index_table, write_index
from pipeline.export.megatron import write_idx
from pipeline.export.meta import META_FILE, build_meta, shard_files, write_meta
from pipeline.export.plan import TRAIN, VALIDATION, ShardPlan, SplitPlan, plan_split, split_rows
from pipeline.export.source import TokenSource, open_source, read_metadata
from pipeline.export.stream import write_tokens
from storage.fs import Location, local_scratch, open_location, publish_file
from storage.settings import S3Settings

MARKERS = "_markers"
_SHARD_NAME = re.compile(rf"^({TRAIN}|{VALIDATION})-\d{{5}}(\.bin|\.idx|\.docs\.npy|\.json)$")
Progress = Callable[[int], None]  # called with the tokens just written


@dataclass(frozen=True)
class ExportPlan:
    source: TokenSource
    config: ExportConfig
    splits: list[SplitPlan]

    @property
    def tokens(self) -> int:
        return sum(split.tokens for split in self.splits)

    @property
    def shards(self) -> list[tuple[SplitPlan, ShardPlan]]:
        return [(split, shard) for split in self.splits for shard in split.shards]


@dataclass(frozen=True)
class ExportSummary:
    out_url: str
    plan: ExportPlan
    meta: dict[str, Any]
    shards_written: int
    shards_reused: int
    bytes_on_disk: int  # token files, their indexes, index.parquet and meta.json
    token_file_bytes: int  # .bin + .idx / .docs.npy only
    wall_seconds: float
    run_id: str | None = None  # the MLflow run, when run through `pipeline.export.tracking.tracked_export`

    @property
    def content_tokens(self) -> int:
        return sum(split.content_tokens for split in self.plan.splits)

    @property
    def tokens_per_second(self) -> float:
        return self.plan.tokens / self.wall_seconds if self.wall_seconds else 0.0


def plan_export(
    tokens_url: str, config: ExportConfig, model_version: str | None = None, s3: S3Settings | None = None
) -> ExportPlan:
    """Pass 1: open the table, check the special ids against its vocabulary and place every utterance."""
    source = open_source(tokens_url, model_version, s3)
    config.specials.check(source.vocab_size)
    metadata = read_metadata(source)
    splits = [plan_split(name, rows, source, config) for name, rows in split_rows(metadata, source.url).items()]
    return ExportPlan(source=source, config=config, splits=splits)


def run_export(
    plan: ExportPlan, out_url: str, s3: S3Settings | None = None, progress: Progress | None = None
) -> ExportSummary:
    """Pass 2: write every shard not already complete, then `index.parquet` and `meta.json`."""
    started = time.perf_counter()
    out = open_location(out_url, s3)
    out.makedirs()
    advance = progress or (lambda _tokens: None)
    _remove_stale(out, plan)
    written = reused = 0
    for split, shard in plan.shards:
        if _is_complete(out, plan.config, shard):
            reused += 1
            advance(shard.tokens)
            continue
        write_shard(plan, split, shard, out, advance)
        written += 1
    write_index(out, index_table(plan.splits), plan.config.index_row_group_size)
    meta = build_meta(plan.source, plan.config, plan.splits)
    write_meta(out, meta)
    token_files = sum(out.size(name) for _, shard in plan.shards for name in shard_files(plan.config, shard.name))
    return ExportSummary(
        out_url=out.url,
        plan=plan,
        meta=meta,
        shards_written=written,
        shards_reused=reused,
        bytes_on_disk=token_files + out.size(INDEX_FILE) + out.size(META_FILE),
        token_file_bytes=token_files,
        wall_seconds=time.perf_counter() - started,
    )


def write_shard(plan: ExportPlan, split: SplitPlan, shard: ShardPlan, out: Location, advance: Progress) -> None:
    """Write one shard's token file and index to scratch, publish both, then its marker (last: it means done)."""
    config = plan.config
    rows = split.rows.slice(shard.row_start, shard.row_stop - shard.row_start)
    bin_name, index_name = shard_files(config, shard.name)
    with local_scratch("speechtok-export-") as scratch:
        bin_path = scratch / bin_name
        with bin_path.open("wb", buffering=0) as handle:  # write_tokens stages 4 MiB per write
            written = write_tokens(handle, plan.source, rows, config, advance)
        if written != shard.tokens:  # the plan and the writer disagree: a bug, never a partial file
            raise RuntimeError(f"{shard.name}: wrote {written} tokens, planned {shard.tokens}")
        index_path = scratch / index_name
        document_lengths = _document_lengths(
            config,
            rows.column("offset").to_numpy(),
            rows.column("length").to_numpy(),
            rows.column("first").to_numpy(zero_copy_only=False),
            rows.column("last").to_numpy(zero_copy_only=False),
        )
        if config.format is ExportFormat.megatron:
            write_idx(index_path, document_lengths)
        else:
            write_docs(index_path, document_lengths)
        sizes = {bin_name: bin_path.stat().st_size, index_name: index_path.stat().st_size}
        publish_file(bin_path, out, bin_name)
        publish_file(index_path, out, index_name)
    marker = {"fingerprint": shard.fingerprint, "tokens": shard.tokens, "files": sizes}
    out.write_bytes_atomic(json.dumps(marker, indent=2).encode() + b"\n", MARKERS, f"{shard.name}.json")


def _document_lengths(
    config: ExportConfig, offset: np.ndarray, length: np.ndarray, first: np.ndarray, last: np.ndarray
) -> np.ndarray:
    """[documents] tokens of each document of the shard, specials included."""
    before = np.where(first, config.specials.bos is not None, config.specials.sep is not None)
    starts = (offset - before)[first]
    ends = (offset + length + (last & (config.specials.eos is not None)))[last]
    return np.asarray(ends - starts, dtype=np.int64)


def _is_complete(out: Location, config: ExportConfig, shard: ShardPlan) -> bool:
    """The shard's marker matches its plan and its files are there with the recorded sizes."""
    marker_path = (MARKERS, f"{shard.name}.json")
    if not out.exists(*marker_path):
        return False
    try:
        marker = json.loads(out.read_bytes(*marker_path))
    except (OSError, ValueError):
        return False
    if marker.get("fingerprint") != shard.fingerprint:
        return False
    sizes = marker.get("files", {})
    return all(out.exists(name) and out.size(name) == sizes.get(name) for name in shard_files(config, shard.name))


def _remove_stale(out: Location, plan: ExportPlan) -> None:
    """Delete shard files and markers of an earlier plan that this one does not produce (e.g. fewer shards)."""
    keep = {name for _, shard in plan.shards for name in (*shard_files(plan.config, shard.name), f"{shard.name}.json")}
    for parts in [(name,) for name in out.names()] + [(MARKERS, name) for name in out.names(MARKERS)]:
        if _SHARD_NAME.match(parts[-1]) and parts[-1] not in keep:
            out.remove(*parts)


def local_path(out: Location, name: str) -> Path:
    """A file of a local export (the Dataset memory-maps files, which needs a local path)."""
    if not out.is_local:
        raise ValueError(f"{out.url}: memory-mapping needs a local copy of the export (download it first)")
    return Path(out.path(name))
