"""Driver side of a training job: MLflow run, Ray TorchTrainer, and registering what it produced.

`train(job, scaling)` pins the stage-1 encoder of a stage-2 job to a registered version, starts (or resumes) the
MLflow run for `job.run_name`, runs the stage's worker loop on Ray Train (one worker per GPU, or CPU workers with
gloo) with checkpoints under the storage root (local, or S3 through `storage.fs`), then logs the exported model
from the final checkpoint and registers it (`speechtok-encoder` / `speechtok-codec`) with the alias `candidate`.
MLflow is reached only through `storage.mlflow_io`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs
import ray
import ray.train
from ray.train.torch import TorchTrainer

from storage.fs import arrow_filesystem, open_location
from storage.mlflow_io import (
    CANDIDATE_ALIAS,
    CODEC_MODEL_NAME,
    ENCODER_MODEL_NAME,
    RegisteredVersion,
    TrackedRun,
    log_and_register,
    resumable_run,
    ui_command,
    unfinished_run,
    use_tracking_uri,
)
from training.codec import ARTIFACT_KEY as CODEC_ARTIFACT
from training.encoder_io import ARTIFACT_KEY as ENCODER_ARTIFACT
from training.job import TrainJob
from training.loops.base import EXPORT_DIR
from training.registry import pin_version

EXPERIMENTS = {"encoder": "train-encoder", "codec": "train-codec"}
ENCODER_VERSION_TAG = "speechtok.encoder"
# Not run parameters: where the run is tracked, and the run's own id.
_UNLOGGED_FIELDS = ("mlflow_run_id", "mlflow_tracking_uri")


@dataclass(frozen=True)
class Scaling:
    """How many Ray workers and what each holds."""

    workers: int = 2
    gpus_per_worker: float = 0.0
    ray_address: str | None = None  # None: RAY_ADDRESS, else a local Ray instance
    max_failures: int = 1  # restarts from the last checkpoint when a worker dies


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    registered: RegisteredVersion
    steps: int
    metrics: dict[str, float]


def default_run_name(stage: str, preset: str, sample_rate: int, shards: str, encoder_uri: str | None) -> str:
    """Stable per command line, so re-running the same command resumes the same run."""
    fingerprint = hashlib.sha1(json.dumps([shards, encoder_uri, sample_rate]).encode()).hexdigest()[:8]
    return f"{stage}-{preset}-{sample_rate // 1000}k-{fingerprint}"


def flatten(prefix: str, value: Any) -> dict[str, str]:
    """Nested config → MLflow params (`model.encoder.channels` = "[64, ...]")."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, dict):
        flat: dict[str, str] = {}
        for key, item in value.items():
            flat.update(flatten(f"{prefix}.{key}" if prefix else str(key), item))
        return flat
    return {prefix: json.dumps(value) if isinstance(value, list | tuple) else str(value)}


def pin_encoder(job: TrainJob) -> TrainJob:
    """A stage-2 job whose `encoder_uri` names a registered version (`models:/speechtok-encoder/N`), resolved
    once here on the driver: workers and their restarts all load that version, whatever the alias does later."""
    if job.stage != "codec" or not job.encoder_uri:
        return job
    use_tracking_uri(job.mlflow_tracking_uri)
    return dataclasses.replace(job, encoder_uri=pin_version(job.encoder_uri).model_uri)


def run_params(job: TrainJob) -> dict[str, str]:
    """The job as MLflow params (credentials are excluded from `S3Settings` serialisation, so never logged)."""
    return {key: value for key, value in flatten("", job).items() if key not in _UNLOGGED_FIELDS}


def _check_resumable(job: TrainJob) -> None:
    """A resumed stage-2 run must keep its encoder: refuse to continue it with another version."""
    previous = unfinished_run(EXPERIMENTS[job.stage], job.run_name)
    if previous is None or job.stage != "codec":
        return
    recorded = previous.params.get("encoder_uri")
    if recorded and recorded != job.encoder_uri:
        raise ValueError(
            f"run {job.run_name} (MLflow run {previous.run_id}) was started with the encoder {recorded}, but "
            f"--encoder now resolves to {job.encoder_uri}; pass --encoder {recorded} to resume it, or a new "
            "--run-name to train on the other encoder"
        )


