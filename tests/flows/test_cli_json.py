"""`--json` as a script uses it: standard output is one JSON object with the summary's numbers, nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from librilight_files import seed_bad_inputs, tone_with_pauses, write_entry
from pipeline.query.stats import token_table_stats
from token_tables import write_token_table


@pytest.mark.usefixtures("prefect_api")
def test_shard_json_counts_every_file(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    samples, regions = tone_with_pauses([2.0, 5.0])
    write_entry(corpus, "12", "3", "chapter_01_reader_64kb", samples, regions)
    seed_bad_inputs(corpus)

    result = CliRunner().invoke(app, ["shard", str(corpus), str(tmp_path / "out"), "--max-seconds", "4", "--json"])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["files"] == summary["sharded_files"] + summary["rejected_files"]
    assert summary["rejected_files"] == sum(summary["rejections_by_reason"].values()) > 0
    assert summary["shards"] >= 1 and summary["shards_written"] >= 1 and summary["shards_reused"] == 0
    assert summary["segments"] >= 2 and summary["destination"] == str(tmp_path / "out")
    assert "audio files discovered" not in result.stdout  # no table, no progress bar


def test_stats_json_matches_the_table_and_still_writes_the_histogram(tmp_path: Path) -> None:
    table = write_token_table(tmp_path / "tokens", seed=2)
    png = tmp_path / "hist.png"

    result = CliRunner().invoke(app, ["stats", str(table), "--histogram", str(png), "--top", "2", "--json"])

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    stats = token_table_stats(str(table))
    assert (summary["tokens"], summary["utterances"], summary["speakers"]) == (
        stats.tokens,
        stats.utterances,
        stats.speakers,
    )
    assert summary["audio_hours"] == pytest.approx(stats.hours)
    assert len(summary["by_speaker"]) == 2 and summary["by_speaker"][0]["key"] == stats.by_speaker[0].key
    assert summary["histogram"].endswith("hist.png") and png.read_bytes().startswith(b"\x89PNG")
