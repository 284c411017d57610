"""Console progress bars for long flows (rich), off when the output is not a terminal-like stream."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

console = Console(stderr=True)


def progress_bar(enabled: bool = True) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        StatusColumn(),
        console=console,
        disable=not enabled,
    )


class RateColumn(ProgressColumn):
    """Units per second of a bar (blank until rich has measured it)."""

    def render(self, task: Task) -> Text:
        return Text("" if task.speed is None else f"{task.speed:.2f}/s", style="progress.data.speed")


class StatusColumn(ProgressColumn):
    """A bar's status line (`status` field), e.g. the audio hours done."""

    def render(self, task: Task) -> Text:
        return Text(str(task.fields.get("status", "")))


class RichProgressSink:
    """A `pipeline.progress.ProgressSink` drawing one rich bar per stage, its status line beside it."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.stages: dict[str, TaskID] = {}

    def start(self, stage: str, total: float, done: float = 0) -> None:
        self.stages[stage] = self.bar.add_task(stage, total=total, completed=int(done))

    def advance(self, stage: str, amount: float = 1, status: str | None = None) -> None:
        if status is None:
            self.bar.update(self.stages[stage], advance=amount)
        else:
            self.bar.update(self.stages[stage], advance=amount, status=status)
