"""`speechtok query` and `speechtok stats` as a user runs them: formats, files, help and exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flows.cli import app
from pipeline.query.stats import token_table_stats
from pipeline.query.table import open_token_table, run_query
from pipeline.query.views import MACROS, VIEWS
from token_tables import write_token_table

SQL = (
    "SELECT speaker, model_version, split, count(*) AS n, sum(n_frames) AS frames, sum(duration_s) AS seconds "
    "FROM utterances GROUP BY ALL ORDER BY ALL"
)


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_token_table(tmp_path_factory.mktemp("tokens"), seed=2)


@pytest.fixture(scope="module")
def expected(table_dir: Path) -> list[dict]:
    with open_token_table(str(table_dir)) as table:
        return run_query(table, SQL).to_pylist()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def test_help_lists_views_macros_and_an_example() -> None:
    result = invoke("query", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for item in (*VIEWS, *MACROS):
        assert item.signature in text
    assert "Example: speechtok query" in text
    for option in ("--tokens", "--format", "--output", "--s3-endpoint", "--settings"):
        assert option in text
    for command in ("stats", "detokenize"):
        assert invoke(command, "--help").exit_code == 0


def test_csv_file_matches_the_query(table_dir: Path, expected: list[dict], tmp_path: Path) -> None:
    result = invoke("query", SQL, "--tokens", str(table_dir), "--format", "csv", "-o", str(tmp_path / "r.csv"))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [(r["speaker"], int(r["model_version"]), r["split"], int(r["n"]), int(r["frames"])) for r in rows] == [
        (e["speaker"], e["model_version"], e["split"], e["n"], e["frames"]) for e in expected
    ]
    assert [float(r["seconds"]) for r in rows] == pytest.approx([e["seconds"] for e in expected])


def test_parquet_file_keeps_types(table_dir: Path, expected: list[dict], tmp_path: Path) -> None:
    # No --format: the suffix picks parquet.
    result = invoke("query", SQL, "--tokens", str(table_dir), "-o", str(tmp_path / "r.parquet"))
    assert result.exit_code == 0, result.output
    written = pq.read_table(tmp_path / "r.parquet")
    exact = [{k: v for k, v in row.items() if k != "seconds"} for row in written.to_pylist()]
    assert exact == [{k: v for k, v in row.items() if k != "seconds"} for row in expected]
    # float sums may differ in the last bit between runs (parallel aggregation order)
    assert written["seconds"].to_pylist() == pytest.approx([e["seconds"] for e in expected])
    assert str(written.schema.field("model_version").type) == "int32"


def test_json_keeps_token_lists(table_dir: Path, tmp_path: Path) -> None:
    sql = "SELECT utterance_id, model_version, tokens FROM tokens ORDER BY utterance_id, model_version LIMIT 3"
    result = invoke("query", sql, "--tokens", str(table_dir), "-f", "json", "-o", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    with open_token_table(str(table_dir)) as table:
        assert json.loads((tmp_path / "r.json").read_text()) == run_query(table, sql).to_pylist()


def test_csv_and_table_go_to_standard_output(table_dir: Path, expected: list[dict]) -> None:
    result = invoke("query", SQL, "--tokens", str(table_dir), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [int(r["n"]) for r in rows] == [e["n"] for e in expected]

    shown = invoke("query", SQL, "--tokens", str(table_dir), "--max-rows", "2")
    assert shown.exit_code == 0, shown.output
    assert expected[0]["speaker"] in shown.stdout and "split" in shown.stdout
    assert f"2 of {len(expected)} rows shown" in shown.output


def test_bad_sql_exits_2_with_the_duckdb_message(table_dir: Path) -> None:
    result = invoke("query", "SELECT nope FROM utterances", "--tokens", str(table_dir))
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "query failed" in text and '"nope" not found' in text and "SQL: SELECT nope FROM utterances" in text


def test_missing_table_exits_2_naming_the_path(tmp_path: Path) -> None:
    result = invoke("query", "SELECT 1", "--tokens", str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert "no token files" in result.output and "nowhere" in result.output
    assert invoke("stats", str(tmp_path / "nowhere")).exit_code == 2


def test_parquet_needs_an_output_file(table_dir: Path) -> None:
    result = invoke("query", SQL, "--tokens", str(table_dir), "--format", "parquet")
    assert result.exit_code == 2 and "-o FILE" in result.output


def test_stats_prints_totals_and_writes_the_histogram(table_dir: Path, tmp_path: Path) -> None:
    png = tmp_path / "plots" / "hist.png"
    result = invoke("stats", str(table_dir), "--histogram", str(png), "--top", "2")
    assert result.exit_code == 0, result.output
    stats = token_table_stats(str(table_dir))
    assert f"{stats.tokens:,}" in result.stdout and f"{stats.hours:.3f}" in result.stdout
    assert "model_version=1/split=medium" in result.stdout and "more" in result.stdout  # 4 speakers, top 2
    assert png.read_bytes().startswith(b"\x89PNG")
