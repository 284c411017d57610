"""One MLflow run per tokenization job (experiment `tokenize`), through `storage.mlflow_io` helpers.

The run opens before any work (params and input lineage first), so a job that fails mid-way is still recorded,
as FAILED; the results are logged when the table manifest is written. Logged: params (model URI and resolved
version, input/output locations, the whole config), metrics (segments, audio hours, tokens, tokens per audio
second, throughput, rejected shards), the segments manifest as the run's input dataset (lineage: its location,
digest, row count and schema, never its rows), the table manifest as an artifact, and a tag on the model version
naming the table.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pipeline.sharding.manifest import SEGMENTS_MANIFEST, SEGMENTS_SCHEMA, SHARDS_MANIFEST
from pipeline.tokenize.config import TokenizeConfig
from storage.fs import Location, local_scratch
from storage.mlflow_io import DatasetInput, RegisteredVersion, TrackedRun, set_model_version_tag
from storage.parquet_io import open_parquet

if TYPE_CHECKING:
    from pipeline.tokenize.job import TokenizeSummary
    from pipeline.tokenize.table import ModelInfo

TABLE_TAG = "speechtok.token_table"
TABLE_RUN_TAG = "speechtok.token_table_run"
JOB_TAGS = {"speechtok.job": "tokenize"}


def run_name(model: ModelInfo) -> str:
    return f"tokenize-{model.name}-v{model.version}"


def log_job_inputs(
    run: TrackedRun, model: ModelInfo, config: TokenizeConfig, shards_url: str, table_url: str, shards: Location
) -> None:
    """What the job is about to do: params and the segments manifest as its input dataset (metadata only)."""
    run.log_params(
        {
            "model_uri": model.uri,
            "model_name": model.name,
            "model_version": model.version,
            "resolved_model_uri": model.resolved_uri,
            "shards_url": shards_url,
            "table_url": table_url,
            **{f"config.{key}": value for key, value in config.model_dump().items()},
        }
    )
    run.log_input(segments_lineage(shards, context="tokenize"))


def log_job_result(run: TrackedRun, summary: TokenizeSummary, manifest: dict[str, Any]) -> None:
    """What the job produced: metrics, the table manifest artifact and the model version's table tags."""
    model = summary.model
    run.log_metrics(
        {
            "segments": summary.segments,
            "audio_hours": summary.audio_hours,
            "tokens": summary.tokens,
            "tokens_per_audio_second": summary.tokens_per_audio_second,
            "nominal_tokens_per_second": model.frame_rate * model.tokens_per_frame,
            "throughput_audio_s_per_wall_s": summary.throughput,
            "rejected_shards": len(summary.rejected),
            "shards_written": summary.shards_written,
            "shards_reused": summary.shards_reused,
            "wall_seconds": summary.wall_seconds,
        }
    )
    with local_scratch("speechtok-manifest-") as scratch:
        path = scratch / "_manifest.json"
        path.write_text(json.dumps(manifest, indent=2) + "\n")
        run.log_artifact(path, artifact_path="token_table")
    version = RegisteredVersion(model.name, model.version, model.resolved_uri)
    set_model_version_tag(version, TABLE_TAG, summary.table_url)
    set_model_version_tag(version, TABLE_RUN_TAG, run.run_id)


def segments_lineage(location: Location, context: str) -> DatasetInput:
    """`manifest/segments.parquet` as an MLflow input dataset, without reading its rows: the digest is the SHA-256 of
    `manifest/shards.parquet` (which lists every shard's SHA-256 and segment count, so it changes whenever any
    segment does), the row count comes from the Parquet footer, the schema from its first rows."""
    with open_parquet(location, *SEGMENTS_MANIFEST) as segments:
        rows = segments.metadata.num_rows
        sample = next(segments.iter_batches(batch_size=5), None)
    frame = (sample if sample is not None else SEGMENTS_SCHEMA.empty_table()).to_pandas()
    return DatasetInput(
        source=location.url_of(*SEGMENTS_MANIFEST),
        name="segments",
        digest=location.sha256(*SHARDS_MANIFEST)[:16],
        num_rows=rows,
        sample=frame,
        context=context,
    )
