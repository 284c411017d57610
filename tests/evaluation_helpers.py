"""Shared builders for the evaluation/promotion tests: registry versions and evaluation runs with chosen metrics."""

from __future__ import annotations

from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.evaluate.tracking import run_name, run_tags
from storage.mlflow_io import CODEC_MODEL_NAME, RegisteredVersion, set_alias, tracked_run, use_tracking_uri

# An evaluation that every gated metric of the default GateConfig can be compared on.
BASE_METRICS = {
    "mel_l1": 1.0,
    "mr_stft": 2.0,
    "si_sdr": 5.0,
    "stoi": 0.8,
    "pesq_wb": 2.5,
    "f0_rmse_hz": 10.0,
    "f0_rmse_cents": 60.0,
    "voicing_error": 0.1,
}
EVAL_SET = "0123456789abcdef"


def use_registry(root: Path) -> str:
    """Point MLflow at `sqlite:///{root}/mlflow.db` (what `--storage-root root` resolves to); returns the URI."""
    uri = f"sqlite:///{root.resolve()}/mlflow.db"
    use_tracking_uri(uri)
    return uri


def register_version(alias: str | None = None, name: str = CODEC_MODEL_NAME) -> RegisteredVersion:
    """A registry version without weights (the gate never loads the model), optionally with an alias."""
    client = MlflowClient()
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    version = client.create_model_version(name, source="file:///not-a-model", run_id=None)
    registered = RegisteredVersion(name, str(version.version), f"models:/{name}/{version.version}")
    if alias is not None:
        set_alias(registered, alias)
    return registered


def log_evaluation_run(
    version: RegisteredVersion, metrics: dict[str, float], eval_set: str = EVAL_SET, shards: str = "/shards"
) -> str:
    """A finished evaluation run of `version` as `evaluate_model` tags it, with the given aggregate metrics."""
    with tracked_run("evaluate", run_name(version), tags=run_tags(version, eval_set, shards)) as run:
        run.log_metrics(metrics)
    return run.run_id


def version_tags(version: RegisteredVersion) -> dict[str, str]:
    return dict(MlflowClient().get_model_version(version.name, version.version).tags)


def alias_target(alias: str, name: str = CODEC_MODEL_NAME) -> str | None:
    client = MlflowClient()
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:  # the alias does not exist
        return None
