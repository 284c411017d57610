"""Sharding throughput: audio hours sharded per minute per worker, against the FLAC codec ceiling.

What it does, all in one run on one synthetic corpus (so every figure is comparable):

1. Builds a deterministic LibriLight-shaped corpus in a temp dir: 16 kHz mono 16-bit FLAC files of 1-5 min,
   each with a JSON sidecar holding `voice_activity`. The audio is speech-like (voiced syllables made of
   harmonics under moving formants, unvoiced noise bursts, pauses over a low noise floor), so it compresses
   roughly like real speech rather than like white noise.
2. Ceiling: one thread reads each file, decodes it with soundfile and re-encodes every segment the pipeline
   will keep (voice activity merged to <= `max_seconds`) as FLAC. Nothing else; that is the codec-bound
   limit. The same is repeated with two threads to show how far the codec itself scales on this machine.
3. Prefect: `flows.shard.run_shard_corpus` with `concurrency` 1 and 2. One Prefect test server is started
   once and a tiny warm-up flow runs first, so the timed runs exclude server start-up and first-run imports.
   The timing covers everything else the CLI does: flow-run bookkeeping on the API, discovery, inspection
   tasks, planning, shard-writing tasks (decode, cut, encode, tar, SHA-256, atomic publish, marker) and the
   Parquet manifest.
4. Bare: the same pipeline functions (discover → inspect_file → plan_shards → write_shard + write_marker →
   write_manifest) called directly in a ThreadPoolExecutor, so the Prefect overhead is visible.

"Audio hours" everywhere is the voiced audio that ends up in shards (the manifest's `audio_hours`), not the
source duration. The ratio to ceiling is the per-worker rate divided by the one-thread ceiling rate. Every
run's shards are checked to be byte-identical (same SHA-256 per shard). Figures are never asserted in tests.

    .venv/bin/python benchmarks/shard_throughput.py [--hours 1.0] [--speakers 8] [--seed 0] [--keep]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Before Prefect is imported: no telemetry from the test server, and no per-task INFO lines on the console.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import soundfile  # noqa: E402

from pipeline.sharding.config import ShardConfig  # noqa: E402
from pipeline.sharding.discover import discover  # noqa: E402
from pipeline.sharding.inspect import inspect_file  # noqa: E402
from pipeline.sharding.manifest import write_manifest, write_marker  # noqa: E402
from pipeline.sharding.plan import assign_holdout, plan_shards, shard_digest  # noqa: E402
from pipeline.sharding.records import FilePlan, Rejection, ShardPlan, TimeSpan  # noqa: E402
from pipeline.sharding.segments import merge_regions  # noqa: E402
from pipeline.sharding.writer import ShardResult, write_shard  # noqa: E402
from storage.fs import Location, open_location  # noqa: E402

SAMPLE_RATE = 16_000
_WAVETABLE = 512  # samples in one period of a voiced syllable's waveform
_NOISE_FLOOR = 0.0005  # ~ -66 dBFS room noise under everything
_PEAK = 32767


# ---------------------------------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class CorpusStats:
    """What was generated: file count, durations and the FLAC size against raw 16-bit PCM."""

    files: int
    source_hours: float
    voiced_hours: float
    flac_bytes: int

    @property
    def compression(self) -> float:
        return self.flac_bytes / (self.source_hours * 3600 * SAMPLE_RATE * 2)


def _voiced_syllable(rng: np.random.Generator, n: int, f0: float) -> np.ndarray:
    """A vowel-like syllable: harmonics of a gliding f0 shaped by two formants, via one wavetable."""
    glide = 1.0 + rng.uniform(-0.15, 0.15) * np.linspace(0.0, 1.0, n)
    pitch = f0 * rng.uniform(0.85, 1.2) * glide  # [n] Hz
    phase = np.cumsum(pitch) / SAMPLE_RATE  # [n] periods
    harmonics = np.arange(1, int(3800 / pitch.max()) + 1)  # [k]
    freqs = harmonics * pitch.mean()
    f1, f2 = rng.uniform(300, 900), rng.uniform(900, 2500)
    gains = np.exp(-(((freqs - f1) / 150) ** 2)) + 0.5 * np.exp(-(((freqs - f2) / 250) ** 2)) + 0.02  # [k]
    grid = np.arange(_WAVETABLE) * (2 * np.pi / _WAVETABLE)
    table = (gains[:, None] * np.sin(harmonics[:, None] * grid[None, :])).sum(axis=0) / gains.sum()
    return table[(phase * _WAVETABLE).astype(np.int64) % _WAVETABLE]


def _speech(rng: np.random.Generator, n: int, f0: float) -> np.ndarray:
    """`n` samples of syllables (75% voiced, 25% unvoiced high-passed noise), each under its own envelope."""
    out = np.empty(n)
    position = 0
    while position < n:
        length = min(int(rng.uniform(0.08, 0.3) * SAMPLE_RATE), n - position)
        if rng.random() < 0.75:
            syllable = _voiced_syllable(rng, length, f0)
        else:
            syllable = np.diff(rng.normal(0.0, 1.0, length), prepend=0.0) * 0.3
        out[position : position + length] = syllable * np.hanning(length) ** 0.5 * rng.uniform(0.05, 0.35)
        position += length
    return out


def speech_like_file(rng: np.random.Generator, seconds: float, f0: float) -> tuple[np.ndarray, list[list[float]]]:
    """int16 samples of alternating pauses and speech regions, and the regions as LibriLight `voice_activity`.

    Regions last 0.5-8 s (a few up to 25 s, which the pipeline must split); pauses 0.2-1.5 s (some 3 s).
    """
    total = int(seconds * SAMPLE_RATE)
    audio = rng.normal(0.0, _NOISE_FLOOR, total)
    regions: list[list[float]] = []
    cursor = int(rng.uniform(0.2, 1.0) * SAMPLE_RATE)
    while cursor < total - SAMPLE_RATE:
        region_s = rng.uniform(15.0, 25.0) if rng.random() < 0.03 else rng.uniform(0.5, 8.0)
        length = min(int(region_s * SAMPLE_RATE), total - cursor)
        audio[cursor : cursor + length] += _speech(rng, length, f0)
        regions.append([round(cursor / SAMPLE_RATE, 3), round((cursor + length) / SAMPLE_RATE, 3)])
        pause_s = rng.uniform(2.0, 3.0) if rng.random() < 0.1 else rng.uniform(0.2, 1.5)
        cursor += length + int(pause_s * SAMPLE_RATE)
    return np.clip(np.round(audio * _PEAK), -_PEAK - 1, _PEAK).astype(np.int16), regions


def _sidecar(speaker: str, book: str, regions: list[list[float]], snr: float) -> str:
    meta = {"id": book, "title": f"Book {book}", "authors": [{"first_name": "A", "last_name": "B"}]}
    return json.dumps({"speaker": speaker, "book_meta": meta, "snr": snr, "voice_activity": regions})


def build_corpus(root: Path, hours: float, speakers: int, seed: int) -> CorpusStats:
    """Write `small/{speaker}/{book}/{chapter}.flac` + `.json` until `hours` of audio exist (deterministic)."""
    rng = np.random.default_rng(seed)
    target_s, total_s, voiced_s, flac_bytes, index = hours * 3600, 0.0, 0.0, 0, 0
    pitches = rng.uniform(90, 230, speakers)
    while total_s < target_s:
        speaker = index % speakers
        seconds = min(rng.uniform(60, 300), max(60.0, target_s - total_s))
        samples, regions = speech_like_file(np.random.default_rng([seed, index]), seconds, pitches[speaker])
        directory = root / "small" / f"{1000 + speaker}" / f"book_{index % 3}_librivox_64kb_mp3"
        directory.mkdir(parents=True, exist_ok=True)
        name = f"chapter_{index:03d}_64kb"
        soundfile.write(directory / f"{name}.flac", samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        (directory / f"{name}.json").write_text(_sidecar(str(1000 + speaker), str(index % 3), regions, 20.0))
        flac_bytes += (directory / f"{name}.flac").stat().st_size
        total_s += len(samples) / SAMPLE_RATE
        voiced_s += sum(end - start for start, end in regions)
        index += 1
    return CorpusStats(files=index, source_hours=total_s / 3600, voiced_hours=voiced_s / 3600, flac_bytes=flac_bytes)


# ---------------------------------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Measurement:
    """One timed run: `audio_hours` of voiced audio processed by `workers` threads in `seconds`."""

    label: str
    workers: int
    audio_hours: float
    seconds: float

    @property
    def hours_per_minute(self) -> float:
        return self.audio_hours / (self.seconds / 60)

    @property
    def per_worker(self) -> float:
        return self.hours_per_minute / self.workers


def _timed(label: str, workers: int, run: Callable[[], float]) -> Measurement:
    start = time.perf_counter()
    hours = run()
    return Measurement(label, workers, hours, time.perf_counter() - start)


def _segments_of(plan: FilePlan, max_seconds: float) -> list[TimeSpan]:
    return list(plan.segments) if plan.segments is not None else []


@dataclass(frozen=True)
class CodecJob:
    """One source file and the sample ranges the pipeline will keep from it (prepared before timing)."""

    path: Path
    ranges: list[tuple[int, int]]


def codec_jobs(corpus: Path, config: ShardConfig) -> list[CodecJob]:
    """The kept segments of every file, from the same planning code the pipeline uses (untimed)."""
    location = open_location(corpus)
    jobs = []
    for file in discover(location).files:
        plan = inspect_file(location, file, config)
        assert isinstance(plan, FilePlan), plan
        ranges = [(round(s.start_s * plan.sample_rate), round(s.end_s * plan.sample_rate)) for s in plan.segments or ()]
        jobs.append(CodecJob(Path(location.path(file.audio)), ranges))
    return jobs


def decode_encode(job: CodecJob) -> float:
    """Read + decode the file, FLAC-encode each kept segment; returns the seconds of audio encoded."""
    samples, rate = soundfile.read(io.BytesIO(job.path.read_bytes()), dtype="int16")
    encoded = 0
    for start, stop in job.ranges:
        buffer = io.BytesIO()
        soundfile.write(buffer, samples[start:stop], rate, format="FLAC", subtype="PCM_16")
        encoded += stop - start
    return encoded / rate


def ceiling(jobs: Sequence[CodecJob], workers: int) -> float:
    """Hours of audio put through the codec by `workers` threads (the files split between them)."""
    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(decode_encode, jobs)) / 3600


def _write_and_mark(source: Location, destination: Location, shard: ShardPlan, config: ShardConfig) -> ShardResult:
    result = write_shard(source, destination, shard, config)
    write_marker(destination, result, shard_digest(shard, config))
    return result


def bare_pipeline(source: str, destination: str, config: ShardConfig) -> float:
    """The flow's steps without Prefect, in a thread pool of `config.concurrency`; returns audio hours."""
    src, dst = open_location(source), open_location(destination)
    dst.makedirs()
    discovery = discover(src, config.splits)
    with ThreadPoolExecutor(config.concurrency) as pool:
        outcomes = list(pool.map(lambda file: inspect_file(src, file, config), discovery.files))
        plans = assign_holdout([o for o in outcomes if isinstance(o, FilePlan)], config)
        rejections = [*discovery.rejections, *(o for o in outcomes if isinstance(o, Rejection))]
        shards = plan_shards(plans, config)
        results = list(pool.map(lambda shard: _write_and_mark(src, dst, shard, config), shards))
    return write_manifest(dst, results, rejections, discovery.total).audio_hours


