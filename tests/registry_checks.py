"""Load registered models with MLflow alone, in a clean process: the check that a registered speechtok model
declares everything it needs (its code path and pip requirements), shared by the registry and cluster tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Loads each model URI with `mlflow.pyfunc.load_model`, encodes 3 s of noise, and reports the output shapes and
# where speechtok's `training` package was imported from.
_LOAD_SCRIPT = """
import json, sys
import mlflow, numpy as np
wav = np.random.default_rng(0).normal(0, 0.1, 16000 * 3).astype(np.float32)
report = {}
for uri in sys.argv[1:]:
    (output,) = mlflow.pyfunc.load_model(uri).predict([wav])
    report[uri] = {"shape": list(output.shape), "dtype": str(output.dtype)}
report["training_from"] = sys.modules["training.codec"].__file__
print(json.dumps(report))
"""
_ISOLATED_OUT = ("PYTHONPATH", "MLFLOW_TRACKING_URI")


def load_with_mlflow_alone(tracking_uri: str, model_uris: list[str], cwd: Path, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """Run the load script outside the repository (`cwd`) without PYTHONPATH; returns its JSON report."""
    clean = {k: v for k, v in (env or os.environ).items() if k not in _ISOLATED_OUT}
    clean["MLFLOW_TRACKING_URI"] = tracking_uri
    result = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, *model_uris],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_loaded_from_model_code(report: dict) -> None:  # type: ignore[type-arg]
    """`training` came from the model's own code path, not from the repository or an installed speechtok."""
    repository = Path(__file__).resolve().parents[1]
    origin = Path(report["training_from"])
    assert not origin.is_relative_to(repository), origin
    assert "/code/training/" in origin.as_posix(), origin
