"""How long jobs report progress without knowing who draws it: the CLI's rich bars, a log, or nothing."""

from __future__ import annotations

from typing import Protocol


class ProgressSink(Protocol):
    """A job's progress: named stages, each with a total and a running count, and a short status line."""

    def start(self, stage: str, total: float, done: float = 0) -> None: ...

    def advance(self, stage: str, amount: float = 1, status: str | None = None) -> None: ...


class NoProgress:
    """Reports nothing (tests, benchmarks, `--no-progress`)."""

    def start(self, stage: str, total: float, done: float = 0) -> None:
        pass

    def advance(self, stage: str, amount: float = 1, status: str | None = None) -> None:
        pass
