"""Prefect flow `tokenize_corpus`: thin wiring around `pipeline.tokenize.tokenize_shards` (Ray Data).

Scheduled by the `tokenize-nightly` deployment in `infra/prefect.yaml`; each run is incremental because the job
skips shards whose file for the current production version already exists and validates.

The flow's parameters are locations and non-secret options only: settings (credentials included) come from the
environment of the process that runs it (`load_settings()`), so nothing secret is stored with the flow run.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.progress import RichProgressSink, progress_bar
from flows.settings import Settings, load_settings
from pipeline.tokenize import TokenizeConfig, TokenizeSummary, tokenize_shards
from storage.mlflow_io import ui_command, use_tracking_uri


@flow(name="tokenize_corpus")
def tokenize_corpus(
    shards: str,
    out: str,
    model_uri: str | None = None,
    config: TokenizeConfig | None = None,
    settings: Settings | None = None,
    show_progress: bool = False,
) -> TokenizeSummary:
    """Tokenize every shard of `shards` into hive-partitioned Parquet under `out`.

    `settings` default to `load_settings()` (SPEECHTOK_* and the standard MLFLOW_/AWS_/RAY_ variables), which is
    what a deployment's worker process sees; `config` defaults to `settings.tokenize` and `model_uri` to its
    `model_uri` (`models:/speechtok-codec@production`).
    """
    logger = get_run_logger()
    settings = settings or load_settings()
    config = config or settings.tokenize
    model_uri = model_uri or config.model_uri
    use_tracking_uri(settings.tracking_uri())
    logger.info("tokenizing %s with %s; MLflow UI: %s", shards, model_uri, ui_command(settings.tracking_uri()))
    with progress_bar(show_progress) as bar:
        summary = tokenize_shards(shards, out, model_uri, config, settings.s3, RichProgressSink(bar))
    logger.info(
        "%s: %d segments, %.3f audio hours, %d shards written, %d reused, %d rejected (%s)",
        summary.table_url,
        summary.segments,
        summary.audio_hours,
        summary.shards_written,
        summary.shards_reused,
        len(summary.rejected),
        summary.model.resolved_uri,
    )
    return summary
