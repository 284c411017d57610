"""The tokenization job through Ray Data on the session's local Ray (2 CPUs), tracked in a temporary MLflow."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient

from pipeline.tokenize import TokenizeConfig, tokenize_shards, verify_tokens
from pipeline.tokenize import job as job_module
from pipeline.tokenize.table import POLICY_METADATA_KEY, TOKENS_SCHEMA, file_policies
from storage.mlflow_io import CODEC_MODEL_NAME, use_tracking_uri
from tokenize_helpers import register_tiny_codec
from training.codec import Codec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]

# Two 0.5-CPU actors leave a CPU for the decoding tasks on the 2-CPU session cluster. Small batches on one actor,
# large ones on two: under the canonical encoding policy the token files must not differ (issue 12).
# Two shards per Ray Data execution: the run is split into several executions (issue 11), with the same files.
ONE = TokenizeConfig(workers=1, cpus_per_worker=0.5, decode_cpus=0.5, batch_seconds=6, shards_per_execution=2)
TWO = TokenizeConfig(workers=2, cpus_per_worker=0.5, decode_cpus=0.5, batch_seconds=90)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tokenize-mlflow")
    register_tiny_codec(root)
    return root


@pytest.fixture(scope="module")
def table(registry: Path, sharded_sample_corpus: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    use_tracking_uri(f"sqlite:///{registry}/mlflow.db")
    out = tmp_path_factory.mktemp("tokens")
    summary = tokenize_shards(str(sharded_sample_corpus), str(out), config=TWO)
    return out, summary


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_table_has_the_schema_and_one_row_per_segment(table, sharded_sample_corpus: Path) -> None:  # type: ignore[no-untyped-def]
    out, summary = table
    segments = pq.read_table(sharded_sample_corpus / "manifest" / "segments.parquet")
    shards = pq.read_table(sharded_sample_corpus / "manifest" / "shards.parquet")
    files = sorted((out / "model_version=1").rglob("*.parquet"))
    assert len(files) == shards.num_rows == summary.shards == summary.shards_written
    assert {f.parent.name for f in files} == {f"split={s}" for s in set(shards.column("split").to_pylist())}
    for file in files:
        assert pq.read_schema(file).remove_metadata() == TOKENS_SCHEMA
        chunks = pq.ParquetFile(file).metadata.row_group(0)
        tokens_chunk = next(
            chunks.column(i) for i in range(chunks.num_columns) if chunks.column(i).path_in_schema.startswith("tokens")
        )
        assert "BYTE_STREAM_SPLIT" in tokens_chunk.encodings and tokens_chunk.compression == "ZSTD"
        keys = pq.read_table(file, columns=["utterance_id"]).column("utterance_id").to_pylist()
        assert keys == sorted(keys)
    rows = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    assert sorted(rows.column("utterance_id").to_pylist()) == sorted(segments.column("key").to_pylist())
    assert set(rows.column("model_version").to_pylist()) == {1}
    assert summary.rejected == [] and summary.segments == segments.num_rows
    assert verify_tokens(str(out), str(sharded_sample_corpus)).ok


def test_tokens_decode_to_audio_of_each_rows_duration(table, registry: Path) -> None:  # type: ignore[no-untyped-def]
    out, summary = table
    codec = Codec.load(registry / "codec")
    rows = ds.dataset(out, format="parquet", partitioning="hive").to_table().slice(0, 3).to_pylist()
    for row in rows:
        tokens = np.asarray(row["tokens"], dtype=np.uint16).reshape(row["n_frames"], row["tokens_per_frame"])
        assert row["n_frames"] == int(np.ceil(row["duration_s"] * codec.frame_rate - 1e-9))
        audio = codec.decode(tokens, row["num_samples"], row["sample_rate"])
        assert audio.shape[-1] == row["num_samples"]
        assert abs(audio.shape[-1] / row["sample_rate"] - row["duration_s"]) < 1e-3
    assert summary.tokens_per_audio_second >= codec.tokens_per_second


def test_manifest_and_mlflow_lineage(table, registry: Path, sharded_sample_corpus: Path) -> None:  # type: ignore[no-untyped-def]
    out, summary = table
    use_tracking_uri(f"sqlite:///{registry}/mlflow.db")
    manifest = json.loads((out / "model_version=1" / "_manifest.json").read_text())
    assert manifest["model"]["resolved_uri"] == f"models:/{CODEC_MODEL_NAME}/1"
    assert manifest["totals"]["rows"] == summary.segments and len(manifest["files"]) == summary.shards
    # One encoding policy, recorded per file and for the table (issue 12).
    [policy] = manifest["encoding_policies"]
    assert policy["device_type"] == "cpu" and policy["batch_chunks"] == 1 and policy["cpu_threads"] == 1
    assert all(entry["encoding_policies"] == [policy] for entry in manifest["files"])
    client = MlflowClient()
    run = client.get_run(summary.run_id)
    assert run.data.params["model_version"] == "1" and run.data.params["config.workers"] == "2"
    assert run.data.metrics["segments"] == summary.segments and run.data.metrics["rejected_shards"] == 0
    [lineage] = run.inputs.dataset_inputs  # the manifest's location, digest, count and schema, not its rows
    shards_manifest = sharded_sample_corpus / "manifest" / "shards.parquet"
    assert lineage.dataset.name == "segments" and lineage.dataset.source_type == "local"
    assert lineage.dataset.digest == hashlib.sha256(shards_manifest.read_bytes()).hexdigest()[:16]
    assert json.loads(lineage.dataset.profile) == {"num_rows": summary.segments}
    assert {"key", "shard", "duration_s"} <= {c["name"] for c in json.loads(lineage.dataset.schema)["mlflow_colspec"]}
    assert [a.path for a in client.list_artifacts(run.info.run_id, "token_table")] == ["token_table/_manifest.json"]
    version = client.get_model_version(CODEC_MODEL_NAME, "1")
    assert version.tags["speechtok.token_table"] == summary.table_url


def test_one_worker_gives_identical_files_and_resume_reuses_them(table, sharded_sample_corpus, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    out, _ = table
    single = tmp_path / "one"
    real_write = job_module.write_shard_table
    calls = {"n": 0}

    def fail_after_two(*args, **kwargs):  # type: ignore[no-untyped-def]
        if calls["n"] == 2:
            raise OSError("simulated crash after two shards")
        calls["n"] += 1
        real_write(*args, **kwargs)

    monkeypatch.setattr(job_module, "write_shard_table", fail_after_two)
    with pytest.raises(OSError, match="simulated crash"):
        tokenize_shards(str(sharded_sample_corpus), str(single), config=ONE)
    assert len(files_of(single)) == 2
    crashed = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("tokenize").experiment_id],
        filter_string="params.table_url LIKE '%/one/model_version=1'",
    )
    assert [run.info.status for run in crashed] == ["FAILED"]  # the run opens first, so a crash is recorded
    monkeypatch.setattr(job_module, "write_shard_table", real_write)
    resumed = tokenize_shards(str(sharded_sample_corpus), str(single), config=ONE)
    assert resumed.shards_reused == 2 and resumed.shards_written == resumed.shards - 2
    # 1 worker, small batches, 2 shards per execution, interrupted + resumed == 2 workers, large batches, one go
    assert files_of(single) == files_of(out)


def test_a_deleted_file_is_rebuilt_identically_on_rerun(table, registry, sharded_sample_corpus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out, _ = table
    use_tracking_uri(f"sqlite:///{registry}/mlflow.db")
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    sorted((copy / "model_version=1").rglob("*.parquet"))[-1].unlink()
    rerun = tokenize_shards(str(sharded_sample_corpus), str(copy), config=TWO)
    assert rerun.shards_written == 1 and rerun.shards_reused == rerun.shards - 1
    assert files_of(copy) == files_of(out)
    assert verify_tokens(str(copy), str(sharded_sample_corpus)).ok


def test_verify_detects_a_deleted_file_and_a_duplicated_row(table, sharded_sample_corpus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out, _ = table
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    files = sorted((copy / "model_version=1").rglob("*.parquet"))
    lost = pq.read_table(files[0]).column("utterance_id").to_pylist()
    files[0].unlink()
    rows = pq.read_table(files[1])
    pq.write_table(pa.concat_tables([rows, rows.slice(0, 1)]), files[1])
    report = verify_tokens(str(copy), str(sharded_sample_corpus))
    assert not report.ok
    assert report.missing == sorted(lost)
    assert report.duplicated == [rows.column("utterance_id")[0].as_py()]
    assert any("sha256 differs" in m for m in report.checksum_mismatches)
    assert any("listed, missing" in m for m in report.checksum_mismatches)


def test_verify_warns_when_a_table_mixes_encoding_policies(table, sharded_sample_corpus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out, _ = table
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert verify_tokens(str(copy), str(sharded_sample_corpus)).warnings() == []
    # One file re-encoded as if on a GPU with 8 chunks per forward: rows are fine, bits not comparable.
    file = sorted((copy / "model_version=1").rglob("*.parquet"))[0]
    rows = pq.read_table(file)
    [policy] = file_policies(rows)
    other = {**policy, "device_type": "cuda", "batch_chunks": 8, "cpu_threads": None, "cpu_capability": None}
    pq.write_table(rows.replace_schema_metadata({POLICY_METADATA_KEY: json.dumps([other]).encode()}), file)
    report = verify_tokens(str(copy), str(sharded_sample_corpus))
    assert not report.missing and not report.duplicated
    assert len(report.encoding_policies) == 2
    assert any("mixes 2 encoding policies" in line for line in report.warnings())


def test_a_corrupt_shard_is_rejected_and_the_others_finish(registry, sharded_sample_corpus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    use_tracking_uri(f"sqlite:///{registry}/mlflow.db")
    corpus = tmp_path / "shards"
    shutil.copytree(sharded_sample_corpus, corpus)
    victim = sorted((corpus / "shards").glob("*.tar"))[0]
    victim.write_bytes(b"this is not a tar archive" * 100)
    summary = tokenize_shards(str(corpus), str(tmp_path / "out"), config=TWO)
    assert [r.shard for r in summary.rejected] == [victim.stem]
    assert victim.name in summary.rejected[0].reason
    assert summary.shards_written == summary.shards - 1
    manifest = json.loads((tmp_path / "out" / "model_version=1" / "_manifest.json").read_text())
    assert manifest["rejected_shards"][0]["shard"] == victim.stem
    report = verify_tokens(str(tmp_path / "out"), str(corpus))
    assert not report.ok and report.missing and not report.duplicated and not report.checksum_mismatches


def test_missing_production_alias_says_how_to_fix_it(sharded_sample_corpus: Path, tmp_path: Path) -> None:
    use_tracking_uri(f"sqlite:///{tmp_path}/empty.db")
    with pytest.raises(LookupError, match=r"speechtok promote.*--model models:/speechtok-codec/VERSION"):
        tokenize_shards(str(sharded_sample_corpus), str(tmp_path / "out"))


@pytest.mark.usefixtures("prefect_api")
def test_cli_tokenize_then_verify_tokens(registry: Path, sharded_sample_corpus: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    runner = CliRunner()
    out = tmp_path / "cli-out"
    args = ["tokenize", str(sharded_sample_corpus), str(out), "--workers", "1", "--storage-root", str(registry)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "tokenize_corpus" in result.output and "rejected shards" in result.output
    verified = runner.invoke(app, ["verify-tokens", str(out), "--shards", str(sharded_sample_corpus)])
    assert verified.exit_code == 0, verified.output
    sorted(out.rglob("*.parquet"))[0].unlink()
    gap = runner.invoke(app, ["verify-tokens", str(out), "--shards", str(sharded_sample_corpus)])
    assert gap.exit_code == 1 and "missing" in gap.output
