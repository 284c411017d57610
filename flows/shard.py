"""Prefect flow `shard_corpus`: LibriLight-shaped corpus → WebDataset shards + Parquet manifest.

Thin wiring (STYLE: flows parse, wire and forward): the job is `pipeline.sharding.job.run_sharding`; this module
makes each of its units of work (a batch of files to inspect, a shard to write) one Prefect task run, executed in
a thread of this process or, with `ray_address`, as a Ray task on the cluster (the Prefect task only waits). A run
over the full LibriLight corpus (219,041 files, ~3,400 shards of 1 GiB) makes about 856 + 3,400 task runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from flows.progress import RichProgressSink, progress_bar
from pipeline.sharding.config import ShardConfig
from pipeline.sharding.job import ShardRunSummary, run_sharding
from pipeline.sharding.runners import RayRunner, ThreadRunner
from storage.fs import check_reachable, open_location
from storage.settings import S3Settings

__all__ = ["ShardRunSummary", "run_shard_corpus", "shard_corpus"]


@task(name="sharding-step", cache_policy=NO_CACHE)
def sharding_step(step: Callable[[Any], Any], item: Any, execute: Callable[..., Any], name: str) -> Any:
    return execute(step, item, name)


class PrefectTaskRunner:
    """Each unit of work one Prefect task run named after it, executed by `execute` (the work itself runs in the
    task's thread, or on Ray)."""

    def __init__(self, execute: Callable[..., Any]) -> None:
        self.execute = execute

    def map_unordered(
        self, step: Callable[[Any], Any], items: Sequence[Any], label: Callable[[Any], str]
    ) -> Iterator[tuple[int, Any]]:
        name = getattr(step, "name", "step")
        futures = {}
        for index, item in enumerate(items):
            run_name = f"{name} {label(item)}"
            named = sharding_step.with_options(name=name, task_run_name=run_name)
            # quote(): Prefect passes them as they are instead of walking every field looking for futures.
            future = named.submit(quote(step), quote(item), quote(self.execute), run_name)  # type: ignore[call-overload]
            futures[future.task_run_id] = (index, future)
        for future in as_completed([future for _, future in futures.values()]):
            index = futures[future.task_run_id][0]
            try:
                yield index, future.result()
            except Exception as error:
                yield index, error


@flow(name="shard_corpus", log_prints=True)
def shard_corpus(
    source: str,
    destination: str,
    config: ShardConfig | None = None,
    s3: S3Settings | None = None,
    show_progress: bool = True,
    ray_address: str | None = None,
) -> ShardRunSummary:
    """Shard every audio file under `source` into `destination`; each file ends up sharded or rejected.

    With `ray_address` the inspect and write work runs as Ray tasks (same bytes as threads); Ray must already be
    initialised by the caller (`run_shard_corpus` does it). Re-running skips shards already complete.
    """
    config = config or ShardConfig()
    inner = RayRunner(ray_address) if ray_address else ThreadRunner(config.concurrency)
    with progress_bar(show_progress) as bar:
        return run_sharding(source, destination, config, PrefectTaskRunner(inner.execute), s3, RichProgressSink(bar))


def run_shard_corpus(
    source: str,
    destination: str,
    config: ShardConfig,
    s3: S3Settings | None = None,
    show_progress: bool = True,
    ray_address: str | None = None,
) -> ShardRunSummary:
    """Run the flow: Prefect task runs in `config.concurrency` threads, or with `ray_address` (`host:6379`,
    `ray://…`, `auto`, or `local` for a new local instance) as many as the Ray cluster has CPUs, twice over.

    Both locations are checked first, so a wrong S3 endpoint fails in seconds, before Prefect or Ray starts.
    """
    check_reachable(open_location(source, s3), must_exist=True)
    check_reachable(open_location(destination, s3), must_exist=False)
    ray_runner = RayRunner(ray_address) if ray_address else None
    try:
        threads = ray_runner.in_flight if ray_runner else config.concurrency
        runner: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=threads)
        configured = shard_corpus.with_options(task_runner=runner)  # type: ignore[arg-type]  # Prefect's generic is too narrow
        return configured(source, destination, config, s3, show_progress=show_progress, ray_address=ray_address)
    finally:
        if ray_runner is not None:
            ray_runner.close()
