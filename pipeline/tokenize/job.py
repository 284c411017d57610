"""The tokenization job: shards → Ray Data (CPU decode tasks → codec actor pool) → one Parquet file per shard.

    from_items(shard tasks) ─flat_map(read_shard)─▶ rows of audio ─map_batches(CodecEncoder)─▶ rows of tokens
        ─iter_batches─▶ driver: ShardCollector buffers per shard ─▶ write_shard_table when a shard is complete

Resume: a shard whose file exists and holds exactly its manifest keys for this model version is skipped, so a
killed run re-run finishes the rest; the table manifest is rewritten last from the files actually present.

Memory on the driver is bounded by shards, not segments (issue 11): the plan comes from `manifest/shards.parquet`
(one row per shard), a shard's segment rows are read from its own part (`manifest/parts/{shard}.parquet`) only
when they are needed (checking a finished file, assembling a finished shard's table), and the input dataset
logged to MLflow is the manifest's digest, location and row count, not its rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

import ray

from pipeline.progress import NoProgress, ProgressSink
from pipeline.sharding.manifest import ShardEntry, read_shard_entries, read_shard_keys, read_shard_segments
from pipeline.tokenize.collect import ShardCollector
from pipeline.tokenize.config import TokenizeConfig
from pipeline.tokenize.decode import ShardTask, read_shard
from pipeline.tokenize.encode import CodecEncoder
from pipeline.tokenize.manifest import FileEntry, RejectedShard, describe_file, write_table_manifest
from pipeline.tokenize.table import (
    ModelInfo,
    build_table,
    existing_is_valid,
    shard_file,
    version_dir,
    write_shard_table,
)
from pipeline.tokenize.tracking import JOB_TAGS, log_job_inputs, log_job_result, run_name
from storage.fs import Location, check_reachable, open_location
from storage.mlflow_io import PRODUCTION_ALIAS, tracked_run
from storage.settings import S3Settings
from training.registry import ModelFiles, fetch_codec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TokenizeSummary:
    """What a run produced: the table's totals (all files, reused ones included) and this run's work."""

    table_url: str
    model: ModelInfo
    shards: int
    shards_written: int
    shards_reused: int
    rejected: list[RejectedShard]
    segments: int
    audio_hours: float
    tokens: int
    audio_seconds_this_run: float
    wall_seconds: float
    run_id: str = ""
    files: list[FileEntry] = field(default_factory=list)

    @property
    def tokens_per_audio_second(self) -> float:
        """Measured rate; a little above `frame_rate × tokens_per_frame` since every clip ends on a whole frame."""
        return self.tokens / (self.audio_hours * 3600.0) if self.audio_hours else 0.0

    @property
    def throughput(self) -> float:
        """Audio seconds tokenized per wall-clock second in this run."""
        return self.audio_seconds_this_run / self.wall_seconds if self.wall_seconds else 0.0


def fetch_model(model_uri: str) -> ModelFiles:
    """Resolve `model_uri` once and fetch that version's files, with the fix in the error when it is unknown."""
    try:
        return fetch_codec(model_uri)
    except LookupError as error:
        name = model_uri.removeprefix("models:/").split("@")[0].split("/")[0]
        raise LookupError(
            f"{error}. Promote a trained codec with `speechtok promote` (moves the alias {PRODUCTION_ALIAS} to the "
            f"version {name}@candidate registered by `speechtok train-codec`, through the quality gate), "
            f"or pass --model models:/{name}/VERSION explicitly."
        ) from error


def model_info(model_uri: str, files: ModelFiles) -> ModelInfo:
    """The token contract as saved with the codec (`codec.json`), not re-declared here (STYLE rule 6)."""
    meta = files.meta()
    return ModelInfo(
        uri=model_uri,
        name=files.version.name,
        version=files.version.version,
        tokens_per_frame=int(meta["tokens_per_frame"]),
        frame_rate=float(meta["frame_rate"]),
        sample_rate=int(meta["sample_rate"]),
        vocab_size=int(meta["vocab_size"]),
    )


