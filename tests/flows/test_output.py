"""`--json` summaries (flows/output.py): JSON-safe conversion, and stdout carrying exactly one JSON object."""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from flows.output import summary_output, to_json


class Colour(enum.Enum):
    red = "red"


@dataclass(frozen=True)
class Inner:
    path: Path
    colour: Colour
    counts: np.ndarray


@dataclass(frozen=True)
class Outer:
    inner: Inner
    ratio: float
    items: tuple[int, ...]
    by_name: dict[str, np.int64]


def test_to_json_gives_plain_json_values() -> None:
    value = Outer(
        inner=Inner(Path("/a/b"), Colour.red, np.array([1, 2], dtype=np.int32)),
        ratio=float("nan"),
        items=(1, 2),
        by_name={"x": np.int64(3)},
    )
    converted = to_json(value)
    assert converted == {
        "inner": {"path": "/a/b", "colour": "red", "counts": [1, 2]},
        "ratio": None,  # JSON has no NaN
        "items": [1, 2],
        "by_name": {"x": 3},
    }
    assert json.loads(json.dumps(converted, allow_nan=False)) == converted
    assert to_json(np.float32(0.5)) == 0.5 and to_json(math.inf) is None


def test_json_mode_prints_one_object_on_stdout_and_the_rest_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    rendered = []
    with summary_output(True) as output:
        print("a library's chatter")
        output.show({"files": 2, "hours": np.float64(0.25)}, lambda: rendered.append(True))
        assert not output.progress
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"files": 2, "hours": 0.25}
    assert captured.out.count("\n") == 1 and "chatter" in captured.err
    assert not rendered


def test_table_mode_renders_and_leaves_stdout_alone(capsys: pytest.CaptureFixture[str]) -> None:
    with summary_output(False) as output:
        print("table")
        output.show({"files": 2}, lambda: print("rendered"))
        assert output.progress
    assert capsys.readouterr().out == "table\nrendered\n"
