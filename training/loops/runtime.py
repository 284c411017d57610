"""What a Ray Train worker needs around the model code: its place in the group, precision, metric logging
and checkpoint files. Only the training loops import Ray; models never do (STYLE)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist

from storage.mlflow_io import RunMetrics
from training.data import DataPosition

CHECKPOINT_STATE = "state.pt"
CHECKPOINT_META = "state.json"
CHECKPOINT_FORMAT = 1
_REGISTRATION_GRACE_S = 5.0
_RANK_SEED_STRIDE = 1_000_003  # any prime larger than a plausible world size


@dataclass(frozen=True)
class WorkerContext:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_chief(self) -> bool:
        return self.rank == 0


def worker_context() -> WorkerContext:
    context = ray.train.get_context()
    return WorkerContext(context.get_world_rank(), context.get_world_size(), ray.train.torch.get_device())


def autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on GPU; fp32 on CPU (DAAM, FSQ and STFT force fp32 inside themselves)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def gather_from_workers(value: Any, world_size: int) -> list[Any]:
    """Every worker's `value` (picklable), in rank order; the chief writes them into the checkpoint."""
    if world_size == 1 or not dist.is_initialized():
        return [value]
    gathered: list[Any] = [None] * world_size
    dist.all_gather_object(gathered, value)
    return gathered


def gather_positions(position: DataPosition, world_size: int) -> list[dict[str, Any]]:
    """Every worker's data position (each streams its own shards), so all of them resume exactly."""
    return gather_from_workers(position.to_json(), world_size)


def worker_seed(seed: int, rank: int) -> int:
    """The torch seed of one worker after model init: dropout differs per rank, reproducibly (issue 12)."""
    return (seed * _RANK_SEED_STRIDE + rank) & 0x7FFF_FFFF_FFFF_FFFF


def rng_state() -> dict[str, Any]:
    """This process's RNG states (torch CPU and CUDA, NumPy, Python), for the checkpoint."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def metrics_to_floats(
    metrics: Mapping[str, torch.Tensor | float], mean_keys: Collection[str], device: torch.device
) -> dict[str, float]:
    """A logging step's metrics as floats: one all-reduce (mean over workers) for `mean_keys`, one host copy.

    Steps that do not log never call this, so they never wait for the device (issue 12: no per-step syncs).
    """
    names = list(metrics)
    values = torch.stack([torch.as_tensor(metrics[k], dtype=torch.float64).to(device) for k in names])
    averaged = [k in mean_keys for k in names]
    if any(averaged) and dist.is_initialized():
        selected = torch.tensor(averaged, device=device)
        summed = values.clone()
        dist.all_reduce(summed)
        values = torch.where(selected, summed / dist.get_world_size(), values)
    return dict(zip(names, values.cpu().tolist(), strict=True))


class MetricsLogger:
    """Rank 0 logs metrics to the job's MLflow run and prints a progress line; other ranks do nothing."""

    def __init__(self, context: WorkerContext, tracking_uri: str, run_id: str, total_steps: int) -> None:
        self.active = context.is_chief and bool(run_id)
        self.print_progress = context.is_chief
        self.total_steps = total_steps
        self.run_id = run_id
        # The driver owns the run; the chief only streams metrics into it (storage.mlflow_io: one door to MLflow).
        self.run = RunMetrics(tracking_uri, run_id) if self.active else None
        self.first: tuple[int, float] | None = None  # (step, monotonic time) of the first line, for the ETA

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if self.run is not None:
            self.run.log(step, metrics)
        if self.print_progress:
            main = {k: v for k, v in metrics.items() if k in ("loss", "stft", "lr", "samples_per_s")}
            shown = " ".join(f"{k}={v:.4g}" for k, v in main.items())
            print(f"[step {step}/{self.total_steps}] {shown}{self._eta(step)}", flush=True)

    def _eta(self, step: int) -> str:
        """` eta 1h02m` from the pace since the first line (blank on the first line)."""
        now = time.monotonic()
        if self.first is None or step <= self.first[0]:
            self.first = self.first or (step, now)
            return ""
        seconds = (now - self.first[1]) / (step - self.first[0]) * max(0, self.total_steps - step)
        hours, rest = divmod(int(seconds), 3600)
        return f" eta {hours}h{rest // 60:02d}m" if hours else f" eta {rest // 60}m{rest % 60:02d}s"


@contextlib.contextmanager
def checkpoint_directory(state: dict[str, Any], meta: dict[str, Any]) -> Iterator[tuple[Path, ray.train.Checkpoint]]:
    """Write `state.pt` + `state.json` to a temp dir; yield (dir, Ray checkpoint) to add files and report."""
    with tempfile.TemporaryDirectory(prefix="speechtok-ckpt-") as directory:
        torch.save(state, Path(directory) / CHECKPOINT_STATE)
        payload = {"format": CHECKPOINT_FORMAT, **meta}
        (Path(directory) / CHECKPOINT_META).write_text(json.dumps(payload, indent=2, sort_keys=True))
        yield Path(directory), ray.train.Checkpoint.from_directory(directory)


def load_checkpoint(checkpoint: ray.train.Checkpoint) -> tuple[dict[str, Any], dict[str, Any]]:
    """(state, meta) of a checkpoint written by `save_checkpoint`; refuses other formats by name."""
    with checkpoint.as_directory() as directory:
        meta_path = Path(directory) / CHECKPOINT_META
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{meta_path}: checkpoint format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT}")
        state = torch.load(Path(directory) / CHECKPOINT_STATE, map_location="cpu", weights_only=False)
    return state, meta


def maybe_inject_failure(step: int, fail_at_step: int | None, context: WorkerContext, marker_dir: Path) -> None:
    """Test hook (TrainJob.fail_at_step): the last worker dies once at that step, as a crashed node would."""
    if fail_at_step is None or step != fail_at_step or context.rank != context.world_size - 1:
        return
    marker = marker_dir / f".injected-failure-{fail_at_step}"
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("fired\n")
    print(f"[worker {context.rank}] injected failure at step {step}", flush=True)
    # Ray's controller registers reported checkpoints asynchronously; give it the moment it would have had
    # in a real run, where crashes rarely land within a second of a checkpoint.
    time.sleep(_REGISTRATION_GRACE_S)
    os._exit(1)
