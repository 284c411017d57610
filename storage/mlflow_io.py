"""MLflow tracking and registry access: runs, logged models, registered versions and aliases.

Nothing else in speechtok talks to MLflow directly (STYLE: storage knows where bytes live; issue 10: one door per
external system): the driver's runs (start, resume, params, tags, artifacts, end), the metrics Ray Train workers
log into the driver's run, and the registry. The default tracking store is SQLite under the storage root, which
works offline; `MLFLOW_TRACKING_URI` or `mlflow.tracking_uri` select a tracking server (required on a cluster).

MLflow itself (about 1.5 s to import, most of it pandas and scipy) is imported by the functions that use it, not
here: the settings import this module's names, and commands that never touch MLflow (`shard`, `query`,
`--help`) should not pay for it (issue 11).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

CODEC_MODEL_NAME = "speechtok-codec"
ENCODER_MODEL_NAME = "speechtok-encoder"
CANDIDATE_ALIAS = "candidate"
PRODUCTION_ALIAS = "production"
_TRAINING_PACKAGE = Path(__file__).resolve().parent.parent / "training"
_MODEL_CODE = _TRAINING_PACKAGE / "mlflow_codec.py"
_MAX_PARAMS_PER_CALL = 100  # MLflow's limit per log_batch
RUN_KEY_TAG = "speechtok.run_name"  # the stable name a re-run resumes by


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
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def ensure_experiment(name: str) -> str:
    """Create the experiment if needed, with its artifacts beside a SQLite store (not in the working
    directory, MLflow's default); returns its id and makes it the active experiment."""
    import mlflow

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


# What the pyfunc loader imports besides speechtok's own `training` package (shipped with the model as a code
# path), pinned to the versions that wrote the model. Declared rather than inferred: MLflow's inference guesses
# from the modules a trial load imports.
_RUNTIME_PACKAGES = ("mlflow", "torch", "torchaudio", "numpy", "PyYAML", "pydantic")


def _pip_requirements() -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in _RUNTIME_PACKAGES]


def log_and_register(
    directory: Path, artifact_key: str, registered_name: str, alias: str, tags: dict[str, str] | None = None
) -> RegisteredVersion:
    """Log `directory` (weights + config written by speechtok) as a pyfunc model in the active run,
    register it under `registered_name` and point `alias` at the new version.

    The model declares speechtok itself: the `training` package goes with it as a code path (MLflow puts it on
    `sys.path` at load time), so `mlflow.pyfunc.load_model("models:/name/N")` works where speechtok is not
    installed, given the pinned pip requirements.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as staging:
        # MLflow stores an artifact directory under its base name: stage it as `artifact_key`.
        named = Path(staging) / artifact_key
        shutil.copytree(directory, named)
        code = Path(staging) / "code" / _TRAINING_PACKAGE.name
        shutil.copytree(_TRAINING_PACKAGE, code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        info = mlflow.pyfunc.log_model(
            name=artifact_key,
            python_model=str(_MODEL_CODE),
            artifacts={artifact_key: str(named)},
            code_paths=[str(code)],
            registered_model_name=registered_name,
            pip_requirements=_pip_requirements(),
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
    import mlflow
    from mlflow.exceptions import MlflowException

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
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    if not model_uri.startswith("models:/"):
        raise ValueError(f"{model_uri} is not a registry URI (models:/name@alias or models:/name/version)")
    body = model_uri[len("models:/") :]
    client = MlflowClient()
    try:
        if "@" in body:
            name, alias = body.split("@", 1)
            version = client.get_model_version_by_alias(name, alias).version
        else:
            name, version = body.rsplit("/", 1)
            client.get_model_version(name, version)
    except MlflowException as error:
        raise LookupError(f"cannot resolve {model_uri} in {mlflow.get_tracking_uri()}: {error.message}") from error
    return RegisteredVersion(name, str(version), f"models:/{name}/{version}")


def set_model_version_tag(version: RegisteredVersion, key: str, value: str) -> None:
    """Tag a registered version (e.g. with the token table it produced)."""
    from mlflow.tracking import MlflowClient

    MlflowClient().set_model_version_tag(version.name, version.version, key, value)


def set_model_version_tags(version: RegisteredVersion, tags: dict[str, str]) -> None:
    """Set several tags on a registered version."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(version.name, version.version, key, value)


@dataclass(frozen=True)
class VersionDetails:
    """A registered version with its tags, aliases and (MLflow 3) logged-model id."""

    version: RegisteredVersion
    tags: dict[str, str]
    aliases: list[str]
    model_id: str | None


def version_details(version: RegisteredVersion) -> VersionDetails:
    """Tags, aliases and logged-model id of a registered version."""
    from mlflow.tracking import MlflowClient

    found = MlflowClient().get_model_version(version.name, version.version)
    model_id = getattr(found, "model_id", None)
    source = found.source or ""
    if not model_id and source.startswith("models:/m-"):
        # The SQLite store leaves `model_id` empty; the source of a version logged by MLflow 3 is its logged model.
        model_id = source[len("models:/") :]
    return VersionDetails(version, dict(found.tags), list(found.aliases), model_id)


def alias_version(name: str, alias: str) -> RegisteredVersion | None:
    """The version `name@alias` points at, or None when the model or the alias does not exist."""
    try:
        return resolve_version(f"models:/{name}@{alias}")
    except LookupError:
        return None


