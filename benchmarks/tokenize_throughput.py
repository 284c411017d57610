"""Tokenization throughput: the Ray Data job vs bare `Codec.encode` on the same audio, and the table size.

In one run: generate a sample corpus, shard it, register a randomly initialised codec of the chosen preset
(speed and table size do not depend on the weights; the token contract is the same: 19 tokens per frame at
2.5 frames/s), then measure
1. bare: `Codec.encode` on every segment, one thread, in this process (the ceiling for one CPU worker);
2. the job (`pipeline.tokenize.job.tokenize_shards`) with 1 and 2 CPU codec actors on a local Ray instance,
   each into a fresh output directory;
and print audio seconds per wall second, pipeline efficiency (job with N workers / (N × bare)) and Parquet bytes
per audio hour (the floor is 47.5 tokens/s × 14 bits ≈ 300 KB/h). Never asserted in tests.

    .venv/bin/python benchmarks/tokenize_throughput.py [--preset paper] [--sample-rate 16000] [--minutes 4]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import mlflow
import ray
import soundfile
import torch

from flows.shard import run_shard_corpus
from pipeline.sample_corpus import SampleCorpusConfig, generate_sample_corpus
from pipeline.sharding.config import ShardConfig
from pipeline.tokenize.config import TokenizeConfig
from pipeline.tokenize.job import tokenize_shards
from storage.fs import open_location
from storage.mlflow_io import CODEC_MODEL_NAME, ensure_experiment, log_and_register, use_tracking_uri
from storage.webdataset_io import iter_samples, list_shards
from training.codec import Codec
from training.configs import preset

FLOOR_BYTES_PER_HOUR = 47.5 * 14 / 8 * 3600  # 299 250 bytes


def bare_encode_seconds(codec: Codec, shards_root: Path) -> tuple[float, float]:
    """(audio seconds, wall seconds) of `Codec.encode` over every segment, decoding excluded."""
    location = open_location(str(shards_root))
    clips = []
    for sample in iter_samples(location, list_shards(location)):
        audio, rate = soundfile.read(io.BytesIO(sample["flac"]), dtype="float32")
        clips.append((audio, rate))
    torch.set_num_threads(1)
    codec.encode(clips[0][0][: clips[0][1]], clips[0][1])  # warm-up (kernel selection per shape)
    started = time.perf_counter()
    for audio, rate in clips:
        codec.encode(audio, rate)
    return sum(len(a) / r for a, r in clips), time.perf_counter() - started


def parquet_bytes(table_url: str) -> int:
    return sum(path.stat().st_size for path in Path(table_url).rglob("*.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--sample-rate", type=int, default=16_000)
    parser.add_argument("--minutes", type=float, default=4.0)
    args = parser.parse_args()

    from prefect.testing.utilities import prefect_test_harness

    with tempfile.TemporaryDirectory() as tmp, prefect_test_harness(server_startup_timeout=120):
        root = Path(tmp)
        corpus = root / "corpus"
        generate_sample_corpus(corpus, SampleCorpusConfig(speakers=4, minutes=args.minutes, seed=0))
        run_shard_corpus(
            str(corpus), str(root / "shards"), ShardConfig(target_shard_bytes=1_000_000), show_progress=False
        )
        use_tracking_uri(f"sqlite:///{root}/mlflow.db")
        ensure_experiment("benchmark")
        torch.manual_seed(0)
        codec = Codec.from_config(preset(args.preset, args.sample_rate)).eval()
        with mlflow.start_run():
            log_and_register(codec.save(root / "codec"), "codec", CODEC_MODEL_NAME, "production")

        audio_s, bare_s = bare_encode_seconds(codec, root / "shards")
        bare_speed = audio_s / bare_s
        print(f"{args.preset} @ {args.sample_rate} Hz, {audio_s / 60:.1f} min of segments")
        print(f"bare Codec.encode, 1 thread: {bare_speed:.2f} audio s per wall s")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        for workers in (1, 2):
            config = TokenizeConfig(workers=workers)
            summary = tokenize_shards(str(root / "shards"), str(root / f"tokens-{workers}"), config=config)
            speed = summary.audio_seconds_this_run / summary.wall_seconds
            size = parquet_bytes(summary.table_url) / (summary.audio_hours or 1)
            print(
                f"job, {workers} CPU worker(s): {speed:.2f} audio s per wall s, efficiency "
                f"{speed / (workers * bare_speed):.2f}, {summary.tokens / (summary.audio_hours * 3600):.1f} tokens/s, "
                f"Parquet {size / 1000:.0f} KB per audio hour ({size / FLOOR_BYTES_PER_HOUR:.2f}× the 14-bit floor)"
            )
        ray.shutdown()


if __name__ == "__main__":
    main()
