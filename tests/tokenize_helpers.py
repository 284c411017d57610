"""Shared builders for the tokenization tests: a registered tiny codec in a temporary MLflow store."""

from __future__ import annotations

from pathlib import Path

import mlflow
import torch

from storage.mlflow_io import CODEC_MODEL_NAME, RegisteredVersion, ensure_experiment, log_and_register, use_tracking_uri
from training.codec import Codec
from training.configs import tiny


def register_tiny_codec(root: Path, alias: str = "production", seed: int = 0) -> RegisteredVersion:
    """Save a randomly initialised `tiny` codec and register it as `speechtok-codec@{alias}` in a SQLite
    MLflow store under `root` (which becomes this process's tracking URI)."""
    use_tracking_uri(f"sqlite:///{root}/mlflow.db")
    ensure_experiment("codec-fixtures")
    torch.manual_seed(seed)
    directory = Codec.from_config(tiny()).save(root / "codec")
    with mlflow.start_run():
        return log_and_register(directory, "codec", CODEC_MODEL_NAME, alias)
