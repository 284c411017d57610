"""Prefect flow `shard_corpus`: LibriLight-shaped corpus → WebDataset shards + Parquet manifest.

Thin wiring (STYLE: flows parse, wire and forward): each step is a function in `pipeline.sharding`; this
module makes them Prefect tasks with retries on transient I/O errors and runs them in a thread pool (the
FLAC codec and file I/O release the GIL, so threads scale across cores).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.futures import as_completed
from prefect.states import State
from prefect.task_runners import ThreadPoolTaskRunner

from flows.progress import progress_bar
from pipeline.sharding.config import ShardConfig
from pipeline.sharding.discover import discover
from pipeline.sharding.inspect import inspect_file
from pipeline.sharding.manifest import ManifestSummary, read_completed, write_manifest, write_marker
from pipeline.sharding.plan import assign_holdout, plan_shards, shard_digest
from pipeline.sharding.records import FilePlan, Rejection, ShardPlan, SourceFile
from pipeline.sharding.writer import ShardResult, write_shard
from storage.fs import Location, check_reachable, is_transient_storage_error, open_location
from storage.settings import S3Settings

_IO_RETRIES = 2


def is_transient_io_error(task: object, task_run: TaskRun, state: State) -> bool:
    """Retry network/filesystem hiccups, not bugs or missing files (those fail the same way again)."""
    error = state.result(raise_on_failure=False)
    return isinstance(error, BaseException) and is_transient_storage_error(error)


@task(
    name="inspect-files",
    retries=_IO_RETRIES,
    retry_delay_seconds=2,
    retry_condition_fn=is_transient_io_error,
    cache_policy=NO_CACHE,
)
def inspect_files_task(
    source: Location, files: Sequence[SourceFile], config: ShardConfig
) -> list[FilePlan | Rejection]:
    return [inspect_file(source, file, config) for file in files]


@task(
    name="write-shard",
    retries=_IO_RETRIES,
    retry_delay_seconds=2,
    retry_condition_fn=is_transient_io_error,
    cache_policy=NO_CACHE,
)
def write_shard_task(
    source: Location, destination: Location, shard: ShardPlan, config: ShardConfig, digest: str
) -> ShardResult:
    result = write_shard(source, destination, shard, config)
    write_marker(destination, result, digest)  # only after the tar is published
    return result


@dataclass(frozen=True)
class ShardRunSummary:
    """What `shard_corpus` returns: the manifest counts plus what this run did."""

    manifest: ManifestSummary
    shards_written: int
    shards_reused: int
    destination: str


@flow(name="shard_corpus", log_prints=True)
def shard_corpus(
    source: str,
    destination: str,
    config: ShardConfig | None = None,
    s3: S3Settings | None = None,
    show_progress: bool = True,
) -> ShardRunSummary:
    """Shard every audio file under `source` into `destination`; each file ends up sharded or rejected.

    Re-running with the same input and config skips shards whose completion marker matches their plan, so a
    killed run finishes without redoing work and without duplicate or partial shards.
    """
    config = config or ShardConfig()
    logger = get_run_logger()
    source_location = open_location(source, s3)
    destination_location = open_location(destination, s3)
    check_reachable(source_location, must_exist=True)
    check_reachable(destination_location, must_exist=False)
    destination_location.makedirs()

    discovery = discover(source_location, config.splits)
    logger.info("discovered %d audio files under %s", discovery.total, source)

    with progress_bar(show_progress) as progress:
        batches = _chunks(discovery.files, config.files_per_inspect_task)
        inspecting = progress.add_task("inspect", total=len(discovery.files))
        futures = [inspect_files_task.submit(source_location, batch, config) for batch in batches]
        inspected: dict[str, FilePlan | Rejection] = {}
        for future in as_completed(futures):
            for outcome in future.result():
                key = outcome.source.audio if isinstance(outcome, FilePlan) else outcome.source
                inspected[key] = outcome
            progress.advance(inspecting, len(future.result()))
        outcomes = [inspected[file.audio] for file in discovery.files]  # back in discovery order
        plans = assign_holdout([o for o in outcomes if isinstance(o, FilePlan)], config)
        rejections = [*discovery.rejections, *(o for o in outcomes if isinstance(o, Rejection))]
        shards = plan_shards(plans, config)

        results: dict[str, ShardResult] = {}
        pending = []
        for shard in shards:
            digest = shard_digest(shard, config)
            completed = read_completed(destination_location, shard, digest)
            if completed is not None:
                results[shard.name] = completed
            else:
                pending.append((shard, digest))
        reused = len(results)
        if reused:
            logger.info("%d of %d shards already complete; skipping them", reused, len(shards))
        writing = progress.add_task("shards", total=len(shards), completed=reused)
        shard_futures = [
            write_shard_task.submit(source_location, destination_location, shard, config, digest)
            for shard, digest in pending
        ]
        failures: list[BaseException] = []
        for shard_future in as_completed(shard_futures):
            # One failed shard must not waste the others: finish them, then fail the run (a re-run resumes).
            try:
                result = shard_future.result()
            except Exception as error:
                failures.append(error)
                continue
            results[result.shard] = result
            progress.advance(writing)
        if failures:
            raise RuntimeError(
                f"{len(failures)} of {len(pending)} shards failed (first: {failures[0]!r}); "
                "completed shards are kept, re-run the same command to resume"
            ) from failures[0]

    manifest = write_manifest(destination_location, list(results.values()), rejections, discovery.total)
    return ShardRunSummary(
        manifest=manifest, shards_written=len(pending), shards_reused=reused, destination=destination
    )


def run_shard_corpus(
    source: str,
    destination: str,
    config: ShardConfig,
    s3: S3Settings | None = None,
    show_progress: bool = True,
) -> ShardRunSummary:
    """Run the flow with a thread pool sized by `config.concurrency`.

    Both locations are checked first, so a wrong S3 endpoint fails in seconds, before Prefect starts.
    """
    check_reachable(open_location(source, s3), must_exist=True)
    check_reachable(open_location(destination, s3), must_exist=False)
    runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=config.concurrency)
    configured = shard_corpus.with_options(task_runner=runner)  # type: ignore[arg-type]  # Prefect's generic is too narrow
    return configured(source, destination, config=config, s3=s3, show_progress=show_progress)


def _chunks(items: Sequence[SourceFile], size: int) -> list[list[SourceFile]]:
    return [list(items[start : start + size]) for start in range(0, len(items), size)]
