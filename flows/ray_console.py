"""What Ray prints on a command's console (issue 11): speechtok's own progress and summary, not Ray's.

By default every line a Ray worker or actor prints is copied to the driver's console, prefixed and (since
Ray 2.6) deduplicated across workers, and Ray Data shows progress bars (or, off a terminal, a progress log every few
seconds). On a training or tokenization run that buries speechtok's own lines. Quiet by default, `--verbose`
restores Ray's behaviour. Nothing is lost: Ray keeps every worker's output in its session logs.

Both `ray.init` calls (training.launch, pipeline.tokenize.job) leave `log_to_driver` to Ray's default, which Ray
reads from RAY_LOG_TO_DRIVER when it is imported; progress bars follow `DataContext.enable_progress_bars`, whose
default Ray Data reads from RAY_DATA_DISABLE_PROGRESS_BARS. So this sets those defaults for the command's process
before Ray is imported (values a user exported win), and the data context too when Ray Data is already loaded.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

# Ray's documented log location (docs: ray-observability/user-guides/configure-logging): one session directory per
# `ray.init`/`ray start`, `session_latest` pointing at the newest, on every node of the cluster.
RAY_SESSION_LOGS = "/tmp/ray/session_latest/logs"

VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose",
        help="Also show Ray's own console output: every worker's stdout/stderr lines (deduplicated across workers) "
        f"and Ray Data progress. Without it they are kept only in Ray's session logs: {RAY_SESSION_LOGS} on each "
        "node (worker-*.out/.err, ray-data.log, Ray Train's logs).",
    ),
]


def configure_ray_console(verbose: bool) -> None:
    """Quiet Ray's worker lines and progress in this process (not `verbose`), or leave Ray's defaults."""
    if verbose:
        return
    os.environ.setdefault("RAY_LOG_TO_DRIVER", "0")
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    if "ray.data" in sys.modules:  # too late for the environment: set the loaded context (documented API)
        from ray.data import DataContext

        DataContext.get_current().enable_progress_bars = os.environ["RAY_DATA_DISABLE_PROGRESS_BARS"] == "0"
