"""Where the sharding job's units of work run: threads of this process, or Ray tasks on a cluster.

Both satisfy `pipeline.sharding.job.StepRunner`. The steps they run are picklable and open their storage from
URLs, so a Ray task on another host needs nothing of the driver's but the step and its item.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

logger = logging.getLogger(__name__)

# A worker that crashed, was killed for memory or lost with its node: Ray runs the task again (steps are idempotent:
# every file is published atomically). An exception raised by the step itself is not retried by Ray: the job
# decides (transient storage errors are retried there).
SYSTEM_FAILURE_RETRIES = 3


class ThreadRunner:
    """Units of work in a thread pool of this process (FLAC coding and file I/O release the GIL)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def execute(self, step: Callable[[Any], Any], item: Any, name: str | None = None) -> Any:
        return step(item)

    def map_unordered(
        self, step: Callable[[Any], Any], items: Sequence[Any], label: Callable[[Any], str]
    ) -> Iterator[tuple[int, Any]]:
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix=getattr(step, "name", "step"))
        try:
            futures = {pool.submit(step, item): index for index, item in enumerate(items)}
            for future in as_completed(futures):
                error = future.exception()
                yield futures[future], error if error is not None else future.result()
        finally:  # also when the consumer stops early (Ctrl-C): queued work is dropped, not run to the end
            pool.shutdown(wait=True, cancel_futures=True)

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
        self._call = ray.remote(num_cpus=1, max_retries=SYSTEM_FAILURE_RETRIES)(_call_step)
        self.tasks_submitted = 0
        self._lock = threading.Lock()  # execute() is called from many Prefect task threads
        logger.info("sharding on Ray (%d CPUs, %d tasks in flight)", cpus, self.in_flight)

    def execute(self, step: Callable[[Any], Any], item: Any, name: str | None = None) -> Any:
        """`step(item)` as one Ray task, waited for (what a Prefect task does when Ray does the work)."""
        import ray
        from ray.exceptions import RayTaskError

        with self._lock:
            self.tasks_submitted += 1
        try:
            return ray.get(self._call.options(name=name or getattr(step, "name", "step")).remote(step, item))
        except RayTaskError as error:
            raise _cause(error) from error

    def map_unordered(
        self, step: Callable[[Any], Any], items: Sequence[Any], label: Callable[[Any], str]
    ) -> Iterator[tuple[int, Any]]:
        import ray
        from ray.exceptions import RayError, RayTaskError

        step_ref = ray.put(step)  # shipped once, not with every task
        waiting: dict[Any, int] = {}
        submitted = 0
        try:
            while submitted < len(items) or waiting:
                while submitted < len(items) and len(waiting) < self.in_flight:
                    name = f"{getattr(step, 'name', 'step')} {label(items[submitted])}"
                    waiting[self._call.options(name=name).remote(step_ref, items[submitted])] = submitted
                    submitted += 1
                    with self._lock:
                        self.tasks_submitted += 1
                done, _ = ray.wait(list(waiting), num_returns=1)
                index = waiting.pop(done[0])
                try:
                    outcome = ray.get(done[0])
                except RayTaskError as error:  # the step's own exception, as raised on the worker
                    outcome = _cause(error)
                except RayError as error:  # a worker or node lost more often than Ray retries it
                    outcome = error
                yield index, outcome
        finally:  # the consumer stopped early (Ctrl-C, a failure): do not leave tasks running on the cluster
            for ref in waiting:
                ray.cancel(ref)

    def close(self) -> None:
        """Shut down the Ray instance this runner started (a connection made by someone else stays)."""
        import ray

        if self._started:
            ray.shutdown()


def _call_step(step: Callable[[Any], Any], item: Any) -> Any:
    return step(item)


def _cause(error: Any) -> BaseException:
    """The exception the step raised on the worker (its type decides whether the job retries it)."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error
