"""Prefect flows `train_encoder` and `train_codec`: thin wrappers that build a `TrainJob` and call Ray Train."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.settings import Settings, load_settings
from training.job import Stage, TrainJob
from training.job_builder import build_train_job
from training.launch import Scaling, TrainResult, train


def build_job(
    stage: Stage,
    shards: str,
    model_preset: str,
    settings: Settings,
    *,
    encoder_uri: str | None = None,
    run_name: str | None = None,
    fail_at_step: int | None = None,
) -> TrainJob:
    """`training.job_builder.build_train_job` with the parts of `settings` it needs."""
    return build_train_job(
        stage,
        shards,
        model_preset,
        settings.train,
        storage_root=settings.storage_root,
        tracking_uri=settings.tracking_uri(),
        s3=settings.s3,
        encoder_uri=encoder_uri,
        run_name=run_name,
        fail_at_step=fail_at_step,
    )


def _run(job: TrainJob, scaling: Scaling) -> TrainResult:
    logger = get_run_logger()
    logger.info("training %s (%s) as run %s with %d workers", job.stage, job.model.name, job.run_name, scaling.workers)
    if job.encoder_uri:
        logger.info("stage-1 encoder: %s", job.encoder_uri)
    result = train(job, scaling, extra_tags={"prefect.flow_run_id": str(flow_run.get_id())})
    logger.info("registered %s (alias candidate) after %d steps", result.registered.model_uri, result.steps)
    return result


@flow(name="train_encoder")
def train_encoder(
    shards: str,
    model_preset: str,
    settings: Settings | None = None,
    scaling: Scaling | None = None,
    run_name: str | None = None,
) -> TrainResult:
    """Stage 1: JEPA encoder with DAAM on the training shards; registers `speechtok-encoder@candidate`.

    `settings` default: read by this process from its environment (how a deployment's worker runs it)."""
    job = build_job("encoder", shards, model_preset, settings or load_settings(), run_name=run_name)
    return _run(job, scaling or Scaling())


@flow(name="train_codec")
def train_codec(
    shards: str,
    encoder_uri: str,
    model_preset: str,
    settings: Settings | None = None,
    scaling: Scaling | None = None,
    run_name: str | None = None,
) -> TrainResult:
    """Stage 2: frozen encoder → FSQ → HiFi-GAN; registers `speechtok-codec@candidate`."""
    job = build_job(
        "codec", shards, model_preset, settings or load_settings(), encoder_uri=encoder_uri, run_name=run_name
    )
    return _run(job, scaling or Scaling())
