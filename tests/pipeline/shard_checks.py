"""Assertions shared by the local and S3 sharding tests: read shards back and compare with the source."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile
import webdataset


def read_manifest(out: Path) -> tuple[list[dict], list[dict]]:
    segments = pq.read_table(out / "manifest" / "segments.parquet").to_pylist()
    rejections = pq.read_table(out / "manifest" / "rejections.parquet").to_pylist()
    return segments, rejections


def source_samples(corpus: Path, relative: str) -> np.ndarray:
    """The source file as the sharder must have kept it: integers, channel mean for multi-channel."""
    samples, _ = soundfile.read(corpus / relative, dtype="int16", always_2d=True)
    if samples.shape[1] == 1:
        return samples[:, 0]
    return np.round(samples.astype(np.float64).mean(axis=1)).astype(np.int16)


def assert_shards_match_sources(corpus: Path, out: Path) -> int:
    """Every shard sample (read with webdataset.WebDataset) equals its source slice; returns samples read."""
    segments, _ = read_manifest(out)
    by_key = {row["key"]: row for row in segments}
    tars = sorted(str(path) for path in (out / "shards").glob("*.tar"))
    assert tars, "no shards written"
    seen = set()
    for sample in webdataset.WebDataset(tars, shardshuffle=False, empty_check=False):
        key = sample["__key__"]
        row = by_key[key]
        meta = json.loads(sample["json"])
        audio, rate = soundfile.read(io.BytesIO(sample["flac"]), dtype="int16")
        assert rate == row["sample_rate"] == meta["sample_rate"]
        start = row["start_sample"]
        expected = source_samples(corpus, row["source"])[start : start + row["num_samples"]]
        np.testing.assert_array_equal(audio, expected)
        assert meta["speaker"] == row["speaker"] and meta["book"] == row["book"]
        assert abs(meta["end_s"] - meta["start_s"] - meta["duration_s"]) < 1e-9
        assert "." not in key
        seen.add(key)
    assert seen == set(by_key), "manifest and shards disagree"
    return len(seen)


def assert_accounting(corpus: Path, out: Path) -> None:
    """Every audio file under the corpus is in segments or in rejections, never both, never neither."""
    segments, rejections = read_manifest(out)
    discovered = {path.relative_to(corpus).as_posix() for path in corpus.rglob("*") if path.suffix in (".flac", ".wav")}
    sharded = {row["source"] for row in segments}
    rejected = {row["source"] for row in rejections}
    assert not sharded & rejected
    assert sharded | rejected == discovered


def tree_bytes(root: Path) -> dict[str, bytes]:
    """All published files (shards and manifest) by relative path, for byte-identity checks."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.parts[-2] in ("shards", "manifest")
    }
