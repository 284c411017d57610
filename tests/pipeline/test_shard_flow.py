"""The `shard_corpus` Prefect flow on local files: accounting, read-back, determinism, resume."""

from __future__ import annotations

from pathlib import Path

import pytest

import pipeline.sharding.job
from builders import make_sample_corpus
from flows.shard import run_shard_corpus
from librilight_files import seed_bad_inputs, tone_with_pauses, write_entry
from pipeline.sharding.config import ShardConfig
from shard_checks import assert_accounting, assert_shards_match_sources, read_manifest, tree_bytes

pytestmark = pytest.mark.usefixtures("prefect_api")

CONFIG = ShardConfig(target_shard_bytes=150_000, concurrency=2)


def make_corpus(root: Path, speakers: int = 4, files: int = 2) -> Path:
    for speaker in range(speakers):
        for index in range(files):
            samples, regions = tone_with_pauses([3.0, 6.0, 9.0, 2.5, 18.0], seed=speaker * 10 + index)
            write_entry(
                root, str(100 + speaker), str(7 + index % 2), f"chapter_{index:02d}_reader_64kb", samples, regions
            )
    return root


def test_every_bad_input_is_rejected_or_noted_and_good_audio_is_exact(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    expected = seed_bad_inputs(corpus)
    summary = run_shard_corpus(str(corpus), str(tmp_path / "out"), CONFIG, show_progress=False)

    assert_accounting(corpus, tmp_path / "out")
    segments, rejections = read_manifest(tmp_path / "out")
    reasons = {row["source"]: row["reason"] for row in rejections}
    notes = {row["source"]: row["notes"] for row in segments}
    for source, outcome in expected.items():
        if outcome == "reject":
            assert source in reasons, source
        elif outcome == "truncated_audio":
            assert reasons[source] in ("truncated_audio", "corrupt_audio"), source
        elif source in reasons:
            assert reasons[source] == outcome, (source, reasons[source])
        else:
            assert outcome in notes[source], (source, notes[source])
    for row in rejections:
        assert row["source"] in row["detail"] or row["source"].rsplit(".", 1)[0] in row["detail"]
    assert summary.manifest.files == 8 + len(expected)
    assert summary.manifest.rejected_files == len(rejections)
    assert all(row["duration_s"] <= CONFIG.max_seconds + 1e-9 for row in segments)
    assert assert_shards_match_sources(corpus, tmp_path / "out") == len(segments)


def test_holdout_speakers_get_their_own_shards(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus", speakers=5, files=1)
    run_shard_corpus(str(corpus), str(tmp_path / "out"), CONFIG, show_progress=False)
    segments, _ = read_manifest(tmp_path / "out")
    held = {row["speaker"] for row in segments if row["holdout"]}
    assert len(held) == 1  # 2% of 5 rounds to none; the top-up keeps one for evaluation
    shards_of = {}
    for row in segments:
        shards_of.setdefault(row["shard"], set()).add(row["holdout"])
    assert all(len(flags) == 1 for flags in shards_of.values())


def test_two_runs_give_byte_identical_output(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    seed_bad_inputs(corpus)
    run_shard_corpus(str(corpus), str(tmp_path / "a"), CONFIG, show_progress=False)
    run_shard_corpus(
        str(corpus), str(tmp_path / "b"), CONFIG.model_copy(update={"concurrency": 1}), show_progress=False
    )
    first, second = tree_bytes(tmp_path / "a"), tree_bytes(tmp_path / "b")
    assert len([name for name in first if name.endswith(".tar")]) >= 3
    assert first == second


def test_killed_run_resumes_to_the_same_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    run_shard_corpus(str(corpus), str(tmp_path / "whole"), CONFIG, show_progress=False)

    real_write_shard = pipeline.sharding.job.write_shard
    calls = {"n": 0}

    def dies_on_third_shard(source, destination, shard, config):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected crash")
        return real_write_shard(source, destination, shard, config)

    interrupted = CONFIG.model_copy(update={"concurrency": 1})
    monkeypatch.setattr(pipeline.sharding.job, "write_shard", dies_on_third_shard)
    with pytest.raises(RuntimeError, match="injected crash"):
        run_shard_corpus(str(corpus), str(tmp_path / "resumed"), interrupted, show_progress=False)
    assert not (tmp_path / "resumed" / "manifest" / "segments.parquet").exists()
    monkeypatch.setattr(pipeline.sharding.job, "write_shard", real_write_shard)

    summary = run_shard_corpus(str(corpus), str(tmp_path / "resumed"), interrupted, show_progress=False)
    # the crashed shard is redone; the others finished before the run failed and are reused
    assert summary.shards_written == 1
    assert summary.shards_reused == summary.manifest.shards - 1
    assert tree_bytes(tmp_path / "resumed") == tree_bytes(tmp_path / "whole")
    assert not list((tmp_path / "resumed" / "shards").glob(".*"))  # no partial temp files left behind


def test_sample_corpus_shards_exactly_with_json_voice_activity(tmp_path: Path) -> None:
    corpus = make_sample_corpus(tmp_path, speakers=3, minutes=1.0, seed=5, backend="auto")
    summary = run_shard_corpus(str(corpus), str(tmp_path / "out"), CONFIG, show_progress=False)
    assert summary.manifest.rejected_files == 0 and summary.manifest.sharded_files == summary.manifest.files
    segments, _ = read_manifest(tmp_path / "out")
    assert {row["vad_source"] for row in segments} == {"json"}
    assert_accounting(corpus, tmp_path / "out")
    assert assert_shards_match_sources(corpus, tmp_path / "out") == len(segments)
