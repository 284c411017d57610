"""The shape every training loop shares: setup → step … → checkpoint → cleanup (STYLE rule 7).

A subclass builds its models and says how one batch trains them; this class owns the data stream, the
step counter, resuming from Ray's latest checkpoint (model, optimiser, scheduler, step and every worker's
data position, saved whole), metric logging and periodic checkpoints.
"""

from __future__ import annotations

import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import ray.train
import torch

from storage.fs import open_location
from storage.webdataset_io import list_shards
from training.data import AudioBatch, DataPosition, ShardAudioStream
from training.job import TrainJob
from training.loops.runtime import (
    MetricsLogger,
    checkpoint_directory,
    gather_positions,
    load_checkpoint,
    maybe_inject_failure,
    worker_context,
)

EXPORT_DIR = "export"  # inside the final checkpoint: the model the driver logs to MLflow


class TrainingLoop(ABC):
    def __init__(self, job: TrainJob) -> None:
        self.job = job
        self.context = worker_context()
        self.device = self.context.device
        self.step = 0
        self.position = DataPosition()

    # --- what a stage defines ------------------------------------------------------------------------
    @abstractmethod
    def build(self) -> None:
        """Create models, optimisers and schedulers on `self.device` (identical init on every worker)."""

    @abstractmethod
    def train_step(self, batch: AudioBatch) -> dict[str, float]:
        """One optimiser step on `batch`; returns this worker's metrics (losses, grad norm, lr, ...)."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """Everything needed to resume, as tensors/plain data."""

    @abstractmethod
    def restore(self, state: dict[str, Any]) -> None: ...

    @abstractmethod
    def export(self, directory: Path) -> None:
        """Write the trained model (weights + config) for MLflow into `directory` (rank 0 only)."""

    # --- the loop ------------------------------------------------------------------------------------
    def setup(self) -> None:
        torch.manual_seed(self.job.seed)
        self.build()
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is not None:
            state, meta = load_checkpoint(checkpoint)
            self.restore(state)
            self.step = int(meta["step"])
            positions = meta["positions"]
            if len(positions) == self.context.world_size:
                self.position = DataPosition(**positions[self.context.rank])
            if self.context.is_chief:
                print(f"resuming from the checkpoint at step {self.step}", flush=True)
        location = open_location(self.job.shards, self.job.s3)
        self.stream = ShardAudioStream(
            location,
            list_shards(location, holdout=False),
            rank=self.context.rank,
            world_size=self.context.world_size,
            sample_rate=self.job.model.encoder.sample_rate,
            hop=self.job.model.encoder.hop,
            config=self.job.data,
        )
        self.logger = MetricsLogger(
            self.context, self.job.mlflow_tracking_uri, self.job.mlflow_run_id, self.job.max_steps
        )

    def run(self) -> None:
        batches = self.stream.batches(self.position)
        # The failure-injection marker lives with the run's checkpoints, so separate runs never share it.
        root = self.job.checkpoint_root
        failure_markers = (
            Path(tempfile.gettempdir()) / f"speechtok-{self.job.run_name}"
            if root.startswith("s3://")
            else Path(root) / self.job.run_name
        )
        while self.step < self.job.max_steps:
            maybe_inject_failure(self.step, self.job.fail_at_step, self.context, failure_markers)
            started = time.perf_counter()
            batch = next(batches)
            metrics = self.train_step(batch)
            self.step += 1
            self.position = batch.position
            elapsed = time.perf_counter() - started
            metrics["step_time_s"] = elapsed
            metrics["samples_per_s"] = batch.audio.shape[0] * self.context.world_size / elapsed
            metrics["audio_seconds_per_s"] = (
                batch.num_samples * self.context.world_size / elapsed / (self.job.model.encoder.sample_rate)
            )
            if self.step % self.job.log_every == 0 or self.step == self.job.max_steps:
                self.logger.log(self.step, metrics)
            last = self.step == self.job.max_steps
            if self.step % self.job.checkpoint_every == 0 or last:
                self.checkpoint(metrics, export=last)

    def checkpoint(self, metrics: dict[str, float], export: bool) -> None:
        """Report a checkpoint (rank 0 writes it; every rank reports) with all workers' data positions."""
        positions = gather_positions(self.position, self.context.world_size)
        report = {"step": self.step, **metrics}
        if not self.context.is_chief:
            ray.train.report(report, checkpoint=None)
            return
        meta = {"step": self.step, "positions": positions, "stage": self.job.stage, "run_name": self.job.run_name}
        with checkpoint_directory(self.state(), meta) as (directory, checkpoint):
            if export:
                self.export(directory / EXPORT_DIR)
            ray.train.report(report, checkpoint=checkpoint)

    def cleanup(self) -> None:
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