def _storage(job: TrainJob) -> tuple[str, pyarrow.fs.FileSystem | None]:
    """Ray's storage path (+ filesystem for S3) for checkpoints: on S3 every worker reaches the same files."""
    location = open_location(job.checkpoint_root, job.s3)
    if location.is_local:
        Path(location.root).mkdir(parents=True, exist_ok=True)
        return location.root, None
    return location.root, arrow_filesystem(location)


def train(job: TrainJob, scaling: Scaling, extra_tags: dict[str, str] | None = None) -> TrainResult:
    """Run the job to `job.max_steps` (resuming from its latest checkpoint) and register the result."""
    from training.loops.stage1 import train_encoder_worker
    from training.loops.stage2 import train_codec_worker

    use_tracking_uri(job.mlflow_tracking_uri)
    print(f"MLflow UI: {ui_command(job.mlflow_tracking_uri)}", flush=True)
    job = pin_encoder(job)
    _check_resumable(job)
    if not ray.is_initialized():
        # log_to_driver: Ray's default (RAY_LOG_TO_DRIVER), which the CLI turns off unless --verbose (issue 11)
        ray.init(address=scaling.ray_address)
    tags = {"speechtok.stage": job.stage, "ray.address": scaling.ray_address or "local", **(extra_tags or {})}
    if job.encoder_uri:
        tags[ENCODER_VERSION_TAG] = job.encoder_uri
    storage_path, filesystem = _storage(job)
    with resumable_run(EXPERIMENTS[job.stage], job.run_name, tags, run_params(job)) as run:
        job = dataclasses.replace(job, mlflow_run_id=run.run_id)
        trainer = TorchTrainer(
            train_encoder_worker if job.stage == "encoder" else train_codec_worker,
            train_loop_config={"job": job},
            scaling_config=ray.train.ScalingConfig(
                num_workers=scaling.workers,
                use_gpu=scaling.gpus_per_worker > 0,
                resources_per_worker={"GPU": scaling.gpus_per_worker} if scaling.gpus_per_worker > 0 else None,
            ),
            run_config=ray.train.RunConfig(
                name=job.run_name,
                storage_path=storage_path,
                storage_filesystem=filesystem,
                checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
                failure_config=ray.train.FailureConfig(max_failures=scaling.max_failures),
            ),
        )
        result = trainer.fit()
        run.set_tags({"ray.train.run": f"{open_location(job.checkpoint_root, job.s3).url_of(job.run_name)}"})
        if result.checkpoint is None:
            raise RuntimeError(f"training run {job.run_name} finished without a checkpoint")
        with result.checkpoint.as_directory() as directory:
            meta = json.loads((Path(directory) / "state.json").read_text())
            registered = _register(job, run, Path(directory) / EXPORT_DIR)
    return TrainResult(run.run_id, registered, int(meta["step"]), dict(result.metrics or {}))


def _register(job: TrainJob, run: TrackedRun, export: Path) -> RegisteredVersion:
    if not export.is_dir():
        raise RuntimeError(f"{export} missing: the final checkpoint carries no exported model")
    tags = {"speechtok.run_name": job.run_name, "speechtok.shards": job.shards}
    if job.stage == "encoder":
        return log_and_register(export, ENCODER_ARTIFACT, ENCODER_MODEL_NAME, CANDIDATE_ALIAS, tags)
    _log_reconstructions(job, run, export)
    return log_and_register(
        export, CODEC_ARTIFACT, CODEC_MODEL_NAME, CANDIDATE_ALIAS, {**tags, ENCODER_VERSION_TAG: str(job.encoder_uri)}
    )


def _log_reconstructions(job: TrainJob, run: TrackedRun, export: Path) -> None:
    from training.codec import Codec
    from training.reconstruction import reconstruct_holdout, write_reconstructions

    codec = Codec.load(export)
    items = reconstruct_holdout(codec, open_location(job.shards, job.s3))
    with tempfile.TemporaryDirectory() as directory:
        write_reconstructions(items, Path(directory))
        run.log_artifacts(Path(directory), artifact_path="reconstructions")
