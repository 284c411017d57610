"""LLM export throughput and size: `export-llm` vs a bare Parquet read of the same `tokens` column.

In one run: write a token table shaped like a tokenized audiobook corpus (speakers reading books of chapters cut
into 4–16 s segments, 19 random 14-bit tokens per frame at 2.5 frames/s, chapters spread over shard files as
the tokenizer writes them: zstd, BYTE_STREAM_SPLIT, 4096-row row groups, a real `_manifest.json`), then measure
1. bare: `pq.read_table(file, columns=["tokens"])` of every file and its values as one numpy array (the ceiling
   for anything that reads the tokens);
2. the export (`plan_export` + `run_export`, Megatron layout, book documents, default specials), into a fresh
   directory each repetition.
Both on one thread (pyarrow's CPU and I/O pools set to 1; the export itself is single-threaded), with the files
in the page cache (one untimed read first), best of `--repeat`. Prints tokens per second per core, the ratio
export / bare (target >= 0.8) and bytes per token on disk (target <= 2.05). Never asserted in tests.

    .venv/bin/python benchmarks/export_llm.py [--hours 100] [--files 8] [--repeat 3] [--shard-tokens N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.export import ExportConfig, plan_export, run_export
from pipeline.tokenize.manifest import describe_file, write_table_manifest
from pipeline.tokenize.table import TOKENS_SCHEMA, ModelInfo, write_shard_table
from storage.fs import open_location

MODEL = ModelInfo("models:/speechtok-codec/1", "speechtok-codec", "1", 19, 2.5, 16_000, 16_384)


def write_corpus_table(root: Path, hours: float, files: int, seed: int = 0, scattered: bool = False) -> int:
    """A token table of about `hours` of audio; returns its token count.

    Chapters go to files as `speechtok shard` packs them (sorted by path, hold-out speakers in files of their own),
    or, with `scattered`, to random files (a stress case: every book's chapters in different files).
    """
    rng = np.random.default_rng(seed)
    per_chapter = 40  # segments per chapter (source file): ~6.7 min of audio
    chapters = max(1, round(hours * 3600 / (10.0 * per_chapter)))
    chapter_speaker = np.arange(chapters) // 6  # 3 books of 2 chapters per speaker
    holdout_speaker = chapter_speaker.max()
    rows = chapters * per_chapter
    chapter = np.repeat(np.arange(chapters), per_chapter)
    segment = np.tile(np.arange(per_chapter, dtype=np.int32), chapters)
    duration = np.round(rng.uniform(4.0, 16.0, size=rows), 3)
    n_frames = np.ceil(duration * MODEL.frame_rate - 1e-9).astype(np.int32)
    offsets = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(n_frames.astype(np.int64) * MODEL.tokens_per_frame, out=offsets[1:])
    values = rng.integers(0, MODEL.vocab_size, size=int(offsets[-1]), dtype=np.uint16)
    speaker = np.char.add("s", (chapter_speaker[chapter] + 100).astype(str))
    book = np.char.add(speaker, np.char.add("b", (chapter // 2 % 3).astype(str)))
    source = np.char.add(np.char.add(book, "/c"), (chapter % 2).astype(str))
    start = np.concatenate([np.cumsum(d) - d for d in np.split(duration + 0.5, chapters)])
    table = pa.table(
        {
            "utterance_id": np.char.add(np.char.add(source, "_"), np.char.zfill(segment.astype(str), 4)),
            "speaker": speaker,
            "book_id": book,
            "source_path": np.char.add(source, ".flac"),
            "segment_index": segment,
            "start_s": start,
            "end_s": start + duration,
            "duration_s": duration,
            "sample_rate": np.full(rows, 16_000, dtype=np.int32),
            "num_samples": np.round(duration * 16_000).astype(np.int64),
            "holdout": chapter_speaker[chapter] == holdout_speaker,
            "n_frames": n_frames,
            "tokens": pa.ListArray.from_arrays(pa.array(offsets), pa.array(values)),
            "tokens_per_frame": np.full(rows, MODEL.tokens_per_frame, dtype=np.int32),
            "model_name": [MODEL.name] * rows,
            "model_version": np.ones(rows, dtype=np.int32),
            "split": ["small"] * rows,
            "shard": ["-"] * rows,
        }
    ).cast(TOKENS_SCHEMA)
    held = chapter_speaker == holdout_speaker
    if scattered:
        file_of_chapter = rng.integers(0, files, size=chapters)[chapter]
    else:  # contiguous blocks of chapters in path order, like the sharder's plan; the hold-out speaker apart
        by_chapter = np.where(held, files - 1, np.cumsum(~held) - 1) if files > 1 else np.zeros(chapters, int)
        train_chapters = max(1, int((~held).sum()))
        by_chapter = np.where(held, by_chapter, by_chapter * max(1, files - 1) // train_chapters)
        file_of_chapter = by_chapter[chapter]
    location = open_location(root)
    entries = []
    for index in range(files):
        name = f"small-{index:06d}"
        part = table.filter(pa.array(file_of_chapter == index)).sort_by("utterance_id")
        write_shard_table(part, location, ("model_version=1", "split=small", f"{name}.parquet"), "zstd", 4096)
        entries.append(describe_file(location, MODEL, f"split=small/{name}.parquet", name, "small"))
    write_table_manifest(location, MODEL, "benchmark", entries, [])
    return int(offsets[-1])


def bare_read(files: list[Path]) -> int:
    """Read the tokens column of every file into numpy; returns the token count."""
    total = 0
    for path in files:
        column = pq.read_table(path, columns=["tokens"]).column(0)
        total += sum(chunk.values.to_numpy().size for chunk in column.chunks)
    return total


def best(repeat: int, work: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of `repeat` runs."""
    runs = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=100.0)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shard-tokens", type=int, default=1 << 28)
    parser.add_argument(
        "--scattered", action="store_true", help="stress case: chapters in random files instead of the sharder's order"
    )
    args = parser.parse_args()
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tokens = write_corpus_table(root / "tokens", args.hours, args.files, scattered=args.scattered)
        files = sorted((root / "tokens").rglob("*.parquet"))
        table_bytes = sum(f.stat().st_size for f in files)
        layout = "scattered chapters" if args.scattered else "chapters in the sharder's order"
        print(
            f"token table: {args.hours:.0f} audio h, {tokens:,} tokens in {len(files)} files ({layout}), "
            f"{table_bytes:,} bytes"
        )
        bare_read(files)  # page cache warm-up, untimed
        bare_wall, bare_cpu = best(args.repeat, lambda: bare_read(files))
        config = ExportConfig(shard_tokens=args.shard_tokens)
        runs = iter(range(args.repeat))
        phases: list[tuple[float, float]] = []
        summaries = []

        def export() -> None:
            started = time.process_time()
            plan = plan_export(str(root / "tokens"), config)
            planned = time.process_time()
            summaries.append(run_export(plan, str(root / f"export-{next(runs)}")))
            phases.append((planned - started, time.process_time() - planned))

        export_wall, export_cpu = best(args.repeat, export)
        summary = summaries[-1]
        plan_cpu, run_cpu = min(phases, key=sum)
        bare_speed, export_speed = tokens / bare_wall, tokens / export_wall
        print(
            f"bare Parquet read of `tokens`, 1 thread: {bare_speed / 1e6:.1f} M tokens/s "
            f"({bare_wall:.3f} s wall, {bare_cpu:.3f} s CPU)"
        )
        print(
            f"export-llm (megatron, book documents), 1 thread: {export_speed / 1e6:.1f} M tokens/s per core "
            f"({export_wall:.3f} s wall, {export_cpu:.3f} s CPU: plan {plan_cpu:.3f} s, write {run_cpu:.3f} s; "
            f"{summary.shards_written} shards)"
        )
        print(
            f"ratio export / bare read: {export_speed / bare_speed:.2f} by wall time, {bare_cpu / export_cpu:.2f} by "
            "CPU time (target >= 0.8)"
        )
        content = summary.content_tokens
        print(
            f"bytes per audio token on disk: {summary.token_file_bytes / content:.4f} in .bin + .idx, "
            f"{summary.bytes_on_disk / content:.4f} with index.parquet and meta.json (target <= 2.05); "
            f"{summary.plan.tokens - content:,} special tokens"
        )


if __name__ == "__main__":
    main()
