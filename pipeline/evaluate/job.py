"""`evaluate_model`: a registered codec → evaluation over the hold-out speakers → MLflow run, report, version tags."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.evaluate.clip import ClipScores
from pipeline.evaluate.config import EvaluateConfig
from pipeline.evaluate.dataset import select_holdout
from pipeline.evaluate.references import ClipReference, load_references
from pipeline.evaluate.report import write_report
from pipeline.evaluate.run import Evaluation, evaluate_codec
from pipeline.evaluate.tracking import log_evaluation, run_name, run_tags
from pipeline.progress import NoProgress, ProgressSink
from storage.fs import check_reachable, local_scratch, open_location
from storage.mlflow_io import PRODUCTION_ALIAS, RegisteredVersion, alias_version, tracked_run
from storage.settings import S3Settings
from training.registry import load_codec


@dataclass(frozen=True)
class EvaluationSummary:
    """What `evaluate_model` measured and where it is recorded."""

    model_uri: str
    version: RegisteredVersion
    run_id: str
    evaluation: Evaluation

    @property
    def metrics(self) -> dict[str, float]:
        return self.evaluation.metrics()


def evaluate_model(
    model_uri: str,
    shards_url: str,
    config: EvaluateConfig | None = None,
    s3: S3Settings | None = None,
    on_clip: Callable[[ClipScores], None] | None = None,
    progress: ProgressSink | None = None,
) -> EvaluationSummary:
    """Evaluate the codec `model_uri` (`models:/name@alias` or `models:/name/N`) on the hold-out speakers of the
    `speechtok shard` output `shards_url`, beside the `production` version (when another one has that alias) and
    the Codec2 baselines, and record it in MLflow (which must already point at the registry). `config.corpus`
    (the raw corpus) gives reference texts and phones.

    Raises LookupError when the model is not registered and ValueError when the shards have no hold-out segments.
    """
    config = config or EvaluateConfig()
    location = open_location(shards_url, s3)
    check_reachable(location, must_exist=True)
    loaded = load_codec(model_uri)
    version, codec = loaded.version, loaded.codec
    with local_scratch("speechtok-evaluate-") as scratch:
        production = None
        current = alias_version(version.name, PRODUCTION_ALIAS) if config.compare_production else None
        if current is not None and current.version != version.version:
            production = load_codec(current.model_uri).codec
        selection = select_holdout(location, config)
        progress = progress or NoProgress()
        progress.start("evaluate clips", len(selection.segments))

        def scored(scores: ClipScores) -> None:
            progress.advance("evaluate clips")
            if on_clip is not None:
                on_clip(scores)

        references: dict[str, ClipReference] = {}
        if config.corpus is not None:
            references = load_references(open_location(config.corpus, s3), location, selection, config.max_seconds)
        tags = run_tags(version, selection.set_id, shards_url)
        with tracked_run(config.experiment, run_name(version), tags=tags) as run:
            evaluation = evaluate_codec(
                codec, location, config, scored, selection, production=production, references=references
            )
            report = write_report(evaluation, version.model_uri, scratch / "report")
            log_evaluation(run, version, model_uri, config, evaluation, report)
    return EvaluationSummary(model_uri, version, run.run_id, evaluation)
