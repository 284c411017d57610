"""`speechtok evaluate` on real sharded sample audio with a registered tiny codec, checked in MLflow."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from evaluation_helpers import version_tags
from flows.cli import app
from pipeline.evaluate.config import SIGNAL_METRICS
from storage.mlflow_io import use_tracking_uri, version_details
from tokenize_helpers import register_tiny_codec
from training.codec import Codec
from training.configs import tiny

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def evaluated(sharded_sample_corpus: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("evaluate-mlflow")
    version = register_tiny_codec(root, alias="candidate")
    model, shards = "models:/speechtok-codec@candidate", str(sharded_sample_corpus)
    # 4 s per clip keeps the random tiny codec's CPU decoding short; the metrics are the same code either way.
    args = ["evaluate", model, "--shards", shards, "--max-seconds", "4", "--storage-root", str(root)]
    result = CliRunner().invoke(app, args)
    use_tracking_uri(f"sqlite:///{root}/mlflow.db")
    return root, version, result


def test_command_prints_the_summary(evaluated) -> None:  # type: ignore[no-untyped-def]
    _, version, result = evaluated
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"evaluate {version.model_uri}" in text and "pesq_wb" in text and "bitrate" in text


def test_run_holds_every_metric_for_every_holdout_segment(evaluated, sharded_sample_corpus: Path) -> None:  # type: ignore[no-untyped-def]
    _, version, _ = evaluated
    run = MlflowClient().get_run(version_tags(version)["speechtok.eval.run_id"])
    segments = pq.read_table(sharded_sample_corpus / "manifest" / "segments.parquet").to_pylist()
    holdout = [row for row in segments if row["holdout"]]
    metrics = run.data.metrics
    assert metrics["clips"] == len(holdout) > 0
    # A random-weight codec's output is rarely voiced where the speech is, so its F0 RMSE may be missing (with
    # the reason in per_clip.csv); every other metric has a finite value on every clip.
    for name in SIGNAL_METRICS:
        if name.startswith("f0_rmse") and name not in metrics:
            assert metrics[f"{name}.missing"] == len(holdout)
            continue
        assert math.isfinite(metrics[name]), name
        assert metrics[f"{name}.missing"] == 0, name
    assert metrics["mel_l1"] > 0 and metrics["stoi"] < 1 and 1.0 <= metrics["pesq_wb"] < 4.64
    codec = Codec.from_config(tiny())
    expected_bitrate = codec.frame_rate * sum(math.log2(m + 1) for m in codec.packer.group_max)
    assert metrics["bitrate_bps"] == pytest.approx(expected_bitrate)
    assert 0 <= metrics["tokens.entropy_bits_mean"] <= math.log2(codec.vocab_size)
    assert 0 < metrics["tokens.unused_code_fraction"] < 1
    assert f"tokens.group_{codec.tokens_per_frame - 1:02d}.entropy_bits" in metrics
    assert run.data.tags["speechtok.model_version"] == version.version
    assert run.data.tags["speechtok.job"] == "evaluate"
    assert run.data.params["resolved_model_uri"] == version.model_uri


def test_report_artifacts_are_logged(evaluated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, version, _ = evaluated
    run_id = version_tags(version)["speechtok.eval.run_id"]
    client = MlflowClient()
    names = {Path(item.path).name for item in client.list_artifacts(run_id, "report")}
    assert names == {"report.md", "per_clip.csv", "metric_distributions.png", "median_clip_spectrogram.png"}
    local = Path(client.download_artifacts(run_id, "report", str(tmp_path)))
    report = (local / "report.md").read_text()
    assert f"# Evaluation of {version.model_uri}" in report and "| pesq_wb | higher |" in report
    assert (local / "median_clip_spectrogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (local / "per_clip.csv").read_text().splitlines()
    assert rows[0].startswith("key,speaker,duration_s,mel_l1")
    # One row per clip and system: speechtok and the three Codec2 baselines (issue 13).
    assert len(rows) - 1 == 4 * int(client.get_run(run_id).data.metrics["clips"])
    for system in ("| speechtok | 640 |", "| codec2_700c | 700 |", "| codec2_1200 | 1200 |", "| codec2_2400 | 2400 |"):
        assert system in report
    assert "*runtime, s per audio min*" in report and "abx: abx skipped: no phone timings" in report


def test_codec2_rows_are_measured_end_to_end(evaluated) -> None:  # type: ignore[no-untyped-def]
    _, version, _ = evaluated
    metrics = MlflowClient().get_run(version_tags(version)["speechtok.eval.run_id"]).data.metrics
    for name in ("codec2_700c", "codec2_1200", "codec2_2400"):
        for metric in ("pesq_wb", "stoi", "dwer", "speaker_sim", "dnsmos_ovrl", "mcd"):
            assert math.isfinite(metrics[f"system.{name}.{metric}"]), (name, metric)
    assert metrics["system.codec2_700c.bitrate_bps"] == 700
    assert "wer" not in metrics and metrics["wer.missing"] == metrics["clips"]  # no --corpus: text unknown
    assert metrics["dwer"] >= 0 and -1 <= metrics["speaker_sim"] <= 1
    assert metrics["runtime.asr.s_per_audio_min"] > 0


def test_version_tags_name_the_run_set_and_headline_metrics(evaluated) -> None:  # type: ignore[no-untyped-def]
    _, version, _ = evaluated
    tags = version_tags(version)
    run = MlflowClient().get_run(tags["speechtok.eval.run_id"])
    assert tags["speechtok.eval.set"] == run.data.tags["speechtok.eval_set"]
    assert len(tags["speechtok.eval.set"]) == 16
    for name in (*SIGNAL_METRICS, "bitrate_bps", "tokens.entropy_bits_mean"):
        if name not in run.data.metrics:  # F0 RMSE of a random codec (see above)
            assert f"speechtok.eval.{name}" not in tags
            continue
        assert float(tags[f"speechtok.eval.{name}"]) == pytest.approx(run.data.metrics[name], rel=1e-5), name
    model_id = version_details(version).model_id
    assert model_id  # MLflow 3: the evaluation metrics are linked to the version's logged model
    linked = {metric.key: metric.value for metric in MlflowClient().get_logged_model(model_id).metrics or []}
    assert np.isclose(linked["mel_l1"], run.data.metrics["mel_l1"])
