"""Driver side of a training job: MLflow run, Ray TorchTrainer, and registering what it produced.

`train(job, scaling)` starts (or resumes) the MLflow run for `job.run_name`, runs the stage's worker loop on
Ray Train (one worker per GPU, or CPU workers with gloo), then logs the exported model from the final
checkpoint and registers it (`speechtok-encoder` / `speechtok-codec`) with the alias `candidate`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import ray
import ray.train
from ray.train.torch import TorchTrainer

from storage.fs import open_location
from storage.mlflow_io import (
    CANDIDATE_ALIAS,
    CODEC_MODEL_NAME,
    ENCODER_MODEL_NAME,
    RegisteredVersion,
    ensure_experiment,
    log_and_register,
    ui_command,
    use_tracking_uri,
)
from training.job import TrainJob
from training.loops.base import EXPORT_DIR
from training.mlflow_codec import CODEC_ARTIFACT, ENCODER_ARTIFACT

EXPERIMENTS = {"encoder": "train-encoder", "codec": "train-codec"}
RUN_NAME_TAG = "speechtok.run_name"


@dataclass(frozen=True)
class Scaling:
    """How many Ray workers and what each holds."""

    workers: int = 2
    gpus_per_worker: float = 0.0
    ray_address: str | None = None  # None: the running Ray instance, else a local one
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


def _start_run(job: TrainJob, tags: dict[str, str]) -> str:
    """Resume the unfinished MLflow run of this job name, or start a new one; returns its id."""
    experiment_id = ensure_experiment(EXPERIMENTS[job.stage])
    previous = mlflow.search_runs(
        [experiment_id],
        filter_string=f"tags.`{RUN_NAME_TAG}` = '{job.run_name}' and attributes.status != 'FINISHED'",
        output_format="list",
        max_results=1,
    )
    if previous:
        return mlflow.start_run(run_id=previous[0].info.run_id).info.run_id
    run = mlflow.start_run(run_name=job.run_name, tags={RUN_NAME_TAG: job.run_name, **tags})
    params = {k: v for k, v in flatten("", job).items() if k not in ("mlflow_run_id", "mlflow_tracking_uri")}
    items = list(params.items())
    for start in range(0, len(items), 100):  # MLflow takes at most 100 params per call
        mlflow.log_params(dict(items[start : start + 100]))
    return run.info.run_id


def _storage(job: TrainJob) -> tuple[str, Any]:
    """Ray's storage path (+ pyarrow filesystem for S3 endpoints) for checkpoints."""
    location = open_location(job.checkpoint_root, job.s3)
    if location.is_local:
        Path(location.root).mkdir(parents=True, exist_ok=True)
        return location.root, None
    import pyarrow.fs

    endpoint = job.s3.endpoint_url
    filesystem = pyarrow.fs.S3FileSystem(
        endpoint_override=endpoint.split("://", 1)[-1] if endpoint else None,
        scheme=endpoint.split("://", 1)[0] if endpoint else "https",
        access_key=job.s3.access_key_id,
        secret_key=job.s3.secret_access_key,
        region=job.s3.region,
    )
    return location.root, filesystem


def train(job: TrainJob, scaling: Scaling, extra_tags: dict[str, str] | None = None) -> TrainResult:
    """Run the job to `job.max_steps` (resuming from its latest checkpoint) and register the result."""
    from training.loops.stage1 import train_encoder_worker
    from training.loops.stage2 import train_codec_worker

    use_tracking_uri(job.mlflow_tracking_uri)
    print(f"MLflow UI: {ui_command(job.mlflow_tracking_uri)}", flush=True)
    if not ray.is_initialized():
        ray.init(address=scaling.ray_address, log_to_driver=True)
    tags = {"speechtok.stage": job.stage, "ray.address": scaling.ray_address or "local", **(extra_tags or {})}
    run_id = _start_run(job, tags)
    job = dataclasses.replace(job, mlflow_run_id=run_id)
    storage_path, filesystem = _storage(job)
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
    try:
        result = trainer.fit()
        mlflow.set_tag("ray.train.run", f"{storage_path}/{job.run_name}")
        if result.checkpoint is None:
            raise RuntimeError(f"training run {job.run_name} finished without a checkpoint")
        with result.checkpoint.as_directory() as directory:
            meta = json.loads((Path(directory) / "state.json").read_text())
            registered = _register(job, Path(directory) / EXPORT_DIR)
        mlflow.end_run("FINISHED")
    except BaseException:
        mlflow.end_run("FAILED")
        raise
    return TrainResult(run_id, registered, int(meta["step"]), dict(result.metrics or {}))


def _register(job: TrainJob, export: Path) -> RegisteredVersion:
    if not export.is_dir():
        raise RuntimeError(f"{export} missing: the final checkpoint carries no exported model")
    tags = {"speechtok.run_name": job.run_name, "speechtok.shards": job.shards}
    if job.stage == "encoder":
        return log_and_register(export, ENCODER_ARTIFACT, ENCODER_MODEL_NAME, CANDIDATE_ALIAS, tags)
    _log_reconstructions(job, export)
    return log_and_register(
        export, CODEC_ARTIFACT, CODEC_MODEL_NAME, CANDIDATE_ALIAS, {**tags, "speechtok.encoder": str(job.encoder_uri)}
    )


def _log_reconstructions(job: TrainJob, export: Path) -> None:
    from training.codec import Codec
    from training.reconstruction import reconstruct_holdout, write_reconstructions

    codec = Codec.load(export)
    items = reconstruct_holdout(codec, open_location(job.shards, job.s3))
    with tempfile.TemporaryDirectory() as directory:
        write_reconstructions(items, Path(directory))
        mlflow.log_artifacts(directory, artifact_path="reconstructions")
