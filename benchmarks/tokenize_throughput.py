"""Tokenization throughput: the Ray Data job vs bare `Codec.encode` on the same audio, and the table size.

In one run: generate a sample corpus, shard it, register a randomly initialised codec of the chosen preset
(speed and table size do not depend on the weights; the token contract is the same: 19 tokens per frame at
2.5 frames/s), then measure
1. bare: `Codec.encode` on every segment, one thread, in this process (the ceiling for one CPU worker);
2. the job (`pipeline.tokenize.job.tokenize_shards`) with 1 and 2 CPU codec actors on a local Ray instance,
   each into a fresh output directory;
and print audio seconds per wall second, pipeline efficiency (job with N workers / (N × bare)) and Parquet bytes
per audio hour (the floor is 47.5 tokens/s × 14 bits ≈ 300 KB/h): as written, as column data (what grows with
audio) and projected to production-size shards, where the fixed per-file footer is spread over hours of audio.
Never asserted in tests.

    .venv/bin/python benchmarks/tokenize_throughput.py [--preset paper] [--sample-rate 16000] [--minutes 4]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import mlflow
import pyarrow as pa
import pyarrow.parquet as pq
import ray
import soundfile
import torch

from flows.shard import run_shard_corpus
from pipeline.sample_corpus import SampleCorpusConfig, generate_sample_corpus
from pipeline.sharding.config import ShardConfig
from pipeline.tokenize.config import TokenizeConfig
from pipeline.tokenize.job import tokenize_shards
from pipeline.tokenize.table import TOKENS_ENCODING
from storage.fs import open_location
from storage.mlflow_io import CODEC_MODEL_NAME, ensure_experiment, log_and_register, use_tracking_uri
from storage.parquet_io import write_table
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


@dataclass(frozen=True)
class TableSize:
    """Parquet bytes per audio hour split into what grows with audio and what each file costs regardless.

    Measured, not assumed: the job's files (N per-shard files) and the same rows re-written as one file with the
    same writer give two sizes; size = per_hour * hours + per_file * files solves for both.
    """

    files: int
    hours: float
    written_bytes: int
    single_file_bytes: int

    @property
    def per_file(self) -> float:
        return (self.written_bytes - self.single_file_bytes) / max(1, self.files - 1)

    @property
    def per_hour(self) -> float:
        return (self.single_file_bytes - self.per_file) / self.hours

    def projected(self, hours_per_file: float) -> float:
        return self.per_hour + self.per_file / hours_per_file


def table_size(table_url: str, hours: float) -> TableSize:
    paths = sorted(Path(table_url).rglob("*.parquet"))
    rows = pa.concat_tables([pq.read_table(path) for path in paths])
    with tempfile.TemporaryDirectory() as scratch:
        write_table(rows, open_location(scratch), "all.parquet", row_group_size=4096, column_encoding=TOKENS_ENCODING)
        single = (Path(scratch) / "all.parquet").stat().st_size
    return TableSize(len(paths), hours, sum(p.stat().st_size for p in paths), single)


def corpus_flac_bytes(shards_root: Path) -> int:
    """Bytes of the WebDataset shards: how much audio one shard of a given size holds."""
    return sum(path.stat().st_size for path in (shards_root / "shards").glob("*.tar"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--sample-rate", type=int, default=16_000)
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--production-shard-bytes", type=int, default=2**30, help="shard size to project to")
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
            print(
                f"job, {workers} CPU worker(s): {speed:.2f} audio s per wall s in {summary.wall_seconds:.0f} s, "
                f"efficiency {speed / (workers * bare_speed):.2f} (vs {workers} x bare), "
                f"{summary.tokens / (summary.audio_hours * 3600):.1f} tokens/s"
            )
        ray.shutdown()
        size = table_size(summary.table_url, summary.audio_hours)
        print(
            f"Parquet as written: {size.files} files of {size.hours * 3600 / size.files:.0f} audio s each, "
            f"{size.written_bytes / size.hours / 1000:.0f} KB per audio hour"
        )
        print(
            f"fitted: {size.per_hour / 1000:.0f} KB per audio hour ({size.per_hour / FLOOR_BYTES_PER_HOUR:.2f}x the "
            f"14-bit floor) + {size.per_file / 1000:.1f} KB per file"
        )
        shard_hours = args.production_shard_bytes / (corpus_flac_bytes(root / "shards") / size.hours)
        print(
            f"projected for {args.production_shard_bytes / 2**30:.0f} GiB shards ({shard_hours:.1f} audio h each): "
            f"{size.projected(shard_hours) / 1000:.0f} KB per audio hour (target <= 340)"
        )


if __name__ == "__main__":
    main()