def tokenize_shards(
    shards_url: str,
    out_url: str,
    model_uri: str | None = None,
    config: TokenizeConfig | None = None,
    s3: S3Settings | None = None,
    progress: ProgressSink | None = None,
) -> TokenizeSummary:
    """Tokenize every shard of a `speechtok shard` output (all splits, hold-out included) into `out_url`.

    `model_uri` defaults to `config.model_uri`. MLflow must already point at the registry holding it
    (`storage.mlflow_io.use_tracking_uri`); Ray is the running instance, else `config.ray_address`, else
    `RAY_ADDRESS`, else a local one. Damaged shards are rejected with their reason (summary, table manifest,
    MLflow) and the others finish.
    """
    config = config or TokenizeConfig()
    model_uri = model_uri or config.model_uri
    started = time.perf_counter()
    shards, out = open_location(shards_url, s3), open_location(out_url, s3)
    check_reachable(shards, must_exist=True)
    check_reachable(out, must_exist=False)
    files = fetch_model(model_uri)  # the alias is resolved here, once; everything below names the version
    model = model_info(model_uri, files)
    entries = read_shard_entries(shards)
    table_url = out.url_of(version_dir(model))
    with tracked_run(config.experiment, run_name(model), tags=JOB_TAGS) as run:
        log_job_inputs(run, model, config, shards_url, table_url, shards)
        summary, manifest = _tokenize(
            shards_url, shards, out, entries, model, files, config, s3, started, progress or NoProgress()
        )
        summary = replace(summary, run_id=run.run_id)
        log_job_result(run, summary, manifest)
    return summary


def _tokenize(
    shards_url: str,
    shards: Location,
    out: Location,
    entries: list[ShardEntry],
    model: ModelInfo,
    codec: ModelFiles,
    config: TokenizeConfig,
    s3: S3Settings | None,
    started: float,
    progress: ProgressSink,
) -> tuple[TokenizeSummary, dict[str, Any]]:
    """Skip the shards already done, run the rest, then write the table manifest from the files present."""
    present = sorted(entries, key=lambda entry: entry.shard)
    by_name = {entry.shard: entry for entry in present}

    pending = [
        entry
        for entry in present
        if not existing_is_valid(out, _parts(model, entry), lambda e=entry: read_shard_keys(shards, e.shard), model)  # type: ignore[misc]
    ]
    tasks = [ShardTask(entry.shard, entry.path, entry.num_segments) for entry in pending]
    # Ray workers do not share the driver's working directory: hand them an absolute location.
    absolute = shards.url_of()
    progress.start("tokenize shards", len(present), done=len(present) - len(pending))
    rejected = _run_pipeline(tasks, by_name, shards, absolute, s3, out, model, codec, config, progress) if tasks else []
    rejected_names = {r.shard for r in rejected}
    files = [
        describe_file(out, model, "/".join(_parts(model, entry)[1:]), entry.shard, entry.split)
        for entry in present
        if entry.shard not in rejected_names
    ]
    manifest = write_table_manifest(out, model, shards_url, files, rejected)
    written = {entry.shard for entry in pending if entry.shard not in rejected_names}
    summary = TokenizeSummary(
        table_url=out.url_of(version_dir(model)),
        model=model,
        shards=len(by_name),
        shards_written=len(written),
        shards_reused=len(present) - len(pending),
        rejected=rejected,
        segments=sum(f.rows for f in files),
        audio_hours=sum(f.audio_seconds for f in files) / 3600.0,
        tokens=sum(f.tokens for f in files),
        audio_seconds_this_run=sum(f.audio_seconds for f in files if f.shard in written),
        wall_seconds=time.perf_counter() - started,
        files=files,
    )
    return summary, manifest


def _parts(model: ModelInfo, entry: ShardEntry) -> tuple[str, str, str]:
    return shard_file(model, entry.split, entry.shard)


@dataclass
class _HoursDone:
    total: float
    done: float = 0.0


