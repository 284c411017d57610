"""Evaluation results in MLflow: one run per evaluation (experiment `evaluate`) linked to the model version.

Run: tags `speechtok.job=evaluate`, `speechtok.model_name`, `speechtok.model_version`, `speechtok.eval_set` (the
evaluation set id) and `speechtok.shards`; params (model URI, shards, config); every aggregate as a metric (also
linked to the version's logged model, MLflow 3); the report under `report/`.
Version: tags `speechtok.eval.run_id`, `speechtok.eval.set`, `speechtok.eval.shards` and one
`speechtok.eval.<metric>` per headline metric (`VERSION_TAG_METRICS`), always of the latest evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.evaluate.config import METRICS, EvaluateConfig
from pipeline.evaluate.report import ReportFiles
from pipeline.evaluate.run import Evaluation
from storage.mlflow_io import RegisteredVersion, TrackedRun, find_runs, set_model_version_tags, version_details

JOB_TAG = "speechtok.job"
MODEL_NAME_TAG = "speechtok.model_name"
MODEL_VERSION_TAG = "speechtok.model_version"
EVAL_SET_TAG = "speechtok.eval_set"
SHARDS_TAG = "speechtok.shards"
VERSION_RUN_TAG = "speechtok.eval.run_id"
VERSION_SET_TAG = "speechtok.eval.set"
VERSION_SHARDS_TAG = "speechtok.eval.shards"
VERSION_METRIC_PREFIX = "speechtok.eval."
REPORT_ARTIFACT_PATH = "report"
# Headline metrics copied onto the version as tags (the registry UI shows tags, the gate reads the run).
VERSION_TAG_METRICS = (
    *METRICS,
    "bitrate_bps",
    "entropy_bitrate_bps",
    "tokens.entropy_bits_mean",
    "tokens.unused_code_fraction",
)


@dataclass(frozen=True)
class EvaluationRecord:
    """A logged evaluation of a version: its run, evaluation set and aggregate metrics."""

    run_id: str
    version: RegisteredVersion
    eval_set: str
    shards_url: str
    metrics: dict[str, float]


def run_name(version: RegisteredVersion) -> str:
    return f"evaluate-{version.name}-v{version.version}"


def run_tags(version: RegisteredVersion, eval_set: str, shards_url: str) -> dict[str, str]:
    return {
        JOB_TAG: "evaluate",
        MODEL_NAME_TAG: version.name,
        MODEL_VERSION_TAG: version.version,
        EVAL_SET_TAG: eval_set,
        SHARDS_TAG: shards_url,
    }


def log_evaluation(
    run: TrackedRun,
    version: RegisteredVersion,
    model_uri: str,
    config: EvaluateConfig,
    evaluation: Evaluation,
    report: ReportFiles,
) -> None:
    """Params, metrics (run and logged model), the report artifacts and the version tags of one evaluation."""
    run.log_params(
        {
            "model_uri": model_uri,
            "resolved_model_uri": version.model_uri,
            "shards_url": evaluation.selection.shards_url,
            "eval_set": evaluation.selection.set_id,
            **{f"config.{key}": value for key, value in config.fingerprint().items()},
            "systems": ",".join(system.name for system in evaluation.systems),
            # Why an optional metric group did not run (missing package + install hint), cut to MLflow's limit.
            **{f"skipped.{group}": why[:500] for group, why in evaluation.skipped.items()},
        }
    )
    metrics = evaluation.metrics()
    run.log_metrics(metrics)
    model_id = version_details(version).model_id
    if model_id:
        run.log_metrics({name: metrics[name] for name in VERSION_TAG_METRICS if name in metrics}, model_id=model_id)
    run.log_artifacts(report.directory, REPORT_ARTIFACT_PATH)
    tags = {
        VERSION_RUN_TAG: run.run_id,
        VERSION_SET_TAG: evaluation.selection.set_id,
        VERSION_SHARDS_TAG: evaluation.selection.shards_url,
    }
    headline = {name: metrics[name] for name in VERSION_TAG_METRICS if name in metrics}
    tags.update({f"{VERSION_METRIC_PREFIX}{name}": f"{value:.6g}" for name, value in headline.items()})
    set_model_version_tags(version, tags)


def latest_evaluation(
    version: RegisteredVersion, eval_set: str | None = None, experiment: str = EvaluateConfig().experiment
) -> EvaluationRecord | None:
    """The newest finished evaluation run of `version` (on `eval_set` when given), or None."""
    tags = {JOB_TAG: "evaluate", MODEL_NAME_TAG: version.name, MODEL_VERSION_TAG: version.version}
    if eval_set is not None:
        tags[EVAL_SET_TAG] = eval_set
    runs = find_runs(experiment, tags)
    if not runs:
        return None
    run = runs[0]
    return EvaluationRecord(run.run_id, version, run.tags[EVAL_SET_TAG], run.tags.get(SHARDS_TAG, ""), run.metrics)
