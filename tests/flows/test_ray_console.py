"""Ray's console output (flows/ray_console.py): quiet by default, Ray's own behaviour with --verbose, and values a
user exported always win."""

from __future__ import annotations

import os

import pytest

from flows.ray_console import configure_ray_console

KNOBS = ("RAY_LOG_TO_DRIVER", "RAY_DATA_DISABLE_PROGRESS_BARS")


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A copy of the environment without the knobs, in place of os.environ for the test (restored after)."""
    copy = {name: value for name, value in os.environ.items() if name not in KNOBS}
    monkeypatch.setattr(os, "environ", copy)
    return copy


def test_quiet_by_default(environment: dict[str, str]) -> None:
    configure_ray_console(verbose=False)
    assert environment["RAY_LOG_TO_DRIVER"] == "0" and environment["RAY_DATA_DISABLE_PROGRESS_BARS"] == "1"


def test_verbose_keeps_rays_defaults(environment: dict[str, str]) -> None:
    configure_ray_console(verbose=True)
    assert not any(name in environment for name in KNOBS)


def test_exported_values_win(environment: dict[str, str]) -> None:
    environment["RAY_LOG_TO_DRIVER"] = "1"
    configure_ray_console(verbose=False)
    assert environment["RAY_LOG_TO_DRIVER"] == "1"
