"""Pack inspected files into shards deterministically, before any audio is decoded.

The plan depends only on the discovered files (paths, sizes), their JSON/header and the config, so a re-run
produces the same shard names and contents; that is what makes per-shard completion markers safe to trust.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from itertools import groupby

from pipeline.sharding.config import ShardConfig
from pipeline.sharding.holdout import holdout_speakers
from pipeline.sharding.records import FilePlan, ShardPlan

# Per-sample overhead in a tar: two 512-byte headers (flac, json) plus the JSON body itself.
_SAMPLE_OVERHEAD_BYTES = 1536


def assign_holdout(files: Sequence[FilePlan], config: ShardConfig) -> list[FilePlan]:
    """Mark every file of a held-out speaker."""
    held = holdout_speakers(
        (plan.source.speaker for plan in files),
        config.holdout_fraction,
        config.min_holdout_speakers,
        config.holdout_salt,
    )
    return [dataclasses.replace(plan, holdout=plan.source.speaker in held) for plan in files]


def estimate_bytes(plan: FilePlan) -> int:
    """Expected bytes of this file's samples in a shard: its size scaled by the kept (voiced) fraction."""
    duration = plan.num_frames / plan.sample_rate
    spans = plan.segments
    kept = duration if spans is None else sum(span.duration_s for span in spans)
    segments = 1 if spans is None else len(spans)
    bytes_per_second = plan.source.size_bytes / duration if duration > 0 else 0.0
    # Stereo sources are downmixed, which roughly halves their FLAC size.
    return int(kept * bytes_per_second / plan.channels) + segments * _SAMPLE_OVERHEAD_BYTES


def plan_shards(files: Sequence[FilePlan], config: ShardConfig) -> list[ShardPlan]:
    """Group files by (split, hold-out) in path order and fill shards up to `target_shard_bytes`.

    Held-out speakers get shards of their own, so training can exclude them by shard without reading any.
    Shard indices count up within each split: training shards first, then hold-out shards.
    """
    ordered = sorted(files, key=lambda plan: (plan.source.split, plan.holdout, plan.source.audio))
    shards: list[ShardPlan] = []
    for split, in_split in groupby(ordered, key=lambda plan: plan.source.split):
        index = 0
        for holdout, group in groupby(in_split, key=lambda plan: plan.holdout):
            current: list[FilePlan] = []
            current_bytes = 0
            for plan in group:
                current.append(plan)
                current_bytes += estimate_bytes(plan)
                if current_bytes >= config.target_shard_bytes:
                    shards.append(_shard(split, index, holdout, current, current_bytes))
                    index, current, current_bytes = index + 1, [], 0
            if current:
                shards.append(_shard(split, index, holdout, current, current_bytes))
                index += 1
    return shards


def _shard(split: str, index: int, holdout: bool, files: list[FilePlan], estimated: int) -> ShardPlan:
    return ShardPlan(
        name=f"{split}-{index:06d}", split=split, holdout=holdout, files=tuple(files), estimated_bytes=estimated
    )


def shard_digest(shard: ShardPlan, config: ShardConfig) -> str:
    """A fingerprint of everything that determines a shard's bytes; stored in its completion marker."""
    payload = {
        "format": SHARD_FORMAT_VERSION,
        "name": shard.name,
        "holdout": shard.holdout,
        "max_seconds": config.max_seconds,
        "expected_sample_rate": config.expected_sample_rate,
        "files": [dataclasses.asdict(plan) for plan in shard.files],
    }
    encoded = json.dumps(payload, sort_keys=True, default=_json_value)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _json_value(value: object) -> str:
    return value.hex() if isinstance(value, bytes) else str(value)  # packed spans as hex


# Bump when the bytes a shard holds change for the same plan (sample layout, JSON fields, FLAC settings) or what is
# written beside it. 2: segment rows in manifest/parts/{shard}.parquet, markers hold counts (issue 11).
SHARD_FORMAT_VERSION = 2
