"""One MLflow run per export (experiment `export`), through `storage.mlflow_io` helpers.

Opened after planning and before any file is written, so a failed export is recorded as FAILED. Logged: params
(source table, manifest digest, model, output location, the whole config), metrics per split (utterances,
documents, content/special tokens, audio hours, shards) and for the run (shards written/reused, bytes per token,
throughput), `meta.json` as an artifact and the tag `speechtok.export` pointing at the output. Locations are
logged as typed (no credentials are part of a URL or of the settings logged here).
"""

from __future__ import annotations

import json
from dataclasses import replace

from pipeline.export.job import ExportPlan, ExportSummary, Progress, run_export
from storage.fs import local_scratch
from storage.mlflow_io import TrackedRun, tracked_run
from storage.settings import S3Settings

EXPORT_TAG = "speechtok.export"
JOB_TAGS = {"speechtok.job": "export-llm"}


def run_name(plan: ExportPlan) -> str:
    return f"export-{plan.config.format.value}-{plan.source.model_name}-v{plan.source.model_version}"


def log_export_inputs(run: TrackedRun, plan: ExportPlan, out_url: str) -> None:
    source = plan.source
    run.log_params(
        {
            "token_table": source.url,
            "manifest_sha256": source.manifest_sha256,
            "model_uri": source.resolved_model_uri,
            "model_version": source.model_version,
            "out_url": out_url,
            **{f"config.{key}": value for key, value in plan.config.model_dump(mode="json").items()},
        }
    )
    run.set_tags({EXPORT_TAG: out_url, **JOB_TAGS})


def log_export_result(run: TrackedRun, summary: ExportSummary) -> None:
    metrics: dict[str, float] = {
        "tokens": summary.plan.tokens,
        "content_tokens": summary.content_tokens,
        "shards_written": summary.shards_written,
        "shards_reused": summary.shards_reused,
        "bytes_on_disk": summary.bytes_on_disk,
        "bytes_per_content_token": summary.bytes_on_disk / max(1, summary.content_tokens),
        "wall_seconds": summary.wall_seconds,
        "tokens_per_second": summary.tokens_per_second,
    }
    for split, counts in summary.meta["splits"].items():
        for key in ("utterances", "documents", "speakers", "books", "content_tokens", "special_tokens", "tokens"):
            metrics[f"{split}.{key}"] = counts[key]
        metrics[f"{split}.audio_hours"] = counts["audio_seconds"] / 3600.0
        metrics[f"{split}.shards"] = len(counts["shards"])
    run.log_metrics(metrics)
    with local_scratch("speechtok-export-meta-") as scratch:
        path = scratch / "meta.json"
        path.write_text(json.dumps(summary.meta, indent=2) + "\n")
        run.log_artifact(path, artifact_path="export")


def tracked_export(
    plan: ExportPlan, out_url: str, s3: S3Settings | None = None, progress: Progress | None = None
) -> ExportSummary:
    """`run_export` inside an MLflow run (MLflow must already point at the tracking store: `use_tracking_uri`)."""
    with tracked_run(plan.config.experiment, run_name(plan), tags=JOB_TAGS) as run:
        log_export_inputs(run, plan, out_url)
        summary = run_export(plan, out_url, s3, progress)
        log_export_result(run, summary)
    return replace(summary, run_id=run.run_id)