def prefect_pipeline(source: str, destination: str, config: ShardConfig) -> float:
    """`speechtok shard` as the CLI runs it (minus the progress bar); returns audio hours."""
    from flows.shard import run_shard_corpus

    return run_shard_corpus(source, destination, config, show_progress=False).manifest.audio_hours


@contextmanager
def prefect_server() -> Iterator[None]:
    """One temporary Prefect API for all flow runs (start-up is not part of any timing)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def shard_hashes(destination: Path) -> dict[str, str]:
    table = pq.read_table(destination / "manifest" / "shards.parquet", columns=["shard", "sha256"])
    return dict(zip(table.column("shard").to_pylist(), table.column("sha256").to_pylist(), strict=True))


# ---------------------------------------------------------------------------------------------------- report


def _table(rows: Sequence[Measurement], ceiling_rate: float) -> str:
    header = f"{'run':<24}{'workers':>8}{'audio h':>9}{'wall s':>9}{'h/min':>8}{'h/min/wkr':>11}{'vs ceil':>9}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.label:<24}{row.workers:>8}{row.audio_hours:>9.3f}{row.seconds:>9.2f}{row.hours_per_minute:>8.2f}"
            f"{row.per_worker:>11.2f}{row.per_worker / ceiling_rate:>9.2f}"
        )
    return "\n".join(lines)


def _speedup(rows: Sequence[Measurement], label: str) -> str:
    one, two = (next(r for r in rows if r.label == label and r.workers == n) for n in (1, 2))
    return f"{label}: {two.hours_per_minute / one.hours_per_minute:.2f}x"


def target_bytes(corpus: CorpusStats, shards: int) -> int:
    """A shard size giving about `shards` shards, so two workers have enough shards to share."""
    return max(1, int(corpus.flac_bytes * corpus.voiced_hours / corpus.source_hours / shards))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=1.0, help="audio hours to generate (default 1.0)")
    parser.add_argument("--speakers", type=int, default=8, help="speakers in the corpus (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    parser.add_argument("--shards", type=int, default=16, help="about this many shards (default 16)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir and print its path")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="speechtok-bench-"))
    try:
        run_benchmark(work, args)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run_benchmark(work: Path, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    corpus_dir = work / "corpus"
    stats = build_corpus(corpus_dir, args.hours, args.speakers, args.seed)
    print(
        f"corpus: {stats.files} files, {stats.source_hours:.3f} h audio ({stats.voiced_hours:.3f} h voiced), "
        f"FLAC {stats.flac_bytes / 1e6:.1f} MB = {stats.compression:.0%} of 16-bit PCM "
        f"(built in {time.perf_counter() - started:.1f} s); {os.cpu_count()} CPUs"
    )
    config = ShardConfig(target_shard_bytes=target_bytes(stats, args.shards))
    jobs = codec_jobs(corpus_dir, config)
    rows = [_timed("ceiling (codec only)", n, lambda n=n: ceiling(jobs, n)) for n in (1, 2)]

    warm = work / "warm"
    build_corpus(warm, 1 / 60, 1, args.seed + 1)
    with prefect_server():
        prefect_pipeline(str(warm), str(work / "warm-out"), config.model_copy(update={"concurrency": 2}))
        for n in (1, 2):
            out = str(work / f"prefect-{n}")
            rows.append(_timed("prefect flow", n, lambda n=n, out=out: prefect_pipeline(str(corpus_dir), out, _c(config, n))))
    for n in (1, 2):
        out = str(work / f"bare-{n}")
        rows.append(_timed("bare functions", n, lambda n=n, out=out: bare_pipeline(str(corpus_dir), out, _c(config, n))))

    outputs = [work / f"{kind}-{n}" for kind in ("prefect", "bare") for n in (1, 2)]
    hashes = [shard_hashes(path) for path in outputs]
    identical = all(h == hashes[0] for h in hashes)
    print()
    print(_table(rows, rows[0].hours_per_minute))
    print()
    print(f"shards per run: {len(hashes[0])}, byte-identical across runs: {identical}")
    print("speed-up 2 vs 1 workers: " + ", ".join(_speedup(rows, label) for label in dict.fromkeys(r.label for r in rows)))
    print(f"total benchmark time {time.perf_counter() - started:.0f} s")
    if not identical:
        raise SystemExit("shards differ between runs: sharding is not deterministic")


def _c(config: ShardConfig, workers: int) -> ShardConfig:
    return config.model_copy(update={"concurrency": workers})


if __name__ == "__main__":
    main()
