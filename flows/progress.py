"""Console progress bars for long flows (rich), off when the output is not a terminal-like stream."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)


def progress_bar(enabled: bool = True) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
    )


class RichProgressSink:
    """A `pipeline.sharding.job.ProgressSink` drawing one rich bar per stage."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.stages: dict[str, TaskID] = {}

    def start(self, stage: str, total: int, done: int = 0) -> None:
        self.stages[stage] = self.bar.add_task(stage, total=total, completed=done)

    def advance(self, stage: str, amount: int = 1) -> None:
        self.bar.advance(self.stages[stage], amount)
