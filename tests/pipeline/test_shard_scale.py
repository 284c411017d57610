"""Sharding at scale (issue 11): Ray tasks give the thread pool's bytes, Prefect task runs stay bounded by shards
and inspection batches (never one per file), and the manifest is merged from per-shard parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.client.schemas.sorting import FlowRunSort

from flows.shard import run_shard_corpus
from librilight_files import seed_bad_inputs, tone_with_pauses, write_entry
from pipeline.sharding import job as job_module
from pipeline.sharding.config import ShardConfig
from pipeline.sharding.job import StepsFailedError, run_sharding
from pipeline.sharding.manifest import segment_part_parts
from pipeline.sharding.runners import RayRunner, ThreadRunner
from shard_checks import assert_accounting, tree_bytes

CONFIG = ShardConfig(max_seconds=8.0, target_shard_bytes=200_000, holdout_fraction=0.25, concurrency=2)


def make_corpus(root: Path) -> Path:
    for speaker in range(4):
        for index in range(3):
            samples, regions = tone_with_pauses([3.0, 6.0, 2.5, 9.0], seed=speaker * 10 + index)
            write_entry(root, str(200 + speaker), str(index % 2), f"chapter_{index:02d}", samples, regions)
    seed_bad_inputs(root)
    return root


@pytest.mark.integration
@pytest.mark.usefixtures("prefect_api", "ray_local")
def test_ray_tasks_shard_byte_identically_to_threads(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    threads = run_sharding(str(corpus), str(tmp_path / "threads"), CONFIG, ThreadRunner(2))
    ray_runner = RayRunner()  # joins the session's local Ray instance (2 CPUs)
    on_ray = run_sharding(str(corpus), str(tmp_path / "ray"), CONFIG, ray_runner)
    flow = run_shard_corpus(str(corpus), str(tmp_path / "flow"), CONFIG, show_progress=False, ray_address="auto")

    assert threads.manifest.shards >= 3 and threads.manifest.rejected_files > 0
    assert ray_runner.tasks_submitted == on_ray.task_runs > threads.manifest.shards  # the work went to Ray
    assert on_ray.manifest == threads.manifest == flow.manifest
    assert tree_bytes(tmp_path / "ray") == tree_bytes(tmp_path / "threads") == tree_bytes(tmp_path / "flow")
    assert_accounting(corpus, tmp_path / "ray")


def test_manifest_is_the_union_of_the_per_shard_parts(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    summary = run_sharding(str(corpus), str(tmp_path / "out"), CONFIG, ThreadRunner(2))
    out = tmp_path / "out"
    shards = pq.read_table(out / "manifest" / "shards.parquet").to_pylist()
    parts = [pq.read_table(out.joinpath(*segment_part_parts(row["shard"]))) for row in shards]
    assert [part.num_rows for part in parts] == [row["num_segments"] for row in shards]
    merged = pq.read_table(out / "manifest" / "segments.parquet")
    assert merged.to_pylist() == [row for part in parts for row in part.to_pylist()]
    assert merged.num_rows == summary.manifest.segments
    for row in shards:  # a marker holds counts, never rows
        marker = json.loads((out / "_markers" / f"{row['shard']}.json").read_text())
        assert "segments" not in marker and marker["num_segments"] == row["num_segments"]


def _tiny_corpus(root: Path, files: int) -> None:
    """`files` quarter-second files (one voiced region each) spread over 50 speakers."""
    rng = np.random.default_rng(0)
    for index in range(files):
        folder = root / "small" / f"{index % 50}" / "book"
        folder.mkdir(parents=True, exist_ok=True)
        samples = (rng.normal(0, 0.2, 4000) * 32767).astype(np.int16)
        soundfile.write(folder / f"f{index:05d}.flac", samples, 16_000, subtype="PCM_16")
        (folder / f"f{index:05d}.json").write_text(json.dumps({"voice_activity": [[0.02, 0.23]]}))


@pytest.mark.integration
@pytest.mark.usefixtures("prefect_api")
def test_thousands_of_files_make_a_bounded_number_of_prefect_task_runs(tmp_path: Path) -> None:
    files = 2500
    _tiny_corpus(tmp_path / "corpus", files)
    config = ShardConfig(target_shard_bytes=2_000_000, concurrency=2)
    summary = run_shard_corpus(str(tmp_path / "corpus"), str(tmp_path / "out"), config, show_progress=False)

    assert summary.manifest.sharded_files == files and summary.manifest.segments == files
    inspect_batches = -(-files // config.files_per_inspect_task)
    assert summary.task_runs == inspect_batches + summary.manifest.shards
    assert summary.task_runs < files / 50

    async def task_runs_of_latest_shard_flow() -> int:
        async with get_client() as client:
            [run] = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["shard_corpus"])),
                sort=FlowRunSort.START_TIME_DESC,
                limit=1,
            )
            response = await client.request(
                "POST", "/task_runs/count", json={"flow_runs": {"id": {"any_": [str(run.id)]}}}
            )
            return int(response.json())

    from prefect.utilities.asyncutils import run_coro_as_sync

    assert run_coro_as_sync(task_runs_of_latest_shard_flow()) == summary.task_runs


def test_transient_storage_errors_are_retried_and_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    clean = run_sharding(str(corpus), str(tmp_path / "clean"), CONFIG, ThreadRunner(2))
    real_write = job_module.write_shard
    failed: set[str] = set()

    def flaky_once(source, destination, shard, config):  # type: ignore[no-untyped-def]
        if shard.name not in failed:  # every shard's first attempt: the connection drops
            failed.add(shard.name)
            raise ConnectionResetError(f"reset while writing {shard.name}")
        return real_write(source, destination, shard, config)

    monkeypatch.setattr(job_module, "write_shard", flaky_once)
    monkeypatch.setattr(job_module, "RETRY_BACKOFF_S", 0.0)
    retried = run_sharding(str(corpus), str(tmp_path / "retried"), CONFIG, ThreadRunner(2))
    assert retried.manifest == clean.manifest and retried.task_runs == clean.task_runs + clean.shards_written
    assert tree_bytes(tmp_path / "retried") == tree_bytes(tmp_path / "clean")

    def always_fails(source, destination, shard, config):  # type: ignore[no-untyped-def]
        raise ConnectionResetError("storage is down")

    monkeypatch.setattr(job_module, "write_shard", always_fails)
    with pytest.raises(StepsFailedError, match="storage is down"):
        run_sharding(str(corpus), str(tmp_path / "down"), CONFIG.model_copy(update={"attempts": 2}), ThreadRunner(2))
