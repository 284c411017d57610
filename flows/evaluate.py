"""Prefect flows `evaluate_model` and `evaluate_and_promote`: thin wiring around `pipeline.evaluate` and
`pipeline.promote`.

`evaluate_and_promote` runs `pipeline.promote.evaluate_and_promote.evaluate_and_promote_candidate` (evaluate the
candidate, production too when needed, then the quality gate) and announces a promotion as a Prefect event. A
failing gate is a result, not a failed flow run.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.events import emit_event
from prefect.runtime import flow_run

from flows.progress import RichProgressSink, progress_bar
from flows.settings import Settings, load_settings
from pipeline.evaluate.config import EvaluateConfig
from pipeline.evaluate.job import EvaluationSummary, evaluate_model
from pipeline.promote.evaluate_and_promote import evaluate_and_promote_candidate
from pipeline.promote.gate import GateConfig
from pipeline.promote.promote import PromotionOutcome
from storage.mlflow_io import ui_command, use_tracking_uri

DEFAULT_CANDIDATE = "models:/speechtok-codec@candidate"


@flow(name="evaluate_model")
def evaluate_model_flow(
    model_uri: str,
    shards: str,
    config: EvaluateConfig | None = None,
    settings: Settings | None = None,
    show_progress: bool = False,
) -> EvaluationSummary:
    """Evaluate one registered codec on the hold-out speakers of `shards` and record it in MLflow."""
    settings = settings or load_settings()
    use_tracking_uri(settings.tracking_uri())
    with progress_bar(show_progress) as bar:
        evaluate = config or settings.evaluate
        summary = evaluate_model(model_uri, shards, evaluate, settings.s3, progress=RichProgressSink(bar))
    get_run_logger().info(
        "%s: %d clips, evaluation run %s; MLflow UI: %s",
        summary.version.model_uri,
        len(summary.evaluation.clips),
        summary.run_id,
        ui_command(settings.tracking_uri()),
    )
    return summary


@flow(name="evaluate_and_promote")
def evaluate_and_promote(
    shards: str,
    candidate: str = DEFAULT_CANDIDATE,
    evaluate: EvaluateConfig | None = None,
    gate: GateConfig | None = None,
    settings: Settings | None = None,
) -> PromotionOutcome:
    """Evaluate `candidate` (and production if needed) on the hold-out speakers of `shards`, then promote the
    candidate to `production` if the quality gate passes (or no production exists)."""
    settings = settings or load_settings()
    use_tracking_uri(settings.tracking_uri())
    actor = f"prefect flow evaluate_and_promote (flow run {flow_run.get_id()})"
    outcome = evaluate_and_promote_candidate(
        shards, candidate, evaluate or settings.evaluate, gate or settings.gate, actor=actor, s3=settings.s3
    )
    get_run_logger().info("%s %s: %s", outcome.label, outcome.candidate.model_uri, outcome.reason)
    if outcome.promoted:
        emit_promotion_event(outcome)
    return outcome


# Event a deployment trigger can wait for (infra/k8s/prefect.yaml: a promotion starts the next tokenization).
PROMOTED_EVENT = "speechtok.codec.promoted"


def model_resource_id(name: str) -> str:
    """The Prefect resource id of a registered model, as events name it."""
    return f"speechtok.model.{name}"


def emit_promotion_event(outcome: PromotionOutcome) -> None:
    """Tell Prefect's event system that `production` moved (no-op where no Prefect API is configured)."""
    candidate = outcome.candidate
    emit_event(
        PROMOTED_EVENT,
        resource={
            "prefect.resource.id": model_resource_id(candidate.name),
            "speechtok.model.version": str(candidate.version),
            "speechtok.model.uri": candidate.model_uri,
        },
        payload={"previous": None if outcome.previous is None else str(outcome.previous.version)},
    )
