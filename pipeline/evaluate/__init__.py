"""Codec evaluation on the hold-out speakers (issue 5): signal metrics, F0, token statistics, report, MLflow.

Modules: `config` (EvaluateConfig, the metric catalogue), `metrics` / `pitch` / `token_stats` (the measures, each
testable on synthetic signals), `clip` (all metrics of one clip), `dataset` (the hold-out evaluation set), `run`
(`evaluate_codec` over an in-memory codec), `report` (Markdown + PNG), `tracking` (MLflow run and version tags)
and `job` (`evaluate_model`: registry model → run, report, tags). Only the light config is re-exported here, so
importing the settings does not load torch.
"""

from pipeline.evaluate.config import METRICS, SIGNAL_METRICS, EvaluateConfig, MetricSpec

__all__ = ["METRICS", "SIGNAL_METRICS", "EvaluateConfig", "MetricSpec"]
