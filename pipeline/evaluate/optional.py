"""Optional evaluation packages (the `eval` extra): import them on demand, or say how to install them.

A metric whose package is missing is recorded as skipped with the install hint, never a crash (issue 13).
"""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = 'pip install ".[eval]" (or: make setup)'


class MetricSkipped(RuntimeError):
    """A metric group cannot run here; the message names the missing package and the install hint."""


def require(module: str, metric: str) -> ModuleType:
    """Import `module` for `metric`, or raise MetricSkipped naming the package and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MetricSkipped(f"{metric} skipped: {module} is not importable ({error}); {INSTALL_HINT}") from error
