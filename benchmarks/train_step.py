"""Training step time and the fraction of it spent waiting for data, with decoding on the training thread
(before, `decode_workers=0`) and in background threads (after, issue 12), for the `tiny` and `paper` configs.

Usage: `python benchmarks/train_step.py [--configs tiny,paper] [--steps 12] [--decode-workers 2]`

The data are real WebDataset shards of 15 s FLAC clips at 16 kHz written into a temporary folder (speech-like
harmonics, so FLAC compresses like speech), read through `training.data.ShardAudioStream` exactly as a Ray Train
worker reads them: decode, resample to the model rate (24 kHz), random crop, augment, collate. The step is a
stage-1 JEPA step (forward, masked loss, backward, AdamW, EMA update) on CPU, as in `training.loops.stage1`,
without Ray so the figures show the loop alone. Never asserted in CI (STYLE rule 15).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile
import torch
import webdataset as wds

from storage.fs import open_location
from storage.webdataset_io import list_shards
from training.configs import CodecConfig, paper, tiny
from training.data import DataConfig, ShardAudioStream
from training.models.jepa import JEPA
from training.optim import OptimConfig, adamw

CLIP_SECONDS = 15.0
SOURCE_RATE = 16_000  # LibriLight's rate; the model runs at 24 kHz, so every clip is resampled
PRESETS = {
    # name: (config, batch size, crop seconds); paper on CPU uses short crops to keep a step to seconds
    "tiny": (tiny(24_000), 8, 15.0),
    "paper": (paper(24_000), 2, 2.0),
}


def write_shards(root: Path, clips: int, per_shard: int) -> None:
    """`clips` 15 s FLAC clips in tar shards plus the `manifest/shards.parquet` the stream lists them from."""
    rng = np.random.default_rng(0)
    (root / "shards").mkdir(parents=True)
    t = np.arange(int(CLIP_SECONDS * SOURCE_RATE)) / SOURCE_RATE
    with wds.ShardWriter(str(root / "shards" / "train-%06d.tar"), maxcount=per_shard, verbose=0) as sink:
        for index in range(clips):
            pitch = rng.uniform(90, 220)
            wav = sum(np.sin(2 * np.pi * k * pitch * t) / k for k in range(1, 8)) * 0.2
            wav = (wav * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.005 * rng.standard_normal(t.shape)).astype(
                np.float32
            )
            buffer = io.BytesIO()
            soundfile.write(buffer, wav, SOURCE_RATE, format="FLAC", subtype="PCM_16")
            sink.write({"__key__": f"clip{index:05d}", "flac": buffer.getvalue(), "json": b"{}"})
    paths = sorted(f"shards/{p.name}" for p in (root / "shards").glob("*.tar"))
    (root / "manifest").mkdir()
    pq.write_table(pa.table({"path": paths, "holdout": [False] * len(paths)}), root / "manifest" / "shards.parquet")


@dataclass
class Timing:
    step_s: float
    wait_s: float

    @property
    def wait_fraction(self) -> float:
        return self.wait_s / self.step_s


def run(config: CodecConfig, root: Path, batch: int, crop: float, steps: int, decode_workers: int) -> Timing:
    """Mean step time and data wait over `steps` steps after one warm-up step."""
    torch.manual_seed(0)
    model = JEPA(config)
    optimizer = adamw(model.parameters(), OptimConfig())
    location = open_location(str(root))
    stream = ShardAudioStream(
        location,
        list_shards(location, holdout=False),
        rank=0,
        world_size=1,
        sample_rate=config.encoder.sample_rate,
        hop=config.encoder.hop,
        config=DataConfig(batch_size=batch, max_seconds=crop, decode_workers=decode_workers),
    )
    batches = stream.batches()
    total = wait = 0.0
    for step in range(steps + 1):
        started = time.perf_counter()
        audio = next(batches).audio
        waited = time.perf_counter() - started
        output = model(audio, torch.Generator().manual_seed(step))
        optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        optimizer.step()
        model.update_target(step)
        if step > 0:  # the first step pays for kernel set-up and the pool's first fill
            total += time.perf_counter() - started
            wait += waited
    return Timing(total / steps, wait / steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="tiny,paper", help="comma-separated presets: tiny, paper")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per run (paper: a quarter of it)")
    parser.add_argument("--decode-workers", type=int, default=2, help="background decoding threads (after)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, CPU")
    rows = []
    with tempfile.TemporaryDirectory(prefix="speechtok-bench-") as directory:
        root = Path(directory)
        write_shards(root, clips=48, per_shard=12)
        for name in args.configs.split(","):
            config, batch, crop = PRESETS[name]
            steps = args.steps if name == "tiny" else max(2, args.steps // 4)
            before = run(config, root, batch, crop, steps, decode_workers=0)
            after = run(config, root, batch, crop, steps, decode_workers=args.decode_workers)
            rows.append((name, batch, crop, before, after))
    print(
        f"{'config':>6} {'batch':>5} {'crop s':>6} | {'step s':>7} {'wait':>6} (decode on the loop) | "
        f"{'step s':>7} {'wait':>6} ({args.decode_workers} decode threads) | {'speed-up':>8}"
    )
    for name, batch, crop, before, after in rows:
        print(
            f"{name:>6} {batch:>5} {crop:>6.1f} | {before.step_s:>7.3f} {before.wait_fraction:>6.1%}"
            f"{'':>21} | {after.step_s:>7.3f} {after.wait_fraction:>6.1%}{'':>18} | "
            f"{before.step_s / after.step_s:>7.2f}×"
        )
    print("wait = share of the step spent in next(batches); speed-up = step time before / after.")


if __name__ == "__main__":
    main()
