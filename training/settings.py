"""User-facing training settings (part of the speechtok settings file), turned into a `TrainJob`."""

from __future__ import annotations

from pydantic import BaseModel, Field


class TrainSettings(BaseModel):
    """Defaults sized for the `tiny` preset on a laptop; raise them for `paper` on GPUs."""

    max_steps: int = Field(default=200, ge=1, description="optimiser steps (paper: 24k stage 1, 29k stage 2)")
    batch_size: int = Field(default=4, ge=1, description="clips per worker per step")
    max_seconds: float = Field(default=15.0, gt=0, description="random crop length (spec §1)")
    lr: float = Field(default=1.5e-4, gt=0)
    warmup_steps: int = Field(default=1000, ge=0, description="capped at a tenth of max_steps")
    checkpoint_every: int = Field(default=100, ge=1)
    log_every: int = Field(default=10, ge=1)
    seed: int = 0
    sample_rate: int = Field(default=24_000, description="model rate: 24000 (paper) or 16000 (LibriLight native)")


class MLflowSettings(BaseModel):
    tracking_uri: str | None = Field(
        default=None,
        description="MLflow tracking URI; else MLFLOW_TRACKING_URI, else sqlite:///<storage_root>/mlflow.db",
    )
