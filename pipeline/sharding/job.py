"""The sharding job: discover → inspect → plan → write → manifest, as plain steps a runner maps over.

`run_sharding` is the whole job. Where the per-batch and per-shard work runs is the `StepRunner`'s business
(`pipeline.sharding.runners`: a thread pool or Ray tasks; `flows.shard` wraps either in Prefect tasks), so the
job, its resume rules and its accounting are the same everywhere. The steps are picklable callables that carry
locations as URLs plus S3 settings, never an open filesystem or a driver-local path, so a Ray worker on another
host opens the storage itself.

Memory: the driver holds one compact `FilePlan` per file (packed spans, slotted records) and one `ShardResult`
(counts, sources, rejections) per shard; segment rows exist only inside the step that writes their shard and are
merged into `manifest/segments.parquet` one shard at a time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pipeline.progress import NoProgress, ProgressSink
from pipeline.sharding.config import ShardConfig
from pipeline.sharding.discover import discover
from pipeline.sharding.inspect import inspect_file
from pipeline.sharding.manifest import (
    ManifestSummary,
    publish_shard_records,
    read_completed,
    withdraw_marker,
    write_manifest,
)
from pipeline.sharding.plan import assign_holdout, plan_shards, shard_digest
from pipeline.sharding.records import FilePlan, Rejection, ShardPlan, ShardResult, SourceFile
from pipeline.sharding.writer import write_shard
from storage.fs import check_reachable, is_transient_storage_error, open_location
from storage.settings import S3Settings

logger = logging.getLogger(__name__)
RETRY_BACKOFF_S = 2.0  # before the first retry round; doubled for each further one

Item = TypeVar("Item")
Result = TypeVar("Result")


class StepRunner(Protocol):
    """Runs one step over many items somewhere (threads, Ray tasks, Prefect tasks)."""

    def map_unordered(
        self, step: Callable[[Any], Any], items: Sequence[Any], label: Callable[[Any], str]
    ) -> Iterator[tuple[int, Any]]:
        """Yield `(index into items, step(item) or the exception it raised)` as each one finishes.
        `label(item)` names the unit of work (task names, logs)."""
        ...


@dataclass(frozen=True)
class InspectStep:
    """Read the JSON and audio header of a batch of files (no decoding): their plans or rejections."""

    source_url: str
    s3: S3Settings | None
    config: ShardConfig
    name: str = "inspect-files"

    def __call__(self, files: Sequence[SourceFile]) -> list[FilePlan | Rejection]:
        source = open_location(self.source_url, self.s3)
        return [inspect_file(source, file, self.config) for file in files]


@dataclass(frozen=True)
class WriteShardStep:
    """Write one planned shard: the tar, then its segment table, then its completion marker."""

    source_url: str
    destination_url: str
    s3: S3Settings | None
    config: ShardConfig
    name: str = "write-shard"

    def __call__(self, planned: tuple[ShardPlan, str]) -> ShardResult:
        shard, digest = planned
        destination = open_location(self.destination_url, self.s3)
        withdraw_marker(destination, shard.name)
        written = write_shard(open_location(self.source_url, self.s3), destination, shard, self.config)
        publish_shard_records(destination, written, digest)
        return written.result


@dataclass(frozen=True)
class ShardRunSummary:
    """What a sharding run returns: the manifest counts plus what this run did."""

    manifest: ManifestSummary
    shards_written: int
    shards_reused: int
    destination: str
    task_runs: int  # units of work handed to the runner (inspect batches + shards written, retries included)


class StepsFailedError(RuntimeError):
    """Some units of work failed for good; finished shards are kept and a re-run resumes."""


def run_sharding(
    source_url: str,
    destination_url: str,
    config: ShardConfig,
    runner: StepRunner,
    s3: S3Settings | None = None,
    progress: ProgressSink | None = None,
) -> ShardRunSummary:
    """Shard every audio file under `source_url` into `destination_url`; each file ends up sharded or rejected.

    Re-running with the same input and config skips shards whose completion marker matches their plan, so a
    killed run finishes without redoing work and without duplicate or partial shards.
    """
    progress = progress or NoProgress()
    source, destination = open_location(source_url, s3), open_location(destination_url, s3)
    check_reachable(source, must_exist=True)
    check_reachable(destination, must_exist=False)
    destination.makedirs()

    discovery = discover(source, config.splits)
    logger.info("discovered %d audio files under %s", discovery.total, source_url)
    batches = [
        list(discovery.files[start : start + config.files_per_inspect_task])
        for start in range(0, len(discovery.files), config.files_per_inspect_task)
    ]
    progress.start("inspect", len(discovery.files))
    inspected: dict[str, FilePlan | Rejection] = {}
    inspect_step = InspectStep(source_url, s3, config)
    task_runs = 0
    for outcomes, runs in _run_all(runner, inspect_step, batches, _batch_label, config.attempts):
        task_runs = runs
        for outcome in outcomes:
            inspected[outcome.source.audio if isinstance(outcome, FilePlan) else outcome.source] = outcome
        progress.advance("inspect", len(outcomes))
    ordered = [inspected.pop(file.audio) for file in discovery.files]  # back in discovery order
    plans = assign_holdout([o for o in ordered if isinstance(o, FilePlan)], config)
    rejections = [*discovery.rejections, *(o for o in ordered if isinstance(o, Rejection))]
    del ordered
    shards = plan_shards(plans, config)
    del plans

    results: list[ShardResult] = []
    pending: list[tuple[ShardPlan, str]] = []
    for shard in shards:
        digest = shard_digest(shard, config)
        completed = read_completed(destination, shard, digest)
        if completed is None:
            pending.append((shard, digest))
        else:
            results.append(completed)
    reused = len(results)
    if reused:
        logger.info("%d of %d shards already complete; skipping them", reused, len(shards))
    progress.start("shards", len(shards), done=reused)
    write_step = WriteShardStep(source_url, destination_url, s3, config)
    inspect_runs = task_runs
    for result, runs in _run_all(runner, write_step, pending, _shard_label, config.attempts):
        task_runs = inspect_runs + runs
        results.append(result)
        progress.advance("shards")
    manifest = write_manifest(destination, results, rejections, discovery.total)
    return ShardRunSummary(manifest, len(pending), reused, destination_url, task_runs)


def _run_all(
    runner: StepRunner,
    step: Callable[[Item], Result],
    items: Sequence[Item],
    label: Callable[[Item], str],
    attempts: int,
) -> Iterator[tuple[Result, int]]:
    """Every item's result (with the running count of units handed out), retrying transient storage errors up
    to `attempts` times. One failed item does not waste the others: they all finish, then the run fails."""
    remaining = list(items)
    failures: list[tuple[str, BaseException]] = []
    handed_out = 0
    for attempt in range(1, attempts + 1):
        retry: list[Item] = []
        handed_out += len(remaining)
        for index, outcome in runner.map_unordered(step, remaining, label):
            if not isinstance(outcome, BaseException):
                yield outcome, handed_out
            elif is_transient_storage_error(outcome) and attempt < attempts:
                name = getattr(step, "name", "step")
                unit = label(remaining[index])
                logger.warning("%s %s: %r; retry %d of %d", name, unit, outcome, attempt, attempts - 1)
                retry.append(remaining[index])
            else:
                failures.append((label(remaining[index]), outcome))
        remaining = retry
        if not remaining:
            break
        time.sleep(RETRY_BACKOFF_S * 2 ** (attempt - 1))  # let a throttled or restarting service recover
    if failures:
        first_label, first = failures[0]
        raise StepsFailedError(
            f"{len(failures)} of {len(items)} units failed (first: {first_label}: {first!r}); "
            "completed shards are kept, re-run the same command to resume"
        ) from first


def _batch_label(files: Sequence[SourceFile]) -> str:
    return f"{files[0].audio} (+{len(files) - 1})" if files else "empty batch"


def _shard_label(planned: tuple[ShardPlan, str]) -> str:
    return planned[0].name
