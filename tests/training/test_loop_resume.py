"""What a training loop restores from a checkpoint: per-worker RNG states, or re-partitioned data positions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from training.data import AudioBatch
from training.data_position import DataPosition, repartition
from training.job import TrainJob
from training.loops import base
from training.loops.runtime import WorkerContext, rng_state, worker_seed

SHARDS = [f"shards/train-{i:06d}.tar" for i in range(7)]


class NoModelLoop(base.TrainingLoop):
    """The loop's own logic with nothing to train."""

    def build(self) -> None: ...

    def train_step(self, batch: AudioBatch) -> base.StepMetrics:
        return {}

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None: ...

    def export(self, directory: Path) -> None: ...


def loop(monkeypatch: pytest.MonkeyPatch, rank: int, world: int) -> NoModelLoop:
    monkeypatch.setattr(base, "worker_context", lambda: WorkerContext(rank, world, torch.device("cpu")))
    job = TrainJob(stage="encoder", shards="unused", model=None, run_name="r", checkpoint_root="c", max_steps=1)  # type: ignore[arg-type]
    return NoModelLoop(job)


def test_same_world_size_restores_each_workers_position_and_rng(monkeypatch: pytest.MonkeyPatch) -> None:
    positions = [DataPosition(0, 1, 3), DataPosition(0, 2, 0)]
    states = []
    for rank in range(2):
        torch.manual_seed(worker_seed(0, rank))
        torch.rand(5)  # the worker's RNG has moved on since seeding
        states.append(rng_state())
    expected = torch.rand(3)  # what rank 1 draws next
    meta = {"positions": [p.to_json() for p in positions]}
    torch.manual_seed(123)
    position = loop(monkeypatch, 1, 2)._resumed_position(meta, states, SHARDS)
    assert position == positions[1]
    assert torch.equal(torch.rand(3), expected)


def test_another_world_size_repartitions_the_positions(monkeypatch: pytest.MonkeyPatch) -> None:
    positions = [DataPosition(0, 1, 3), DataPosition(0, 0, 2)]
    meta = {"positions": [p.to_json() for p in positions]}
    expected = repartition(positions, SHARDS, seed=0, new_world_size=3)
    for rank in range(3):
        assert loop(monkeypatch, rank, 3)._resumed_position(meta, [], SHARDS) == expected[rank]
    assert {c.shard for p in expected for c in p.share.cursors if p.share}  # the epoch's rest is handed out


def test_worker_seeds_differ_per_rank() -> None:
    assert len({worker_seed(0, rank) for rank in range(64)}) == 64
    assert worker_seed(1, 0) != worker_seed(0, 0)
