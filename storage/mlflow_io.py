"""MLflow tracking and registry access: runs, logged models, registered versions and aliases.

Nothing else in speechtok talks to MLflow directly (STYLE: storage knows where bytes live). The default
tracking store is SQLite under the storage root, which works offline; any MLflow URI can be configured.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

CODEC_MODEL_NAME = "speechtok-codec"
ENCODER_MODEL_NAME = "speechtok-encoder"
CANDIDATE_ALIAS = "candidate"
PRODUCTION_ALIAS = "production"
_MODEL_CODE = Path(__file__).resolve().parent.parent / "training" / "mlflow_codec.py"


def default_tracking_uri(storage_root: str) -> str:
    """`sqlite:///<root>/mlflow.db` for a local storage root (S3 roots need a tracking server)."""
    if storage_root.startswith("s3://"):
        raise ValueError(
            f"storage_root {storage_root} is on S3: set mlflow.tracking_uri to an MLflow server "
            "(SQLite needs a local file)"
        )
    root = Path(storage_root).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def use_tracking_uri(uri: str) -> None:
    """Point this process's MLflow client (tracking and registry) at `uri`."""
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def ensure_experiment(name: str) -> str:
    """Create the experiment if needed, with its artifacts beside a SQLite store (not in the working
    directory, MLflow's default); returns its id and makes it the active experiment."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        uri = mlflow.get_tracking_uri()
        location = None
        if uri.startswith("sqlite:///"):
            location = (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").as_uri()
        experiment_id = mlflow.create_experiment(name, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def ui_command(uri: str) -> str:
    """The command a user runs to browse the runs."""
    return f"mlflow ui --backend-store-uri {uri}"


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    model_uri: str  # models:/name/version


def log_and_register(
    directory: Path, artifact_key: str, registered_name: str, alias: str, tags: dict[str, str] | None = None
) -> RegisteredVersion:
    """Log `directory` (weights + config written by speechtok) as a pyfunc model in the active run,
    register it under `registered_name` and point `alias` at the new version."""
    with tempfile.TemporaryDirectory() as staging:
        # MLflow stores an artifact directory under its base name: stage it as `artifact_key`.
        named = Path(staging) / artifact_key
        shutil.copytree(directory, named)
        info = mlflow.pyfunc.log_model(
            name=artifact_key,
            python_model=str(_MODEL_CODE),
            artifacts={artifact_key: str(named)},
            registered_model_name=registered_name,
        )
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_registered_model_alias(registered_name, alias, version)
    for key, value in (tags or {}).items():
        client.set_model_version_tag(registered_name, version, key, value)
    return RegisteredVersion(registered_name, version, f"models:/{registered_name}/{version}")


def download_model_artifact(model_uri: str, artifact_key: str, destination: Path | None = None) -> Path:
    """Local directory holding the speechtok files of a logged/registered model (`models:/...`, `runs:/...`).

    Raises LookupError naming the URI (and how to create one) when the registry has no such model or alias.
    """
    try:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=model_uri, dst_path=None if destination is None else str(destination)
        )
    except MlflowException as error:
        raise LookupError(
            f"cannot resolve {model_uri} in {mlflow.get_tracking_uri()}: {error.message}. "
            "Train one (speechtok train-encoder / train-codec) or pass an existing model URI."
        ) from error
    path = Path(local) / "artifacts" / artifact_key
    if not path.is_dir():
        raise LookupError(f"{model_uri} has no '{artifact_key}' artifact; was it logged by speechtok?")
    return path


def resolve_version(model_uri: str) -> RegisteredVersion:
    """`models:/name@alias` or `models:/name/version` -> the concrete registered version."""
    if not model_uri.startswith("models:/"):
        raise ValueError(f"{model_uri} is not a registry URI (models:/name@alias or models:/name/version)")
    body = model_uri[len("models:/") :]
    client = MlflowClient()
    if "@" in body:
        name, alias = body.split("@", 1)
        version = client.get_model_version_by_alias(name, alias).version
    else:
        name, version = body.rsplit("/", 1)
    return RegisteredVersion(name, str(version), f"models:/{name}/{version}")
