"""`speechtok export-llm` as a user runs it: files, summary, MLflow run, resume, `stats --export`, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from storage.mlflow_io import find_runs, use_tracking_uri
from token_tables import write_book_table


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_book_table(tmp_path_factory.mktemp("tokens"), seed=7)


def test_help_explains_the_options() -> None:
    result = invoke("export-llm", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for option in ("--model-version", "--format", "--document", "--order", "--bos", "--eos", "--sep", "--shard-tokens"):
        assert option in text
    assert "megatron" in text and "flat" in text and "index.parquet" in text


def test_export_records_mlflow_resumes_and_shows_in_stats(table_dir: Path, tmp_path: Path) -> None:
    out, root = tmp_path / "export", tmp_path / "root"
    args = (
        "export-llm",
        str(table_dir),
        str(out),
        "--shard-tokens",
        "3000",
        "--storage-root",
        str(root),
        "--no-progress",
    )
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "meta.json").read_text())
    train = meta["splits"]["train"]
    assert (
        (out / "train-00000.bin").exists() and (out / "train-00000.idx").exists() and (out / "index.parquet").exists()
    )
    assert f"{train['utterances']:,} utterances" in result.output and "written, 0 reused" in result.output

    use_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    runs = find_runs("export", {"speechtok.job": "export-llm"})
    assert len(runs) == 1
    assert runs[0].metrics["train.utterances"] == train["utterances"]
    assert runs[0].metrics["validation.content_tokens"] == meta["splits"]["validation"]["content_tokens"]
    assert runs[0].params["out_url"] == str(out) and runs[0].tags["speechtok.export"] == str(out)
    assert runs[0].params["manifest_sha256"] == meta["source"]["manifest_sha256"]

    again = invoke(*args)
    assert again.exit_code == 0 and "0 written" in again.output

    stats = invoke("stats", str(table_dir), "--export", str(out), "--histogram", str(tmp_path / "h.png"))
    assert stats.exit_code == 0, stats.output
    assert "LLM exports" in stats.output and "current" in stats.output and f"{train['tokens']:,}" in stats.output


def test_bad_options_exit_2_with_the_reason(table_dir: Path, tmp_path: Path) -> None:
    result = invoke("export-llm", str(table_dir), str(tmp_path / "x"), "--bos", "12", "--storage-root", str(tmp_path))
    assert result.exit_code == 2 and "out of range" in result.output
    result = invoke("export-llm", str(table_dir), str(tmp_path / "x"), "--sep", "space")
    assert result.exit_code == 2 and "'none'" in result.output
    result = invoke("export-llm", str(table_dir), str(tmp_path / "x"), "--model-version", "9")
    assert result.exit_code == 2 and "no model_version=9" in result.output
