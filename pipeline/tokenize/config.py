"""Typed configuration of the tokenization job."""

from __future__ import annotations

from pydantic import BaseModel, Field

from storage.mlflow_io import CODEC_MODEL_NAME, PRODUCTION_ALIAS

DEFAULT_MODEL_URI = f"models:/{CODEC_MODEL_NAME}@{PRODUCTION_ALIAS}"


class TokenizeConfig(BaseModel):
    """How shards are decoded and encoded on Ray Data, and how token tables are written.

    Part of the speechtok settings (`tokenize:` in the YAML, `SPEECHTOK_TOKENIZE__WORKERS=4`, ...), so a Prefect
    deployment's worker configures its runs through its environment alone.
    """

    model_uri: str = Field(
        default=DEFAULT_MODEL_URI,
        description="codec to tokenize with; an alias is resolved once per run, and the version is what is recorded",
    )
    ray_address: str | None = Field(
        default=None, description="Ray cluster (host:port or ray://host:10001); default RAY_ADDRESS, else local Ray"
    )
    workers: int = Field(default=1, ge=1, description="codec actors (one per GPU, or CPU actors)")
    gpus_per_worker: float = Field(default=0.0, ge=0, description="GPUs per actor; fractions share a GPU")
    cpus_per_worker: float = Field(default=1.0, gt=0, description="CPUs reserved per codec actor")
    decode_cpus: float = Field(default=1.0, gt=0, description="CPUs reserved per shard-decoding task")
    batch_seconds: float = Field(
        default=120.0,
        gt=0,
        description="audio seconds per actor batch; rows per batch = batch_seconds / mean segment duration, and "
        "the padded input of one encode call stays under it",
    )
    chunks_per_forward: int | None = Field(
        default=None,
        ge=1,
        description="chunks per encoder forward; default: the codec's encoding policy for the device (1 on CPU, "
        "8 on GPU). A different value is a different policy, recorded in every token file",
    )
    row_group_size: int = Field(
        default=4096, ge=1, description="Parquet rows per row group (a 16 s row holds ~1.5 kB of tokens)"
    )
    compression: str = Field(default="zstd", description="Parquet codec")
    shards_per_execution: int = Field(
        default=128,
        ge=1,
        description="shards streamed through one Ray Data execution; Ray Data keeps statistics of every block of an "
        "execution on the driver, so this bounds the driver's memory at full scale (LibriLight: ~27 executions)",
    )
    experiment: str = Field(default="tokenize", description="MLflow experiment of the job's runs")

    def rows_per_batch(self, mean_segment_seconds: float) -> int:
        """Rows handed to one `CodecEncoder` call: about `batch_seconds` of audio."""
        if mean_segment_seconds <= 0:
            return 1
        return max(1, round(self.batch_seconds / mean_segment_seconds))

    def fit_to_cluster(self, cluster_cpus: float) -> TokenizeConfig:
        """Shrink the CPU reservations so the actor pool leaves room for at least one decoding task.

        Without this, `workers` one-CPU actors on a `workers`-CPU machine hold every CPU and the decoding tasks
        feeding them never start (Ray Data waits forever). Reservations are scheduling hints, so sharing is safe.
        """
        needed = self.workers * self.cpus_per_worker + self.decode_cpus
        if needed <= cluster_cpus:
            return self
        share = cluster_cpus / (self.workers + 1)
        return self.model_copy(update={"cpus_per_worker": share, "decode_cpus": share})
