"""Registered models: aliases pinned to versions, files shipped in memory, and `mlflow.pyfunc.load_model` of both
registered models in a process where speechtok is not importable (issue 10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from storage.mlflow_io import ENCODER_MODEL_NAME, ensure_experiment, log_and_register
from tokenize_helpers import register_tiny_codec
from training.configs import tiny
from training.encoder_io import save_encoder
from training.models.encoder import Encoder
from training.registry import fetch_codec, load_codec, pin_version

# Loads each model with MLflow alone, from a folder outside the repository and without PYTHONPATH, and reports
# where `training` was imported from: the model's own code path, not an installed speechtok.
LOAD_SCRIPT = """
import json, sys
import mlflow, numpy as np
mlflow.set_tracking_uri(sys.argv[1])
wav = np.random.default_rng(0).normal(0, 0.1, 16000 * 3).astype(np.float32)
report = {}
for name in ("speechtok-codec/1", "speechtok-encoder/1"):
    model = mlflow.pyfunc.load_model("models:/" + name)
    (output,) = model.predict([wav])
    report[name] = {"shape": list(output.shape), "dtype": str(output.dtype)}
report["training_from"] = sys.modules["training.codec"].__file__
print(json.dumps(report))
"""


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
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, f"sqlite:///{registry}/mlflow.db"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    codec, encoder = report["speechtok-codec/1"], report["speechtok-encoder/1"]
    assert codec["dtype"] == "uint16" and codec["shape"][1] == 19  # [frames, tokens_per_frame]
    assert encoder["dtype"] == "float32" and encoder["shape"] == [7, 128]  # [frames, code_dim]: 3 s at 2.5 fps
    repository = Path(__file__).resolve().parents[2]
    assert not Path(report["training_from"]).is_relative_to(repository), report["training_from"]
    assert "/code/training/" in report["training_from"]
