"""Stage 1 and stage 2 on Ray Train (2 CPU workers, gloo) from real shards, tracked and registered in MLflow."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from flows.settings import load_settings
from flows.train import build_job, train_codec, train_encoder
from storage.mlflow_io import CODEC_MODEL_NAME, ENCODER_MODEL_NAME, download_model_artifact, use_tracking_uri
from training.codec import Codec
from training.encoder_io import load_encoder
from training.launch import Scaling, train

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api", "ray_local")]

STEPS = 4


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("train-root")
    return load_settings(
        None,
        {
            "storage_root": str(root),
            "train": {"max_steps": STEPS, "batch_size": 2, "max_seconds": 2.4, "checkpoint_every": 2, "log_every": 1},
        },
    )


@pytest.fixture(scope="module")
def encoder_result(settings, sharded_sample_corpus: Path):  # type: ignore[no-untyped-def]
    return train_encoder(str(sharded_sample_corpus), "tiny", settings, Scaling(workers=2), None)


def metric_steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def test_stage1_tracks_params_metrics_and_registers_the_encoder(encoder_result, settings) -> None:  # type: ignore[no-untyped-def]
    use_tracking_uri(settings.tracking_uri())
    client = MlflowClient()
    run = client.get_run(encoder_result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model.encoder.code_dim"] == "128"
    assert run.data.params["data.batch_size"] == "2"
    assert run.data.params["optim.betas"] == "[0.8, 0.99]"
    for key in ("loss", "lr", "grad_norm", "target_std_mean", "daam_gate0_mean", "samples_per_s", "step_time_s"):
        assert metric_steps(client, run.info.run_id, key) == list(range(1, STEPS + 1)), key
    assert "prefect.flow_run_id" in run.data.tags and "ray.train.run" in run.data.tags
    version = client.get_model_version_by_alias(ENCODER_MODEL_NAME, "candidate")
    assert version.run_id == run.info.run_id
    encoder, config = load_encoder(download_model_artifact(f"models:/{ENCODER_MODEL_NAME}@candidate", "encoder"))
    assert config.name == "tiny" and encoder.hop == 9600


def test_interrupted_run_resumes_from_its_checkpoint(settings, sharded_sample_corpus: Path) -> None:  # type: ignore[no-untyped-def]
    job = build_job("encoder", str(sharded_sample_corpus), "tiny", settings, run_name="resume-check")
    crashing = dataclasses.replace(job, fail_at_step=3)  # after the step-2 checkpoint
    with pytest.raises(Exception, match=r"(?i)worker|fail"):
        train(crashing, Scaling(workers=2, max_failures=0))
    # Resumed on one worker instead of two: the data positions are re-partitioned, not dropped (issue 12).
    result = train(job, Scaling(workers=1, max_failures=0))
    assert result.steps == STEPS
    client = MlflowClient()
    steps = metric_steps(client, result.run_id, "loss")
    # Same MLflow run, continued: steps 1-2 were logged once (not redone from zero), 3 before and after the crash.
    assert steps.count(1) == 1 and steps.count(2) == 1
    assert steps.count(STEPS) == 1


def test_a_killed_worker_is_restarted_from_the_last_checkpoint(settings, sharded_sample_corpus: Path) -> None:  # type: ignore[no-untyped-def]
    job = build_job("encoder", str(sharded_sample_corpus), "tiny", settings, run_name="worker-killed", fail_at_step=3)
    result = train(job, Scaling(workers=2, max_failures=1))
    assert result.steps == STEPS
    steps = metric_steps(MlflowClient(), result.run_id, "loss")
    assert steps.count(1) == 1 and steps.count(STEPS) == 1


def test_stage2_registers_a_codec_that_encodes_and_decodes(
    encoder_result, settings, sharded_sample_corpus: Path
) -> None:  # type: ignore[no-untyped-def]
    result = train_codec(
        str(sharded_sample_corpus),
        f"models:/{ENCODER_MODEL_NAME}@candidate",
        "tiny",
        settings,
        Scaling(workers=2),
        None,
    )
    use_tracking_uri(settings.tracking_uri())
    client = MlflowClient()
    run = client.get_run(result.run_id)
    for key in ("loss", "stft", "waveform_l1", "disc_loss", "lr", "grad_norm", "samples_per_s"):
        assert metric_steps(client, run.info.run_id, key) == list(range(1, STEPS + 1)), key
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "reconstructions")]
    assert any(p.endswith("_decoded.wav") for p in artifacts) and any(p.endswith("_spectrogram.png") for p in artifacts)
    version = client.get_model_version_by_alias(CODEC_MODEL_NAME, "candidate")
    assert version.run_id == run.info.run_id

    codec = Codec.load(download_model_artifact(f"models:/{CODEC_MODEL_NAME}@candidate", "codec"))
    audio = np.random.default_rng(0).normal(0, 0.1, 16_000 * 3).astype(np.float32)
    encoded = codec.encode(audio, 16_000)
    assert encoded.tokens.shape == (8, 19) and encoded.tokens.dtype == np.uint16  # 3 s → ⌈7.5⌉ frames
    decoded = codec.decode(encoded.tokens, encoded.num_samples, sample_rate=16_000)
    assert decoded.shape[-1] == audio.shape[0]

    pyfunc = mlflow.pyfunc.load_model(f"models:/{CODEC_MODEL_NAME}@candidate")
    tokens = pyfunc.predict([audio[:24_000]])
    assert tokens[0].shape[1] == 19