def set_alias(version: RegisteredVersion, alias: str) -> None:
    """Point `alias` of the registered model at `version` (moving it from any other version)."""
    from mlflow.tracking import MlflowClient

    MlflowClient().set_registered_model_alias(version.name, alias, version.version)


@dataclass(frozen=True)
class RunRecord:
    """A finished run's results, as read back from the tracking store."""

    run_id: str
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    start_time: int  # ms since the epoch


def find_runs(experiment: str, tags: dict[str, str]) -> list[RunRecord]:
    """FINISHED runs of `experiment` whose tags equal `tags`, newest first (empty if the experiment is absent)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        return []
    conditions = [f"tags.`{key}` = '{value}'" for key, value in tags.items()]
    conditions.append("attributes.status = 'FINISHED'")
    runs = MlflowClient().search_runs(
        [found.experiment_id], filter_string=" and ".join(conditions), order_by=["attributes.start_time DESC"]
    )
    return [
        RunRecord(
            run.info.run_id, dict(run.data.metrics), dict(run.data.params), dict(run.data.tags), run.info.start_time
        )
        for run in runs
    ]


@dataclass(frozen=True)
class DatasetInput:
    """Lineage of a run's input as metadata only, so logging it costs the same for minutes or 60k hours of audio:
    where it is (the URL users would pass again), a digest that changes whenever its content does, its row count,
    and a few of its rows, from which MLflow records the column names and types."""

    source: str
    name: str
    digest: str
    num_rows: int
    sample: pd.DataFrame
    context: str = "input"


def _metadata_dataset(dataset: DatasetInput) -> Any:
    """An MLflow dataset of metadata only (`MetaDataset`), with the row count as the profile MLflow shows."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.models import infer_signature

    class MetadataDataset(MetaDataset):
        @property
        def profile(self) -> dict[str, int]:
            return {"num_rows": dataset.num_rows}

        def to_dict(self) -> dict[str, str]:
            return {**super().to_dict(), "profile": json.dumps(self.profile)}

    schema = infer_signature(dataset.sample).inputs
    return MetadataDataset(resolve_dataset_source(dataset.source), dataset.name, dataset.digest, schema)


class TrackedRun:
    """The active MLflow run of a pipeline job; pipeline code logs through this instead of importing MLflow."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def log_params(self, params: Mapping[str, object]) -> None:
        import mlflow

        items = [(key, str(value)) for key, value in params.items()]
        for start in range(0, len(items), _MAX_PARAMS_PER_CALL):
            mlflow.log_params(dict(items[start : start + _MAX_PARAMS_PER_CALL]))

    def log_metrics(self, metrics: dict[str, float], model_id: str | None = None) -> None:
        """Log run metrics; with `model_id` (a registered version's logged model, MLflow 3) they are also linked
        to that model, so the registry page of the version shows them."""
        import mlflow

        mlflow.log_metrics(metrics, model_id=model_id)

    def log_artifacts(self, directory: Path, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifacts(str(directory), artifact_path=artifact_path)

    def set_tags(self, tags: dict[str, str]) -> None:
        import mlflow

        mlflow.set_tags(tags)

    def log_input(self, dataset: DatasetInput) -> None:
        import mlflow

        mlflow.log_input(_metadata_dataset(dataset), context=dataset.context)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(str(path), artifact_path=artifact_path)


@contextmanager
def tracked_run(experiment: str, run_name: str, tags: dict[str, str] | None = None) -> Iterator[TrackedRun]:
    """Start a run in `experiment` (created if needed); it ends FINISHED, or FAILED when the body raises."""
    import mlflow

    ensure_experiment(experiment)
    with mlflow.start_run(run_name=run_name, tags=tags) as run:
        yield TrackedRun(run.info.run_id)


def unfinished_run(experiment: str, run_key: str) -> RunRecord | None:
    """The newest run of `experiment` tagged `speechtok.run_name = run_key` that did not finish (None: none)."""
    import mlflow
    from mlflow.tracking import MlflowClient

    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = MlflowClient().search_runs(
        [found.experiment_id],
        filter_string=f"tags.`{RUN_KEY_TAG}` = '{run_key}' and attributes.status != 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    run = runs[0]
    return RunRecord(
        run.info.run_id, dict(run.data.metrics), dict(run.data.params), dict(run.data.tags), run.info.start_time
    )


@contextmanager
def resumable_run(
    experiment: str, run_key: str, tags: dict[str, str], params: Mapping[str, object]
) -> Iterator[TrackedRun]:
    """Resume the unfinished run of `experiment` named `run_key` (a re-run of a crashed job continues its run),
    or start one with `tags` and `params`; it ends FINISHED, or FAILED when the body raises."""
    import mlflow

    ensure_experiment(experiment)
    previous = unfinished_run(experiment, run_key)
    if previous is not None:
        started = mlflow.start_run(run_id=previous.run_id)
    else:
        started = mlflow.start_run(run_name=run_key, tags={RUN_KEY_TAG: run_key, **tags})
    with started as run:
        tracked = TrackedRun(run.info.run_id)
        if previous is None:
            tracked.log_params(params)
        yield tracked


class RunMetrics:
    """Metric logging into an existing run by id, from another process (a Ray Train worker): the driver owns the
    run's lifecycle, the chief worker streams its step metrics into it."""

    def __init__(self, tracking_uri: str, run_id: str) -> None:
        from mlflow.tracking import MlflowClient

        self.run_id = run_id
        self.client = MlflowClient(tracking_uri=tracking_uri)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(key, float(v), now, step) for key, v in metrics.items()])
