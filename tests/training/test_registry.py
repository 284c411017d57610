"""Registered models: aliases pinned to versions, files shipped in memory, and `mlflow.pyfunc.load_model` of both
registered models in a process where speechtok is not importable (issue 10)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from registry_checks import assert_loaded_from_model_code, load_with_mlflow_alone
from storage.mlflow_io import ENCODER_MODEL_NAME, ensure_experiment, log_and_register
from tokenize_helpers import register_tiny_codec
from training.configs import tiny
from training.encoder_io import save_encoder
from training.models.encoder import Encoder
from training.registry import fetch_codec, load_codec, pin_version


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("registry")
    register_tiny_codec(root, alias="production")
    config = tiny(sample_rate=16_000)
    torch.manual_seed(0)
    directory = save_encoder(Encoder(config.encoder), config, root / "encoder", step=0)
    ensure_experiment("encoder-fixtures")
    with mlflow.start_run():
        log_and_register(directory, "encoder", ENCODER_MODEL_NAME, "candidate")
    return root


def test_aliases_resolve_once_to_versions_and_files_travel_in_memory(registry: Path) -> None:
    assert pin_version("models:/speechtok-codec@production").model_uri == "models:/speechtok-codec/1"
    files = fetch_codec("models:/speechtok-codec@production")
    assert files.version.model_uri == "models:/speechtok-codec/1"
    assert {"codec.json", "config.yaml", "weights.pt"} <= set(files.files)
    loaded = load_codec("models:/speechtok-codec/1")
    wav = np.random.default_rng(1).normal(0, 0.1, 24_000).astype(np.float32)
    assert np.array_equal(files.load_codec().encode(wav, 24_000).tokens, loaded.codec.encode(wav, 24_000).tokens)
    with pytest.raises(LookupError, match="speechtok-codec@staging"):
        pin_version("models:/speechtok-codec@staging")


def test_registered_models_load_with_mlflow_alone(registry: Path, tmp_path: Path) -> None:
    codec_uri, encoder_uri = "models:/speechtok-codec/1", "models:/speechtok-encoder/1"
    report = load_with_mlflow_alone(f"sqlite:///{registry}/mlflow.db", [codec_uri, encoder_uri], tmp_path)
    codec, encoder = report[codec_uri], report[encoder_uri]
    assert codec["dtype"] == "uint16" and codec["shape"][1] == 19  # [frames, tokens_per_frame]
    assert encoder["dtype"] == "float32" and encoder["shape"] == [7, 128]  # [frames, code_dim]: 3 s at 2.5 fps
    assert_loaded_from_model_code(report)


def test_stage2_pins_its_encoder_once_and_never_resumes_with_another(registry: Path) -> None:
    """`--encoder …@candidate` is resolved on the driver; a resumed run refuses a different encoder (issue 10)."""
    from storage.mlflow_io import resumable_run
    from training.job import TrainJob
    from training.launch import EXPERIMENTS, _check_resumable, pin_encoder, run_params

    job = TrainJob(
        stage="codec",
        shards="s3://bucket/shards",
        model=tiny(sample_rate=16_000),
        run_name="codec-pinned",
        checkpoint_root="s3://bucket/checkpoints",
        max_steps=1,
        mlflow_tracking_uri=f"sqlite:///{registry}/mlflow.db",
        encoder_uri="models:/speechtok-encoder@candidate",
    )
    pinned = pin_encoder(job)
    assert pinned.encoder_uri == "models:/speechtok-encoder/1"
    with pytest.raises(RuntimeError), resumable_run(EXPERIMENTS["codec"], job.run_name, {}, run_params(pinned)):
        raise RuntimeError("the run crashes, unfinished")
    _check_resumable(pinned)  # same encoder: resumes
    other = dataclasses.replace(pinned, encoder_uri="models:/speechtok-encoder/2")
    with pytest.raises(ValueError, match=r"started with the encoder models:/speechtok-encoder/1"):
        _check_resumable(other)
