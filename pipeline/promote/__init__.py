"""Promotion of a candidate codec to `production` through a configurable quality gate (issue 5).

`gate` is the pure rule (GateConfig → GateDecision); `promote` reads the evaluations from MLflow, applies the
gate, moves the alias and records the decision. Only the light gate is re-exported here.
"""

from pipeline.promote.gate import GateConfig, GateDecision, MetricComparison, apply_gate

__all__ = ["GateConfig", "GateDecision", "MetricComparison", "apply_gate"]
