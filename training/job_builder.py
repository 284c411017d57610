"""A stage's `TrainJob` from the user's settings: the rules that turn settings into a job (preset, warm-up cap,
absolute locations, the stage-1 encoder pinned to a version), kept out of the Prefect flows."""

from __future__ import annotations

from storage.fs import open_location
from storage.mlflow_io import use_tracking_uri
from storage.settings import S3Settings
from training.configs import preset
from training.data import DataConfig
from training.job import Stage, TrainJob
from training.launch import default_run_name
from training.optim import OptimConfig
from training.registry import pin_version
from training.settings import TrainSettings


def build_train_job(
    stage: Stage,
    shards: str,
    model_preset: str,
    options: TrainSettings,
    *,
    storage_root: str,
    tracking_uri: str,
    s3: S3Settings,
    encoder_uri: str | None = None,
    run_name: str | None = None,
    fail_at_step: int | None = None,
) -> TrainJob:
    """Resolve a stage's job: preset, steps, batch, crop, optimiser, checkpoint location under `storage_root`.

    A stage-2 encoder alias is pinned here, on the driver, to the version it names now (recorded in the run and
    the default run name), so a re-run after the alias moved starts a new run instead of silently switching.
    """
    model = preset(model_preset, options.sample_rate)
    if stage == "codec" and encoder_uri:
        use_tracking_uri(tracking_uri)
        encoder_uri = pin_version(encoder_uri).model_uri
    name = run_name or default_run_name(stage, model_preset, options.sample_rate, shards, encoder_uri)
    return TrainJob(
        stage=stage,
        # Ray Train workers run in their own directory: a relative local path must be made absolute here.
        shards=open_location(shards, s3).url_of(),
        model=model,
        run_name=name,
        checkpoint_root=open_location(storage_root, s3).url_of("checkpoints"),
        max_steps=options.max_steps,
        data=DataConfig(batch_size=options.batch_size, max_seconds=options.max_seconds, seed=options.seed),
        # Warm-up is at most a tenth of the run, so short runs still reach the full learning rate.
        optim=OptimConfig(lr=options.lr, warmup_steps=min(options.warmup_steps, options.max_steps // 10)),
        checkpoint_every=options.checkpoint_every,
        log_every=options.log_every,
        seed=options.seed,
        mlflow_tracking_uri=tracking_uri,
        encoder_uri=encoder_uri,
        s3=s3,
        fail_at_step=fail_at_step,
    )
