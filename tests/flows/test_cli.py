"""The `speechtok` CLI as a user runs it: help text, and a shard run that reports rejections but succeeds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from librilight_files import seed_bad_inputs, tone_with_pauses, write_entry


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("sample-corpus", "shard", "demo", "export-llm"):
        assert command in result.output


@pytest.mark.usefixtures("prefect_api")
def test_shard_command_prints_summary_and_succeeds_despite_rejections(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    samples, regions = tone_with_pauses([2.0, 5.0])
    write_entry(corpus, "12", "3", "chapter_01_reader_64kb", samples, regions)
    expected = seed_bad_inputs(corpus)
    kept_with_note = ("energy VAD", "downmixed", "sample rate")  # the other bad inputs are rejected
    rejected = sum(1 for outcome in expected.values() if not outcome.startswith(kept_with_note))

    result = CliRunner().invoke(
        app, ["shard", str(corpus), str(tmp_path / "out"), "--max-seconds", "4", "--no-progress"]
    )

    assert result.exit_code == 0, result.output
    assert "audio files discovered" in result.output and "files rejected" in result.output
    assert "missing_json" in result.output
    rejected_line = next(line for line in result.output.splitlines() if "files rejected" in line)
    assert re.findall(r"\d+", rejected_line) == [str(rejected)]
    assert (tmp_path / "out" / "manifest" / "segments.parquet").exists()
