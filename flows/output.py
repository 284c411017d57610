"""End-of-run summaries: rich tables on the console, or one JSON object on standard output (`--json`, issue 11).

Every command that ends with a summary builds it twice from the same result: a plain mapping (numbers stay
numbers) and the rich tables people read. `summary_output(json)` picks one. In JSON mode standard output carries
exactly one JSON object: for the whole command anything else printed there (a library's `print`, Ray's worker
lines) goes to standard error with the messages, progress bars and logs.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from pathlib import PurePath
from typing import Annotated, Any, TextIO

import typer

JsonOption = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print the end-of-run summary as one JSON object on standard output instead of tables (no progress "
        "bars; messages and logs stay on standard error).",
    ),
]


def to_json(value: Any) -> Any:
    """`value` as JSON-compatible data: dataclasses and mappings become objects, sequences lists, numpy scalars
    and arrays numbers and lists, paths and enums strings; NaN and infinities become null (JSON has none)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_json(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if hasattr(value, "model_dump"):  # pydantic models
        return to_json(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, enum.Enum):
        return to_json(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str | int | bool) or value is None:
        return value
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return to_json(value.tolist())
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(item) for item in value]
    return str(value)


class SummaryOutput:
    """Where a command's summary goes; built by `summary_output`."""

    def __init__(self, as_json: bool, stdout: TextIO) -> None:
        self.as_json = as_json
        self._stdout = stdout

    @property
    def progress(self) -> bool:
        """Whether progress bars may be shown (never with --json)."""
        return not self.as_json

    def show(self, summary: Mapping[str, Any], render: Callable[[], None]) -> None:
        """Print `summary` as one JSON line, or call `render` to print the tables."""
        if self.as_json:
            self._stdout.write(json.dumps(to_json(summary), allow_nan=False) + "\n")
            self._stdout.flush()
        else:
            render()


@contextmanager
def summary_output(as_json: bool) -> Iterator[SummaryOutput]:
    """Run a command body whose summary `show` prints as tables or (as_json) as JSON on the real standard output,
    with everything else the body prints on standard output sent to standard error."""
    output = SummaryOutput(as_json, sys.stdout)
    if not as_json:
        yield output
        return
    with redirect_stdout(sys.stderr):
        yield output
