"""Typed description of one training job, shared by the driver (Ray/MLflow set-up) and every worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from storage.settings import S3Settings
from training.configs import CodecConfig
from training.data import DataConfig
from training.optim import OptimConfig

Stage = Literal["encoder", "codec"]


@dataclass(frozen=True)
class TrainJob:
    """Everything a worker needs; picklable plain data (sent to Ray workers as `train_loop_config`)."""

    stage: Stage
    shards: str  # output root of `speechtok shard` (local or s3://)
    model: CodecConfig
    run_name: str  # checkpoints live in {checkpoint_root}/{run_name}; the same name resumes
    checkpoint_root: str
    max_steps: int
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    checkpoint_every: int = 100
    log_every: int = 10
    seed: int = 0
    mlflow_tracking_uri: str = ""
    mlflow_run_id: str = ""
    encoder_uri: str | None = None  # stage 2: the stage-1 encoder (models:/speechtok-encoder@candidate, ...)
    s3: S3Settings = field(default_factory=S3Settings)
    # Test hook: the last worker exits abruptly once when it reaches this step, to exercise FailureConfig
    # (a marker file makes it fire only once per run).
    fail_at_step: int | None = None
