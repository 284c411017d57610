"""Typed configuration of the sharding job."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

GIB = 1024**3


class ShardConfig(BaseModel):
    """How a LibriLight-shaped corpus is cut into segments and packed into WebDataset shards."""

    splits: list[str] | None = Field(default=None, description="top-level splits to shard (default: all)")
    max_seconds: float = Field(default=16.0, gt=0, description="longest segment; regions are merged up to it")
    target_shard_bytes: int = Field(default=GIB, gt=0, description="shards close once they reach this size")
    holdout_fraction: float = Field(default=0.02, ge=0, le=1, description="share of speakers held out by hash")
    min_holdout_speakers: int = Field(
        default=1, ge=0, description="hold out at least this many speakers when the corpus has two or more"
    )
    holdout_salt: str = Field(default="speechtok-holdout-v1", description="changing it reshuffles the hold-out")
    expected_sample_rate: int = Field(default=16_000, gt=0, description="other rates are kept and noted")
    vad_fallback: Literal["energy", "reject"] = Field(
        default="energy",
        description="when a JSON has no voice_activity: detect speech by frame energy, or reject the file",
    )
    concurrency: int = Field(
        default=2, ge=1, description="units of work running at once in this process (threads; with Ray: in flight)"
    )
    files_per_inspect_task: int = Field(
        default=256, ge=1, description="files per metadata-inspection task (219,041 files: 856 tasks)"
    )
    attempts: int = Field(default=3, ge=1, description="tries per task when storage fails transiently")
