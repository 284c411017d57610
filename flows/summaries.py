"""The `--json` summaries of the commands (issue 11): one plain object per command, built from the same result as
its tables (flows/output.py prints one or the other).

Keys are the table rows' quantities with their units in the name where one is needed; numbers stay numbers.
Lists of keys or files that can grow with the corpus are left out (the tables leave them out too: they are in the
manifests the summaries point at).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flows.output import to_json

if TYPE_CHECKING:
    from flows.build_tokens import BuildTokensResult
    from flows.shard import ShardRunSummary
    from pipeline.evaluate.job import EvaluationSummary
    from pipeline.export.job import ExportSummary
    from pipeline.export.meta import ExportStatus
    from pipeline.promote.promote import PromotionOutcome
    from pipeline.query.stats import TableStats
    from pipeline.tokenize import TokenizeSummary, VerifyReport
    from training.launch import TrainResult


def shard_summary(summary: ShardRunSummary) -> dict[str, Any]:
    """`shard --json`: the manifest counts and what this run wrote."""
    return {
        "destination": summary.destination,
        **to_json(summary.manifest),
        "rejected_files": summary.manifest.rejected_files,
        "shards_written": summary.shards_written,
        "shards_reused": summary.shards_reused,
        "task_runs": summary.task_runs,
    }


def training_summary(result: TrainResult, tracking_uri: str) -> dict[str, Any]:
    """`train-encoder/train-codec --json`: the registered version, steps, final metrics and the MLflow run."""
    from storage.mlflow_io import CANDIDATE_ALIAS

    return {
        "registered": result.registered.model_uri,
        "alias": CANDIDATE_ALIAS,
        "steps": result.steps,
        "metrics": result.metrics,
        "run_id": result.run_id,
        "tracking_uri": tracking_uri,
    }


def tokenize_summary(summary: TokenizeSummary) -> dict[str, Any]:
    """`tokenize --json`: the table's totals and this run's work (the per-file list is in _manifest.json)."""
    fields = to_json(summary)
    fields.pop("files", None)
    return {
        **fields,
        "model": {**fields["model"], "resolved_uri": summary.model.resolved_uri},
        "tokens_per_audio_second": summary.tokens_per_audio_second,
        "throughput_audio_s_per_s": summary.throughput,
    }


def verify_summary(report: VerifyReport) -> dict[str, Any]:
    """`verify-tokens --json`: counts, every gap counted in full (`gap_counts`) with its first keys, and warnings."""
    return {**to_json(report), "ok": report.ok, "problems": report.problems(), "warnings": report.warnings()}


def stats_summary(stats: TableStats, top: int, exports: list[ExportStatus], histogram_url: str) -> dict[str, Any]:
    """`stats --json`: totals, the `top` largest speakers and books, the exports and the histogram's location."""
    return {
        "url": stats.url,
        "model_version": stats.model_version,
        "utterances": stats.utterances,
        "audio_hours": stats.hours,
        "frames": stats.frames,
        "tokens": stats.tokens,
        "tokens_per_audio_second": stats.tokens_per_second,
        "speakers": stats.speakers,
        "books": stats.books,
        "distinct_token_values": stats.histogram.distinct,
        "unigram_entropy_bits": stats.histogram.entropy_bits,
        "by_version_split": to_json(stats.by_version_split),
        "by_speaker": to_json(stats.by_speaker[:top]),
        "by_book": to_json(stats.by_book[:top]),
        "exports": to_json(exports),
        "histogram": histogram_url,
    }


def evaluation_summary(summary: EvaluationSummary, tracking_uri: str) -> dict[str, Any]:
    """`evaluate --json`: every aggregate metric (MLflow's names), token usage and where the report is."""
    evaluation, tokens = summary.evaluation, summary.evaluation.tokens
    return {
        "model_uri": summary.version.model_uri,
        "metrics": summary.metrics,
        "bitrate_bps": tokens.bitrate_bps,
        "entropy_bitrate_bps": tokens.entropy_bitrate_bps,
        "token_entropy_bits": float(tokens.entropy_bits.mean()),
        "unused_code_fraction": tokens.unused_code_fraction,
        "clips": len(evaluation.clips),
        "audio_seconds": evaluation.audio_seconds,
        "evaluation_set": evaluation.selection.set_id,
        "skipped": evaluation.skipped,
        "run_id": summary.run_id,
        "tracking_uri": tracking_uri,
    }


def promotion_summary(outcome: PromotionOutcome) -> dict[str, Any]:
    """`promote --json`: the decision, both versions and every compared metric."""
    return {
        "label": outcome.label,
        "promoted": outcome.promoted,
        "forced": outcome.forced,
        "candidate": outcome.candidate.model_uri,
        "previous": None if outcome.previous is None else outcome.previous.model_uri,
        "reason": outcome.reason,
        "gate_passed": outcome.decision.passed,
        "gate_reason": outcome.decision.reason,
        "comparisons": [
            {**to_json(row), "improvement": to_json(row.improvement)} for row in outcome.decision.comparisons
        ],
        "actor": outcome.actor,
    }


def export_summary(summary: ExportSummary) -> dict[str, Any]:
    """`export-llm --json`: layout, per-split counts (meta.json's), bytes and throughput."""
    plan = summary.plan
    return {
        "out_url": summary.out_url,
        "source": plan.source.url,
        "model": plan.source.resolved_model_uri,
        "format": to_json(plan.config.format),
        "document": to_json(plan.config.document),
        "specials": plan.config.specials.used(),
        "splits": to_json(summary.meta["splits"]),
        "shards_written": summary.shards_written,
        "shards_reused": summary.shards_reused,
        "content_tokens": summary.content_tokens,
        "bytes_on_disk": summary.bytes_on_disk,
        "token_file_bytes": summary.token_file_bytes,
        "tokens_per_second": summary.tokens_per_second,
        "wall_seconds": summary.wall_seconds,
        "run_id": summary.run_id,
    }


def build_summary(result: BuildTokensResult) -> dict[str, Any]:
    """`demo --json`: where everything is after `build_tokens`."""
    config, tokens, stats, promotion = result.config, result.tokens, result.stats, result.promotion
    return {
        "corpus": config.corpus,
        "shards": config.shards,
        "segments": result.shards.manifest.segments,
        "encoder": {"model_uri": result.encoder.registered.model_uri, "steps": result.encoder.steps},
        "codec": {"model_uri": result.codec.registered.model_uri, "steps": result.codec.steps},
        "promotion": {"label": promotion.label, "reason": promotion.reason},
        "token_table": tokens.table_url,
        "model": tokens.model.resolved_uri,
        "tokens": stats.tokens,
        "audio_hours": stats.hours,
        "tokens_per_audio_second": stats.tokens_per_second,
        "utterances": stats.utterances,
        "speakers": stats.speakers,
        "histogram": result.histogram,
        "tracking_uri": result.tracking_uri,
        "flow_run_id": result.flow_run_id,
    }
