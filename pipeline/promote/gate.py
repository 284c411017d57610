"""The quality gate between a candidate codec and production: typed config, per-metric comparison, decision.

Pure logic over two metric dicts (the aggregates of evaluation runs on the same evaluation set), so every rule
is unit-testable without MLflow.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field, model_validator

from pipeline.evaluate.config import METRICS

# Regressions tolerated per metric, in the metric's own unit: about the spread between repeated evaluations of
# one model on a small hold-out set, so noise alone does not block a promotion.
DEFAULT_TOLERANCES: dict[str, float] = {
    "mel_l1": 0.02,
    "mr_stft": 0.02,
    "si_sdr": 0.5,
    "stoi": 0.01,
    "pesq_wb": 0.05,
    "f0_rmse_cents": 10.0,
    "voicing_error": 0.01,
}


class GateConfig(BaseModel):
    """When a candidate may replace production.

    It passes when (1) the primary metric is better than production's by at least `min_primary_improvement`
    and (2) no gated metric (the keys of `tolerances`) is worse than production's by more than its tolerance.
    Directions come from `METRICS` (signal, intelligibility, speaker, quality and ABX metrics) unless overridden
    in `higher_is_better`.
    """

    primary_metric: str = Field(default="mel_l1", description="the metric that must improve")
    min_primary_improvement: float = Field(
        default=0.0, ge=0, description="how much better the primary metric must be (its unit); 0: strictly better"
    )
    tolerances: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_TOLERANCES),
        description="gated metrics and the regression each may show (its unit)",
    )
    higher_is_better: dict[str, bool] = Field(
        default_factory=dict, description="direction overrides, for metrics outside METRICS"
    )

    @model_validator(mode="after")
    def _known_directions(self) -> GateConfig:
        for name in {self.primary_metric, *self.tolerances}:
            if name not in METRICS and name not in self.higher_is_better:
                raise ValueError(
                    f"gate metric {name!r} has no known direction; use one of {sorted(METRICS)} or add it to "
                    "higher_is_better"
                )
        if any(value < 0 for value in self.tolerances.values()):
            raise ValueError(f"tolerances {self.tolerances} must be >= 0 (a regression allowance)")
        return self

    def direction(self, name: str) -> bool:
        """True when higher values of `name` are better."""
        if name in self.higher_is_better:
            return self.higher_is_better[name]
        return METRICS[name].higher_is_better

    def gated_metrics(self) -> list[str]:
        """The primary metric first, then the other gated metrics in order."""
        return [self.primary_metric, *(name for name in self.tolerances if name != self.primary_metric)]


@dataclass(frozen=True)
class MetricComparison:
    """One metric side by side. `improvement` is positive when the candidate is better (direction applied)."""

    metric: str
    candidate: float | None
    production: float | None
    higher_is_better: bool
    tolerance: float | None
    primary: bool
    ok: bool
    note: str

    @property
    def improvement(self) -> float | None:
        if self.candidate is None or self.production is None:
            return None
        delta = self.candidate - self.production
        return delta if self.higher_is_better else -delta


@dataclass(frozen=True)
class GateDecision:
    """Whether the candidate passes, why, and every comparison made."""

    passed: bool
    reason: str
    comparisons: list[MetricComparison]
    has_production: bool


def _compare(
    name: str, candidate: dict[str, float], production: dict[str, float], config: GateConfig
) -> MetricComparison:
    primary = name == config.primary_metric
    tolerance = config.tolerances.get(name)
    higher = config.direction(name)
    mine, theirs = candidate.get(name), production.get(name)

    def result(ok: bool, note: str) -> MetricComparison:
        return MetricComparison(name, mine, theirs, higher, tolerance, primary, ok, note)

    if mine is None:
        return result(False, "candidate has no value (missing on every clip?)")
    if theirs is None:
        # Production never measured it (e.g. PESQ undefined on all its clips): nothing to regress against.
        return result(True, "production has no value; not compared")
    improvement = (mine - theirs) if higher else (theirs - mine)
    if primary and improvement <= config.min_primary_improvement:
        needed = "better" if config.min_primary_improvement == 0 else f"better by > {config.min_primary_improvement:g}"
        return result(False, f"primary metric not {needed} (Δ {improvement:+.4g})")
    if tolerance is not None and improvement < -tolerance:
        return result(False, f"worse by {-improvement:.4g} > tolerance {tolerance:g}")
    return result(True, "better" if improvement > 0 else ("equal" if improvement == 0 else "within tolerance"))


def apply_gate(candidate: dict[str, float], production: dict[str, float] | None, config: GateConfig) -> GateDecision:
    """Compare the candidate's aggregate metrics with production's (None: there is no production version)."""
    if production is None:
        comparisons = [_compare(name, candidate, {}, config) for name in config.gated_metrics()]
        return GateDecision(True, "no production version yet: the first candidate is promoted", comparisons, False)
    comparisons = [_compare(name, candidate, production, config) for name in config.gated_metrics()]
    failures = [c for c in comparisons if not c.ok]
    if failures:
        reason = "; ".join(f"{c.metric}: {c.note}" for c in failures)
        return GateDecision(False, reason, comparisons, True)
    reason = f"{config.primary_metric} improved and no gated metric regressed beyond its tolerance"
    return GateDecision(True, reason, comparisons, True)
