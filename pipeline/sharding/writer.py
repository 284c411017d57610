"""Write one planned shard: decode its files, cut segments, and publish a WebDataset tar atomically."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import webdataset

from pipeline.sharding.audio import DecodedAudio, decode_source, encode_flac
from pipeline.sharding.config import ShardConfig
from pipeline.sharding.records import (
    SHARDS_DIR,
    FilePlan,
    Reason,
    Rejection,
    SegmentRow,
    ShardPlan,
    ShardResult,
    Stage,
    TimeSpan,
    WrittenShard,
)
from pipeline.sharding.segments import merge_regions
from pipeline.sharding.vad import energy_regions
from storage.fs import Location, local_scratch, publish_file


def sample_key(plan: FilePlan, segment_index: int) -> str:
    """`{speaker}_{book}_{name}_{segment:04d}` with dots replaced: WebDataset splits keys at the first dot."""
    source = plan.source
    return f"{source.speaker}_{source.book}_{source.name}_{segment_index:04d}".replace(".", "-")


def write_shard(source: Location, destination: Location, shard: ShardPlan, config: ShardConfig) -> WrittenShard:
    """Build `shards/{name}.tar` in local scratch, then publish it in one step.

    Reading a file's bytes may raise (network trouble): the task retries the whole shard. Problems with the
    bytes themselves become rejections and the other files of the shard are still written.
    """
    rows: list[SegmentRow] = []
    rejections: list[Rejection] = []
    with local_scratch() as scratch:
        tar_path = scratch / shard.tar_name
        with tar_path.open("wb") as handle, webdataset.TarWriter(handle, mtime=0, encoder=False) as tar:
            for plan in shard.files:
                decoded = decode_source(source.read_bytes(plan.source.audio), plan)
                if isinstance(decoded, Rejection):
                    rejections.append(decoded)
                    continue
                file_rows = _write_file(tar, shard, plan, decoded, config)
                if not file_rows:
                    rejections.append(
                        Rejection(plan.source.audio, Stage.AUDIO, Reason.NO_SPEECH, f"{plan.source.audio}: no speech")
                    )
                rows.extend(file_rows)
        digest, size = "", 0
        if rows:  # every file rejected: publish no empty shard
            digest, size = _sha256(tar_path), tar_path.stat().st_size
            publish_file(tar_path, destination, SHARDS_DIR, shard.tar_name)
    rows.sort(key=lambda row: row.key)
    result = ShardResult(
        shard=shard.name,
        split=shard.split,
        holdout=shard.holdout,
        sha256=digest,
        num_bytes=size,
        num_segments=len(rows),
        audio_seconds=sum(row.duration_s for row in rows),
        sources=tuple(sorted({row.source for row in rows})),
        speakers=tuple(sorted({row.speaker for row in rows})),
        rejections=tuple(rejections),
    )
    return WrittenShard(result, rows)


def _write_file(
    tar: webdataset.TarWriter, shard: ShardPlan, plan: FilePlan, audio: DecodedAudio, config: ShardConfig
) -> list[SegmentRow]:
    segments = plan.segments
    if segments is None:  # JSON had no voice_activity: the documented energy fallback
        segments = tuple(merge_regions(energy_regions(audio.samples, audio.sample_rate), config.max_seconds))
    notes = "; ".join((*plan.notes, *audio.notes))
    rows = []
    for index, span in enumerate(segments):
        start, stop = _sample_range(span, audio.sample_rate, len(audio.samples))
        if stop <= start:
            continue
        row = SegmentRow(
            key=sample_key(plan, index),
            shard=shard.name,
            split=shard.split,
            holdout=shard.holdout,
            speaker=plan.source.speaker,
            book=plan.source.book,
            source=plan.source.audio,
            segment_index=index,
            start_s=start / audio.sample_rate,
            end_s=stop / audio.sample_rate,
            duration_s=(stop - start) / audio.sample_rate,
            start_sample=start,
            num_samples=stop - start,
            sample_rate=audio.sample_rate,
            snr=plan.snr,
            vad_source=plan.vad_source,
            notes=notes,
        )
        metadata = {k: v for k, v in asdict(row).items() if k not in ("key", "shard")}
        tar.write(
            {
                "__key__": row.key,
                "flac": encode_flac(audio.samples[start:stop], audio.sample_rate, audio.flac_subtype),
                "json": json.dumps(metadata, sort_keys=True).encode(),
            }
        )
        rows.append(row)
    return rows


def _sample_range(span: TimeSpan, sample_rate: int, length: int) -> tuple[int, int]:
    start = min(length, max(0, round(span.start_s * sample_rate)))
    stop = min(length, max(start, round(span.end_s * sample_rate)))
    return start, stop


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