def _collect(
    dataset: Any,
    tasks: list[ShardTask],
    entries: dict[str, ShardEntry],
    shards: Location,
    out: Location,
    model: ModelInfo,
    config: TokenizeConfig,
    progress: ProgressSink,
    hours: _HoursDone,
) -> list[RejectedShard]:
    """Drain one execution: write each shard's table as soon as it is complete; the rejected shards."""
    collector = ShardCollector({t.shard: t.expected for t in tasks})
    paths = {t.shard: t.path for t in tasks}
    rejected: list[RejectedShard] = []
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        for outcome in collector.add_batch(batch):
            entry = entries[outcome.shard]
            reason = outcome.reason
            if outcome.rows is not None:
                try:
                    table = build_table(read_shard_segments(shards, entry.shard), outcome.rows, model)
                except ValueError as error:
                    reason = str(error)
                else:
                    write_shard_table(table, out, _parts(model, entry), config.compression, config.row_group_size)
                    hours.done += entry.audio_seconds / 3600
                    progress.advance("tokenize shards", status=f"{hours.done:.2f} of {hours.total:.2f} audio h")
                    continue
            rejected.append(RejectedShard(outcome.shard, paths[outcome.shard], reason))
            progress.advance("tokenize shards", status=f"{len(rejected)} rejected")
    rejected += [RejectedShard(o.shard, paths[o.shard], o.reason) for o in collector.finish()]
    return rejected


def _run_pipeline(
    tasks: list[ShardTask],
    entries: dict[str, ShardEntry],
    shards: Location,
    shards_url: str,
    s3: S3Settings | None,
    out: Location,
    model: ModelInfo,
    codec: ModelFiles,
    config: TokenizeConfig,
    progress: ProgressSink,
) -> list[RejectedShard]:
    """Stream the pending shards through Ray Data and write each shard's file as soon as it is complete."""
    if not ray.is_initialized():
        ray.init(address=config.ray_address)  # None: RAY_ADDRESS, else a local instance
    threads = max(1, int(config.cpus_per_worker))  # what the user reserved, before any fitting below
    fitted = config.fit_to_cluster(float(ray.cluster_resources().get("CPU", 1.0)))
    if fitted != config:
        logger.warning(
            "%d actors x %.2f CPUs + %.2f CPUs per decoding task exceed the cluster's CPUs; reserving %.2f each",
            config.workers,
            config.cpus_per_worker,
            config.decode_cpus,
            fitted.cpus_per_worker,
        )
        config = fitted
    # The codec reaches every actor through the object store, put once (issue 10: no driver-local paths).
    codec_ref = ray.put(codec)
    pending = [entries[t.shard] for t in tasks]
    durations = sum(e.audio_seconds for e in pending) / max(1, sum(e.num_segments for e in pending))
    hours = _HoursDone(sum(e.audio_seconds for e in pending) / 3600)
    rejected: list[RejectedShard] = []
    # One Ray Data execution per window of shards: Ray Data keeps a statistics record of every block it produced
    # until its execution ends, which at full scale (15 M segments, ~9 per block) would grow with the corpus.
    window = config.shards_per_execution
    for start in range(0, len(tasks), window):
        part = tasks[start : start + window]
        dataset = (
            ray.data.from_items([t.as_row() for t in part], override_num_blocks=len(part))
            .flat_map(
                read_shard,  # type: ignore[arg-type]  # Ray's stub omits keyword-only fn_kwargs
                fn_kwargs={"shards_url": shards_url, "s3": s3, "target_rate": model.sample_rate},
                num_cpus=config.decode_cpus,
            )
            .map_batches(
                CodecEncoder,
                fn_constructor_kwargs={
                    "codec": codec_ref,
                    "batch_seconds": config.batch_seconds,
                    "chunks_per_forward": config.chunks_per_forward,
                    "threads": threads,
                },
                batch_size=config.rows_per_batch(durations),
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=config.workers),
                num_gpus=config.gpus_per_worker or None,
                num_cpus=config.cpus_per_worker,
            )
        )
        rejected += _collect(dataset, part, entries, shards, out, model, config, progress, hours)
    for rejection in rejected:  # a stale file from an earlier run must not stand in for a rejected shard
        parts = _parts(model, entries[rejection.shard])
        if out.exists(*parts):
            out.fs.rm(out.path(*parts))
    return rejected
