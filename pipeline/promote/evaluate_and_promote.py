"""Evaluate a candidate codec (and production when it has no evaluation on the same hold-out set), then promote
through the quality gate: the rules of the `evaluate_and_promote` flow, as one plain function.

A failing gate is a result (`PromotionOutcome.promoted` False, production unchanged), not an error, so a pipeline
around it carries on with the current production.
"""

from __future__ import annotations

import logging

from pipeline.evaluate.config import EvaluateConfig
from pipeline.evaluate.job import evaluate_model
from pipeline.evaluate.tracking import latest_evaluation
from pipeline.promote.gate import GateConfig
from pipeline.promote.promote import PromotionOutcome, promote, resolve_candidate
from storage.mlflow_io import PRODUCTION_ALIAS, alias_version
from storage.settings import S3Settings

logger = logging.getLogger(__name__)


def evaluate_and_promote_candidate(
    shards: str,
    candidate: str,
    evaluate: EvaluateConfig,
    gate: GateConfig,
    *,
    actor: str,
    s3: S3Settings | None = None,
) -> PromotionOutcome:
    """Evaluate `candidate` (a `models:/` URI or version) on the hold-out speakers of `shards`, evaluate the
    current production too if it has no evaluation on the same hold-out set, then apply the gate. MLflow must
    already point at the registry."""
    version = resolve_candidate(candidate)
    mine = evaluate_model(version.model_uri, shards, evaluate, s3)
    eval_set = mine.evaluation.selection.set_id
    production = alias_version(version.name, PRODUCTION_ALIAS)
    if (
        production is not None
        and production.version != version.version
        and latest_evaluation(production, eval_set, evaluate.experiment) is None
    ):
        logger.info("production %s has no evaluation on set %s: evaluating it", production.model_uri, eval_set)
        evaluate_model(production.model_uri, shards, evaluate, s3)
    return promote(version.version, gate, actor=actor, eval_set=eval_set, experiment=evaluate.experiment)
