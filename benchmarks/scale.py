"""Scale: wall time and peak memory of shard → tokenize → verify as the corpus grows, extrapolated to LibriLight.

LibriLight is 219,041 FLAC files and about 15 M segments (≤ 16 s each). This benchmark builds synthetic corpora
of the same shape at several sizes (files × voice regions per file), runs each stage as `speechtok` runs it
(`run_shard_corpus` through Prefect, `tokenize_shards` on a local Ray instance with the `tiny` codec,
`verify_tokens`), each in a fresh process, and records that process's wall time and peak RSS (the driver: Ray
workers and Prefect's temporary server are other processes). It then fits, per stage,

    cost ≈ fixed + per_file × files + per_segment × segments          (least squares over the sizes)

and extrapolates to 219,041 files / 15,000,000 segments. The corpora vary both the file count and the segments
per file, so the two slopes are told apart.

Corpus: 16 kHz mono FLAC, quiet noise (-40 dBFS) with `regions` voiced bursts of 0.12 s separated by 0.1 s
pauses; `voice_activity` in the JSON lists the bursts; sharded with `max_seconds=0.2`, shorter than two bursts and
their pause, so each burst is a segment (the counts used are the manifest's).
Shard size is set so a shard holds about 4,400 segments, as a 1 GiB shard of real LibriLight does.

Baseline in the same run: `--baseline-tree DIR` runs the same stages on another checkout of speechtok (e.g.
`git worktree add /tmp/before <commit>`), so the figures show before/after on the same corpora and machine;
every run also reports the RSS of a process that imports the stage's modules and does nothing ("imports"),
the floor a stage's peak is measured against.

    .venv/bin/python benchmarks/scale.py [--sizes 1000x20,2500x8,5000x4,5000x20] [--baseline-tree DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FULL_FILES = 219_041
FULL_SEGMENTS = 15_000_000
SEGMENTS_PER_SHARD = 4_400  # 1 GiB shards of LibriLight: 15 M segments / ~3,400 shards
SAMPLE_RATE = 16_000
BURST_S, PAUSE_S = 0.12, 0.10
MAX_SECONDS = 0.2  # < 2 bursts + a pause: no two bursts merge into one segment
LIBRILIGHT_ROWS_PER_BLOCK = 120 / (57_706 * 3600 / FULL_SEGMENTS)  # default 120 s batches of ~13.9 s segments: 8.7
REPO = Path(__file__).resolve().parents[1]
STAGES = ("shard", "tokenize", "verify")

# ------------------------------------------------------------------------------------------- corpus


def build_corpus(root: Path, files: int, regions: int, seed: int = 0) -> int:
    """A LibriLight-shaped corpus of `files` files with `regions` voiced bursts each; returns its FLAC bytes."""
    import soundfile

    rng = np.random.default_rng(seed)
    speakers = max(2, files // 25)
    length = int((PAUSE_S + regions * (BURST_S + PAUSE_S)) * SAMPLE_RATE)
    total = 0
    for index in range(files):
        speaker = index % speakers
        folder = root / "large" / f"{speaker}" / f"{index % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        audio = rng.normal(0, 0.01, length)
        spans = []
        for region in range(regions):
            start = PAUSE_S + region * (BURST_S + PAUSE_S)
            begin, end = int(start * SAMPLE_RATE), int((start + BURST_S) * SAMPLE_RATE)
            audio[begin:end] += rng.normal(0, 0.1, end - begin)
            spans.append([round(start, 4), round(start + BURST_S, 4)])
        path = folder / f"file_{index:06d}.flac"
        soundfile.write(path, np.clip(audio, -1, 1), SAMPLE_RATE, subtype="PCM_16")
        (folder / f"file_{index:06d}.json").write_text(json.dumps({"voice_activity": spans, "snr": 20.0}))
        total += path.stat().st_size
    return total


# ------------------------------------------------------------------------------------- one stage, one process


def run_stage(stage: str, args: argparse.Namespace) -> dict[str, float]:
    """Run one stage in this process (started for it alone) and return its wall time and peak RSS. A stage imports
    only its own modules, before the clock starts: its seconds are its work (start-up has its own benchmark)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if stage == "imports":
        import pipeline.tokenize.job
        import pipeline.tokenize.verify  # noqa: F401

        return {"wall_s": 0.0, "peak_rss_mb": _peak_rss_mb()}
    if stage == "shard":
        from flows.shard import run_shard_corpus
        from pipeline.sharding.config import ShardConfig

        config = ShardConfig(max_seconds=MAX_SECONDS, target_shard_bytes=args.shard_bytes, concurrency=2)
        started = time.perf_counter()
        run_shard_corpus(args.corpus, args.shards, config, show_progress=False)
    elif stage == "tokenize":
        from pipeline.tokenize.config import TokenizeConfig
        from pipeline.tokenize.job import tokenize_shards
        from storage.mlflow_io import use_tracking_uri

        use_tracking_uri(f"sqlite:///{args.registry}/mlflow.db")
        started = time.perf_counter()
        seconds = float(args.batch_seconds) if args.batch_seconds else TokenizeConfig().batch_seconds
        summary = tokenize_shards(args.shards, args.tokens, config=TokenizeConfig(workers=1, batch_seconds=seconds))
        if summary.rejected:
            raise RuntimeError(f"tokenize rejected shards: {summary.rejected[:3]}")
    elif stage == "verify":
        from pipeline.tokenize.verify import verify_tokens

        started = time.perf_counter()
        report = verify_tokens(args.tokens, args.shards)
        if not report.ok:
            raise RuntimeError(f"verify found gaps: {report.problems()}")
    else:
        raise ValueError(f"unknown stage {stage!r}")
    return {"wall_s": time.perf_counter() - started, "peak_rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    """This process's peak resident set (`VmHWM`; `ru_maxrss` would carry over the parent's peak across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage_in_subprocess(stage: str, tree: Path, paths: dict[str, str]) -> dict[str, float]:
    """`run_stage` in a fresh Python whose speechtok comes from `tree`."""
    command = [sys.executable, str(Path(__file__).resolve()), "--stage", stage]
    for name, value in paths.items():
        command += [f"--{name.replace('_', '-')}", value]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tree)
    if result.returncode != 0:
        raise RuntimeError(f"{stage} on {tree} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def manifest_counts(shards: Path) -> tuple[int, int]:
    """(segments, shards) as the sharding manifest records them."""
    import pyarrow.parquet as pq

    segments = pq.read_metadata(shards / "manifest" / "segments.parquet").num_rows
    return segments, pq.read_metadata(shards / "manifest" / "shards.parquet").num_rows


def register_codec(registry: Path) -> None:
    """A randomly initialised `tiny` codec as speechtok-codec@production in a SQLite store under `registry`."""
    import mlflow
    import torch

    from storage.mlflow_io import CODEC_MODEL_NAME, ensure_experiment, log_and_register, use_tracking_uri
    from training.codec import Codec
    from training.configs import preset

    use_tracking_uri(f"sqlite:///{registry}/mlflow.db")
    ensure_experiment("scale-benchmark")
    torch.manual_seed(0)
    directory = Codec.from_config(preset("tiny", SAMPLE_RATE)).save(registry / "codec")
    with mlflow.start_run():
        log_and_register(directory, "codec", CODEC_MODEL_NAME, "production")


# --------------------------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class Point:
    files: int
    segments: int
    value: float


def fit(points: list[Point]) -> tuple[float, float, float]:
    """Least-squares (fixed, per_file, per_segment) of value ≈ fixed + per_file·files + per_segment·segments."""
    design = np.array([[1.0, p.files, p.segments] for p in points])
    coefficients, *_ = np.linalg.lstsq(design, np.array([p.value for p in points]), rcond=None)
    return float(coefficients[0]), float(coefficients[1]), float(coefficients[2])


def extrapolate(coefficients: tuple[float, float, float]) -> float:
    fixed, per_file, per_segment = coefficients
    return fixed + per_file * FULL_FILES + per_segment * FULL_SEGMENTS


# ------------------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000x20,2500x8,5000x4,5000x20", help="FILESxREGIONS,… (≥ 3 sizes)")
    parser.add_argument("--baseline-tree", type=Path, help="another speechtok checkout to measure the same way")
    parser.add_argument("--workdir", type=Path, help="keep corpora and outputs here (default: a temp dir)")
    parser.add_argument("--stages", default=",".join(STAGES), help="subset of shard,tokenize,verify")
    parser.add_argument(
        "--librilight-blocks",
        action="store_true",
        help="tokenize in Ray Data blocks of as many segments as LibriLight's (~9: 120 s batches of ~14 s segments) "
        "instead of ~1000 of these 0.12 s bursts, so the driver tracks as many blocks per segment as at full scale",
    )
    for name in ("stage", "corpus", "shards", "tokens", "registry", "shard-bytes", "batch-seconds"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        args.shard_bytes = int(args.shard_bytes or 0)
        print(json.dumps(run_stage(args.stage, args)))
        return

    sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes.split(",")]
    stages = args.stages.split(",")
    trees = {"now": REPO, **({"baseline": args.baseline_tree.resolve()} if args.baseline_tree else {})}
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="speechtok-scale-"))
    registry = workdir / "registry"
    registry.mkdir(parents=True, exist_ok=True)
    if "tokenize" in stages and not (registry / "mlflow.db").exists():
        register_codec(registry)
    print(f"workdir {workdir}; trees: {', '.join(f'{k}={v}' for k, v in trees.items())}", flush=True)

    floors = {name: stage_in_subprocess("imports", tree, {})["peak_rss_mb"] for name, tree in trees.items()}
    results: dict[str, dict[str, list[Point]]] = {t: {s: [] for s in stages} for t in trees}
    memory: dict[str, dict[str, list[Point]]] = {t: {s: [] for s in stages} for t in trees}
    header = f"{'tree':9} {'files':>6} {'segments':>8} {'shards':>6} " + " ".join(
        f"{s + ' s':>10} {s + ' MB':>11}" for s in stages
    )
    print(header)
    for files, regions in sizes:
        corpus = workdir / f"corpus-{files}x{regions}"
        if not corpus.exists():
            flac_bytes = build_corpus(corpus, files, regions)
            (corpus / "flac_bytes").write_text(str(flac_bytes))
        flac_bytes = int((corpus / "flac_bytes").read_text())
        segments = files * regions
        shards_wanted = max(1, round(segments / SEGMENTS_PER_SHARD))
        kept = BURST_S / (BURST_S + PAUSE_S)
        shard_bytes = max(1, int(flac_bytes * kept / shards_wanted))
        for name, tree in trees.items():
            out = workdir / f"{name}-{files}x{regions}"
            shutil.rmtree(out, ignore_errors=True)  # a fresh run each time, never a resumed one
            paths = {
                "corpus": str(corpus),
                "shards": str(out / "shards"),
                "tokens": str(out / "tokens"),
                "registry": str(registry),
                "shard_bytes": str(shard_bytes),
                "batch_seconds": str(LIBRILIGHT_ROWS_PER_BLOCK * BURST_S if args.librilight_blocks else 0),
            }
            row = f"{name:9} {files:>6} "
            for stage in stages:
                figures = stage_in_subprocess(stage, tree, paths)
                if stage == "shard":
                    segments, shards = manifest_counts(out / "shards")
                    row += f"{segments:>8} {shards:>6} "
                results[name][stage].append(Point(files, segments, figures["wall_s"]))
                memory[name][stage].append(Point(files, segments, figures["peak_rss_mb"]))
                row += f"{figures['wall_s']:>10.1f} {figures['peak_rss_mb']:>11.0f}"
            print(row, flush=True)

    print(f"\nimports-only RSS (MB): {', '.join(f'{k} {v:.0f}' for k, v in floors.items())}")
    print(
        f"fit: cost ≈ fixed + per_file·files + per_segment·segments; full corpus = {FULL_FILES:,} files, "
        f"{FULL_SEGMENTS:,} segments"
    )
    print(
        f"{'tree':9} {'stage':9} {'fixed s':>8} {'ms/file':>8} {'ms/seg':>7} {'full h':>7} "
        f"{'fixed MB':>9} {'KB/file':>8} {'KB/seg':>7} {'full GB':>8}"
    )
    for name in trees:
        for stage in stages:
            time_fit, rss_fit = fit(results[name][stage]), fit(memory[name][stage])
            print(
                f"{name:9} {stage:9} {time_fit[0]:>8.1f} {time_fit[1] * 1e3:>8.2f} {time_fit[2] * 1e3:>7.3f} "
                f"{extrapolate(time_fit) / 3600:>7.1f} {rss_fit[0]:>9.0f} {rss_fit[1] * 1024:>8.3f} "
                f"{rss_fit[2] * 1024:>7.4f} {extrapolate(rss_fit) / 1024:>8.2f}"
            )
    if "baseline" in trees:
        print("\nfull-corpus peak RSS, now / baseline:")
        for stage in stages:
            now, before = extrapolate(fit(memory["now"][stage])), extrapolate(fit(memory["baseline"][stage]))
            print(f"  {stage:9} {now / 1024:6.2f} GB / {before / 1024:6.2f} GB = {now / before:.2f}")


if __name__ == "__main__":
    main()
