"""`build_job` hands Ray Train workers locations they can open from their own working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.settings import load_settings
from flows.train import build_job


def test_relative_shard_and_storage_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(overrides={"storage_root": "data"})
    job = build_job("encoder", "data/shards", "tiny", settings)
    assert job.shards == (tmp_path / "data" / "shards").as_posix()
    assert job.checkpoint_root == (tmp_path / "data" / "checkpoints").as_posix()
    assert job.mlflow_tracking_uri == f"sqlite:///{tmp_path / 'data' / 'mlflow.db'}"
    assert job.run_name == build_job("encoder", "data/shards", "tiny", settings).run_name  # re-runs resume
