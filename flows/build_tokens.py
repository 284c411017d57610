"""Prefect flow `build_tokens`: the whole weekly loop on one machine, as one flow of sub-flows (issue 5).

    sample corpus → shard_corpus → train_encoder → train_codec → evaluate_and_promote → tokenize_corpus → stats

Every step is an existing flow or pipeline function; this module only wires their outputs together. Re-running
reuses what exists: the corpus is generated once, sharding and tokenization skip completed shards, training
resumes its checkpoints. A codec that fails the quality gate is not promoted and the table is built with the
current production version instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel, Field

from flows.evaluate import evaluate_and_promote
from flows.settings import Settings, load_settings
from flows.shard import ShardRunSummary, run_shard_corpus
from flows.tokenize import tokenize_corpus
from flows.train import train_codec, train_encoder
from pipeline.promote.promote import PromotionOutcome
from pipeline.query.histogram import histogram_png
from pipeline.query.stats import TableStats, token_table_stats
from pipeline.sample_corpus import SampleCorpusConfig, generate_sample_corpus
from pipeline.tokenize import TokenizeSummary
from storage.fs import open_location
from storage.mlflow_io import ui_command, use_tracking_uri
from training.launch import Scaling, TrainResult


class BuildTokensConfig(BaseModel):
    """Sizes of the end-to-end run; the defaults finish in about 10 minutes on 2 CPU cores."""

    workdir: str = Field(
        default="speechtok-data",
        description="corpus, shards, tokens, checkpoints and MLflow go here: the default storage root, so "
        "query/detokenize/stats find them without flags",
    )
    speakers: int = Field(default=4, ge=2, description="speakers in the generated corpus (one is held out)")
    minutes: float = Field(default=4.0, gt=0, description="minutes of generated audio")
    seed: int = 0
    model_preset: str = Field(default="tiny", description="model preset of both stages")
    sample_rate: int = Field(default=16_000, description="model rate; LibriLight's native 16 kHz needs no resampling")
    encoder_steps: int = Field(default=100, ge=1, description="stage-1 optimiser steps")
    codec_steps: int = Field(default=60, ge=1, description="stage-2 optimiser steps")
    codec_crop_seconds: float = Field(
        default=2.0,
        gt=0,
        description="stage-2 crop length; the HiFi-GAN generator and discriminators cost ~14 s per 15 s-crop step "
        "on 2 CPU cores, so the demo trains on short crops (as benchmarks/training_curves.py does)",
    )
    train_workers: int = Field(default=2, ge=1, description="Ray Train workers (CPU, gloo)")
    ray_address: str | None = Field(default=None, description="Ray cluster; default RAY_ADDRESS, else local Ray")
    tokenize_workers: int = Field(default=1, ge=1, description="codec actors of the tokenization job")
    target_shard_mb: float = Field(default=8.0, gt=0, description="shard size; small so that Ray has parallel work")

    @property
    def corpus(self) -> str:
        return str(Path(self.workdir) / "corpus")

    @property
    def shards(self) -> str:
        return str(Path(self.workdir) / "shards")

    @property
    def tokens(self) -> str:
        return str(Path(self.workdir) / "tokens")


@dataclass(frozen=True)
class BuildTokensResult:
    """Where everything is after a run."""

    config: BuildTokensConfig
    tracking_uri: str
    shards: ShardRunSummary
    encoder: TrainResult
    codec: TrainResult
    promotion: PromotionOutcome
    tokens: TokenizeSummary
    stats: TableStats
    histogram: str
    flow_run_id: str


def _stage_settings(
    settings: Settings, config: BuildTokensConfig, steps: int, crop_seconds: float | None = None
) -> Settings:
    """The run's settings with a stage's step count (and crop) and the demo's model rate and checkpoint cadence."""
    train = settings.train.model_copy(
        update={
            "max_steps": steps,
            "max_seconds": crop_seconds or settings.train.max_seconds,
            "sample_rate": config.sample_rate,
            "checkpoint_every": max(1, steps // 2),
            "log_every": max(1, min(settings.train.log_every, steps // 5)),
        }
    )
    return settings.model_copy(update={"train": train})


@flow(name="build_tokens")
def build_tokens(config: BuildTokensConfig | None = None, settings: Settings | None = None) -> BuildTokensResult:
    """Sample corpus → shards → stage 1 → stage 2 → evaluate → promote → tokenize → stats, on local defaults."""
    config = config or BuildTokensConfig()
    settings = settings or load_settings(overrides={"storage_root": config.workdir})
    logger = get_run_logger()
    tracking_uri = settings.tracking_uri()
    use_tracking_uri(tracking_uri)
    logger.info("MLflow UI: %s", ui_command(tracking_uri))

    if not open_location(config.corpus).exists():
        logger.info("generating %.1f minutes of speech from %d speakers", config.minutes, config.speakers)
        generate_sample_corpus(
            Path(config.corpus),
            SampleCorpusConfig(speakers=config.speakers, minutes=config.minutes, seed=config.seed),
            progress=True,
        )
    shard_config = settings.shard.model_copy(update={"target_shard_bytes": int(config.target_shard_mb * 1024**2)})
    shards = run_shard_corpus(config.corpus, config.shards, shard_config, settings.s3)

    scaling = Scaling(workers=config.train_workers, ray_address=config.ray_address)
    encoder = train_encoder(
        config.shards, config.model_preset, _stage_settings(settings, config, config.encoder_steps), scaling
    )
    codec = train_codec(
        config.shards,
        encoder.registered.model_uri,
        config.model_preset,
        _stage_settings(settings, config, config.codec_steps, config.codec_crop_seconds),
        scaling,
    )
    promotion = evaluate_and_promote(config.shards, candidate=codec.registered.model_uri, settings=settings)
    if not promotion.promoted:
        logger.warning("candidate %s (%s): tokenizing with the current production", promotion.label, promotion.reason)
    tokenize = settings.tokenize.model_copy(
        update={"workers": config.tokenize_workers, "ray_address": config.ray_address or settings.tokenize.ray_address}
    )
    tokens = tokenize_corpus(config.shards, config.tokens, config=tokenize, settings=settings)
    stats = token_table_stats(config.tokens, settings.s3, model_version=int(tokens.model.version))
    histogram = Path(config.workdir) / "token_histogram.png"
    histogram.write_bytes(histogram_png(stats.histogram, title=f"{tokens.table_url}"))
    return BuildTokensResult(
        config=config,
        tracking_uri=tracking_uri,
        shards=shards,
        encoder=encoder,
        codec=codec,
        promotion=promotion,
        tokens=tokens,
        stats=stats,
        histogram=str(histogram),
        flow_run_id=str(flow_run.get_id()),
    )
