"""The shape every training loop shares: setup → step … → checkpoint → cleanup (STYLE rule 7).

A subclass builds its models and says how one batch trains them; this class owns the data stream, the
step counter, resuming from Ray's latest checkpoint (model, optimiser, scheduler, step, every worker's data
position and RNG states, saved whole), metric logging and periodic checkpoints.

Seeds: every worker seeds torch identically before `build` (identical initial weights), then with a per-rank
seed (dropout and other draws differ between workers). A resume on the same number of workers restores each
worker's RNG states; on a different number, the data positions are re-partitioned (`repartition`) and the RNGs
re-seeded per rank.
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
from training.data import AudioBatch, ShardAudioStream
from training.data_position import DataPosition, repartition
from training.job import TrainJob
from training.loops.runtime import (
    MetricsLogger,
    checkpoint_directory,
    gather_from_workers,
    gather_positions,
    load_checkpoint,
    maybe_inject_failure,
    metrics_to_floats,
    restore_rng_state,
    rng_state,
    worker_context,
    worker_seed,
)

StepMetrics = dict[str, torch.Tensor | float]

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

    # Metrics averaged over workers when logged; the others are rank 0's own.
    mean_metrics: frozenset[str] = frozenset({"loss"})

    @abstractmethod
    def train_step(self, batch: AudioBatch) -> StepMetrics:
        """One optimiser step on `batch`; returns this worker's metrics as detached 0-dim tensors or floats.

        Tensors stay on the device: they are only copied to the host on logging steps.
        """

    def log_extras(self) -> dict[str, float]:
        """Extra metrics read only on logging steps (e.g. DAAM gate statistics of the last forward)."""
        return {}

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
        torch.manual_seed(self.job.seed)  # identical initial weights on every worker
        self.build()
        torch.manual_seed(worker_seed(self.job.seed, self.context.rank))
        location = open_location(self.job.shards, self.job.s3)
        shards = list_shards(location, holdout=False)
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is not None:
            state, meta = load_checkpoint(checkpoint)
            self.restore(state)
            self.step = int(meta["step"])
            self.position = self._resumed_position(meta, state.get("rng", []), shards)
        self.stream = ShardAudioStream(
            location,
            shards,
            rank=self.context.rank,
            world_size=self.context.world_size,
            sample_rate=self.job.model.encoder.sample_rate,
            hop=self.job.model.encoder.hop,
            config=self.job.data,
        )
        self.logger = MetricsLogger(
            self.context, self.job.mlflow_tracking_uri, self.job.mlflow_run_id, self.job.max_steps
        )

    def _resumed_position(self, meta: dict[str, Any], rng_states: list[Any], shards: list[str]) -> DataPosition:
        """This worker's data position after a resume, re-partitioned when the number of workers changed."""
        positions = [DataPosition.from_json(p) for p in meta["positions"]]
        rank, world = self.context.rank, self.context.world_size
        same_world = len(positions) == world
        if same_world and len(rng_states) == world:
            restore_rng_state(rng_states[rank])
        if self.context.is_chief:
            change = "" if same_world else f"; data positions re-partitioned from {len(positions)} to {world} workers"
            print(f"resuming from the checkpoint at step {self.step}{change}", flush=True)
        if same_world:
            return positions[rank]
        return repartition(positions, shards, self.job.data.seed, world)[rank]

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
            data_wait = time.perf_counter() - started
            step_metrics = self.train_step(batch)
            self.step += 1
            self.position = batch.position
            last = self.step == self.job.max_steps
            logging_step = self.step % self.job.log_every == 0 or last
            checkpoint_step = self.step % self.job.checkpoint_every == 0 or last
            if not (logging_step or checkpoint_step):
                continue
            metrics = metrics_to_floats(step_metrics, self.mean_metrics, self.device)
            elapsed = time.perf_counter() - started  # includes the wait for the device's queued work
            metrics.update(self.log_extras())
            metrics["step_time_s"] = elapsed
            metrics["data_wait_fraction"] = data_wait / elapsed
            metrics["samples_per_s"] = batch.audio.shape[0] * self.context.world_size / elapsed
            metrics["audio_seconds_per_s"] = (
                batch.num_samples * self.context.world_size / elapsed / (self.job.model.encoder.sample_rate)
            )
            if logging_step:
                self.logger.log(self.step, metrics)
            if checkpoint_step:
                self.checkpoint(metrics, export=last)

    def checkpoint(self, metrics: dict[str, float], export: bool) -> None:
        """Report a checkpoint (rank 0 writes it; every rank reports) with all workers' positions and RNGs."""
        positions = gather_positions(self.position, self.context.world_size)
        rng_states = gather_from_workers(rng_state(), self.context.world_size)
        report = {"step": self.step, **metrics}
        if not self.context.is_chief:
            ray.train.report(report, checkpoint=None)
            return
        meta = {"step": self.step, "positions": positions, "stage": self.job.stage, "run_name": self.job.run_name}
        with checkpoint_directory({**self.state(), "rng": rng_states}, meta) as (directory, checkpoint):
            if export:
                self.export(directory / EXPORT_DIR)
            ray.train.report(report, checkpoint=checkpoint)

    def cleanup(self) -> None:
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
