"""Prefect flows `train_encoder` and `train_codec`: thin wrappers that build a `TrainJob` and call Ray Train."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.settings import Settings, load_settings
from storage.fs import open_location
from storage.mlflow_io import use_tracking_uri
from training.configs import preset
from training.data import DataConfig
from training.job import Stage, TrainJob
from training.launch import Scaling, TrainResult, default_run_name, train
from training.optim import OptimConfig
from training.registry import pin_version


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
    """Resolve a stage's job from the settings (preset, steps, batch, crop, optimiser, storage).

    A stage-2 encoder alias is pinned here, on the driver, to the version it names now (recorded in the run and
    the default run name), so a re-run after the alias moved starts a new run instead of silently switching.
    """
    options = settings.train
    model = preset(model_preset, options.sample_rate)
    if stage == "codec" and encoder_uri:
        use_tracking_uri(settings.tracking_uri())
        encoder_uri = pin_version(encoder_uri).model_uri
    name = run_name or default_run_name(stage, model_preset, options.sample_rate, shards, encoder_uri)
    return TrainJob(
        stage=stage,
        # Ray Train workers run in their own directory: a relative local path must be made absolute here.
        shards=open_location(shards, settings.s3).url_of(),
        model=model,
        run_name=name,
        checkpoint_root=open_location(settings.storage_root, settings.s3).url_of("checkpoints"),
        max_steps=options.max_steps,
        data=DataConfig(batch_size=options.batch_size, max_seconds=options.max_seconds, seed=options.seed),
        # Warm-up is at most a tenth of the run, so short runs still reach the full learning rate.
        optim=OptimConfig(lr=options.lr, warmup_steps=min(options.warmup_steps, options.max_steps // 10)),
        checkpoint_every=options.checkpoint_every,
        log_every=options.log_every,
        seed=options.seed,
        mlflow_tracking_uri=settings.tracking_uri(),
        encoder_uri=encoder_uri,
        s3=settings.s3,
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
