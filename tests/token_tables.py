"""Builders for token tables with the exact on-disk layout of `speechtok tokenize`, without running it.

`write_token_table` writes `OUT/model_version={V}/split={S}/{shard}.parquet` with the job's own writer (TOKENS_SCHEMA,
zstd, its column encodings) plus a `_manifest.json` that readers must ignore; rows are random but valid for the
schema (tokens frame-major).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.tokenize.table import TOKENS_SCHEMA, write_shard_table
from storage.fs import open_location

FRAME_RATE = 2.5  # frames per second of every speechtok codec (spec §1)
TOKENS_PER_FRAME = 19
TokenSource = Callable[[np.random.Generator, int, int], np.ndarray]  # (rng, n_frames, per_frame) -> flat uint16


def random_tokens(rng: np.random.Generator, n_frames: int, per_frame: int) -> np.ndarray:
    return rng.integers(0, 1 << 14, size=n_frames * per_frame, dtype=np.uint16)


@dataclass(frozen=True)
class Partition:
    """`rows` rows in `shards` files under model_version={version}/split={split}."""

    version: int
    split: str
    rows: int
    shards: int = 2


def token_rows(
    partition: Partition,
    shard: str,
    rows: int,
    rng: np.random.Generator,
    *,
    model_name: str = "speechtok-codec",
    tokens_per_frame: int = TOKENS_PER_FRAME,
    tokens: TokenSource = random_tokens,
    seconds: tuple[float, float] = (0.5, 4.0),
) -> pa.Table:
    """`rows` rows of one shard file: speakers 10–13, two books each, 16/24 kHz, segments of `seconds` (range)."""
    speakers = rng.choice(["10", "11", "12", "13"], size=rows)
    books = [f"{s}{b}" for s, b in zip(speakers, rng.integers(0, 2, size=rows), strict=True)]
    duration = np.round(rng.uniform(*seconds, size=rows), 3)
    rate = rng.choice([16_000, 24_000], size=rows).astype(np.int32)
    n_frames = np.ceil(duration * FRAME_RATE - 1e-9).astype(np.int32)
    keys = [f"{s}_{b}_{shard}_{i:04d}" for i, (s, b) in enumerate(zip(speakers, books, strict=True))]
    table = pa.table(
        {
            "utterance_id": keys,
            "speaker": speakers.tolist(),
            "book_id": books,
            "source_path": [f"{partition.split}/{s}/{b}/x.flac" for s, b in zip(speakers, books, strict=True)],
            "segment_index": np.arange(rows, dtype=np.int32),
            "start_s": np.zeros(rows),
            "end_s": duration,
            "duration_s": duration,
            "sample_rate": rate,
            "num_samples": np.round(duration * rate).astype(np.int64),
            "holdout": speakers == "13",
            "n_frames": n_frames,
            "tokens": [tokens(rng, int(n), tokens_per_frame).tolist() for n in n_frames],
            "tokens_per_frame": np.full(rows, tokens_per_frame, dtype=np.int32),
            "model_name": [model_name] * rows,
            "model_version": np.full(rows, partition.version, dtype=np.int32),
            "split": [partition.split] * rows,
            "shard": [shard] * rows,
        }
    )
    return table.cast(TOKENS_SCHEMA)


def write_token_table(
    root: Path,
    partitions: Sequence[Partition] = (Partition(1, "small", 12), Partition(1, "medium", 7), Partition(2, "small", 5)),
    seed: int = 0,
    **row_options: object,
) -> Path:
    """Write a token table under `root` and return `root`; `row_options` go to `token_rows`."""
    rng = np.random.default_rng(seed)
    location = open_location(root)
    for part in partitions:
        directory = root / f"model_version={part.version}" / f"split={part.split}"
        directory.mkdir(parents=True, exist_ok=True)
        sizes = np.array_split(np.arange(part.rows), part.shards)
        for index, size in enumerate(sizes):
            shard = f"{part.split}-{index:06d}"
            table = token_rows(part, shard, len(size), rng, **row_options)  # type: ignore[arg-type]
            # The job's own writer, so files carry its encodings (e.g. BYTE_STREAM_SPLIT tokens).
            write_shard_table(table, location, (directory.relative_to(root).as_posix(), f"{shard}.parquet"), "zstd", 64)
        (root / f"model_version={part.version}" / "_manifest.json").write_text(json.dumps({"format": "x"}))
    return root


def write_book_table(
    root: Path,
    speakers: int = 4,
    books: int = 2,
    chapters: int = 2,
    files: int = 3,
    version: int = 1,
    seed: int = 0,
    row_group_size: int = 8,
) -> Path:
    """A token table shaped like a tokenized audiobook corpus, with a real `_manifest.json` (what exporters read).

    Speakers `100`, `101`, ... each read `books` books of `chapters` chapters cut into 2–7 consecutive segments
    (increasing start_s); the last speaker is the hold-out. Rows are shuffled over `files` shard files (each sorted
    by utterance_id, as the tokenizer writes them), so a book's utterances are spread over files and row groups.
    """
    from pipeline.tokenize.manifest import describe_file, write_table_manifest
    from pipeline.tokenize.table import ModelInfo

    rng = np.random.default_rng(seed)
    model = ModelInfo(
        "models:/speechtok-codec/1", "speechtok-codec", str(version), TOKENS_PER_FRAME, FRAME_RATE, 16_000, 16_384
    )
    records = []
    for s in range(speakers):
        speaker = str(100 + s)
        for b in range(books):
            book = f"{speaker}{b}"
            for c in range(chapters):
                source = f"small/{speaker}/{book}/chapter{c}.flac"
                start = 0.0
                for segment in range(int(rng.integers(2, 8))):
                    duration = float(np.round(rng.uniform(0.4, 4.0), 3))
                    records.append((speaker, book, source, segment, start, duration, s == speakers - 1))
                    start += duration + 0.5
    assignment = rng.integers(0, files, size=len(records))
    location = open_location(root)
    entries = []
    for index in range(files):
        shard = f"small-{index:06d}"
        mine = [r for r, f in zip(records, assignment, strict=True) if f == index]
        frames = np.array([int(np.ceil(r[5] * FRAME_RATE - 1e-9)) for r in mine], dtype=np.int32)
        table = pa.table(
            {
                "utterance_id": [f"{r[0]}_{r[1]}_{Path(r[2]).stem}_{r[3]:04d}" for r in mine],
                "speaker": [r[0] for r in mine],
                "book_id": [r[1] for r in mine],
                "source_path": [r[2] for r in mine],
                "segment_index": np.array([r[3] for r in mine], dtype=np.int32),
                "start_s": np.array([r[4] for r in mine]),
                "end_s": np.array([r[4] + r[5] for r in mine]),
                "duration_s": np.array([r[5] for r in mine]),
                "sample_rate": np.full(len(mine), 16_000, dtype=np.int32),
                "num_samples": np.array([round(r[5] * 16_000) for r in mine], dtype=np.int64),
                "holdout": [r[6] for r in mine],
                "n_frames": frames,
                "tokens": [random_tokens(rng, int(n), TOKENS_PER_FRAME).tolist() for n in frames],
                "tokens_per_frame": np.full(len(mine), TOKENS_PER_FRAME, dtype=np.int32),
                "model_name": [model.name] * len(mine),
                "model_version": np.full(len(mine), version, dtype=np.int32),
                "split": ["small"] * len(mine),
                "shard": [shard] * len(mine),
            }
        ).cast(TOKENS_SCHEMA)
        parts = (f"model_version={version}", "split=small", f"{shard}.parquet")
        write_shard_table(table.sort_by("utterance_id"), location, parts, "zstd", row_group_size)
        entries.append(describe_file(location, model, f"split=small/{shard}.parquet", shard, "small"))
    write_table_manifest(location, model, "shards", entries, [])
    return root
