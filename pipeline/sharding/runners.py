"""Where the sharding job's units of work run: threads of this process, or Ray tasks on a cluster.

Both satisfy `pipeline.sharding.job.StepRunner`. The steps they run are picklable and open their storage from
URLs, so a Ray task on another host needs nothing of the driver's but the step and its item.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

logger = logging.getLogger(__name__)


class ThreadRunner:
    """Units of work in a thread pool of this process (FLAC coding and file I/O release the GIL)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def execute(self, step: Callable[[Any], Any], item: Any) -> Any:
        return step(item)

    def map_unordered(
        self, step: Callable[[Any], Any], items: Sequence[Any], label: Callable[[Any], str]
    ) -> Iterator[tuple[int, Any]]:
        with ThreadPoolExecutor(self.workers, thread_name_prefix=getattr(step, "name", "step")) as pool:
            futures = {pool.submit(step, item): index for index, item in enumerate(items)}
            for future in as_completed(futures):
                error = future.exception()
                yield futures[future], error if error is not None else future.result()

    def close(self) -> None:
        pass


class RayRunner:
    """Each unit of work a Ray task (one CPU) on the cluster at `address` (None: `RAY_ADDRESS`, else a local
    instance), at most `in_flight` at once (default: twice the cluster's CPUs), so a large corpus never has all
    its shards queued in the object store at once."""

    def __init__(self, address: str | None = None, in_flight: int | None = None) -> None:
        import ray

        self._started = not ray.is_initialized()
        if self._started:
            ray.init(address=address)  # None: RAY_ADDRESS, else a local instance (worker logs: flows.ray_console)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.in_flight = in_flight or max(1, 2 * cpus)
        self._call = ray.remote(num_cpus=1, max_retries=0)(_call_step)
        self.tasks_submitted = 0
        logger.info("sharding on Ray (%d CPUs, %d tasks in flight)", cpus, self.in_flight)

    def execute(self, step: Callable[[Any], Any], item: Any, name: str | None = None) -> Any:
        """`step(item)` as one Ray task, waited for (what a Prefect task does when Ray does the work)."""
        import ray

        self.tasks_submitted += 1
        return ray.get(self._call.options(name=name or getattr(step, "name", "step")).remote(step, item))

    def map_unordered(
        self, step: Callable[[Any], Any], items: Sequence[Any], label: Callable[[Any], str]
    ) -> Iterator[tuple[int, Any]]:
        import ray
        from ray.exceptions import RayTaskError

        step_ref = ray.put(step)  # shipped once, not with every task
        waiting: dict[Any, int] = {}
        submitted = 0
        while submitted < len(items) or waiting:
            while submitted < len(items) and len(waiting) < self.in_flight:
                name = f"{getattr(step, 'name', 'step')} {label(items[submitted])}"
                waiting[self._call.options(name=name).remote(step_ref, items[submitted])] = submitted
                submitted += 1
                self.tasks_submitted += 1
            done, _ = ray.wait(list(waiting), num_returns=1)
            index = waiting.pop(done[0])
            try:
                yield index, ray.get(done[0])
            except RayTaskError as error:  # the step's own exception, as raised on the worker
                yield index, error.cause if isinstance(error.cause, BaseException) else error

    def close(self) -> None:
        """Shut down the Ray instance this runner started (a connection made by someone else stays)."""
        import ray

        if self._started:
            ray.shutdown()


def _call_step(step: Callable[[Any], Any], item: Any) -> Any:
    return step(item)
