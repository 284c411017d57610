"""The evaluation set: the hold-out speakers' segments of a `speechtok shard` output, read back as audio.

Its id is a digest of the selected segment keys, so two evaluations are comparable exactly when they scored the
same clips, wherever the shards are mounted (local path or s3://).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.evaluate.config import EvaluateConfig
from pipeline.sharding.manifest import SEGMENTS_MANIFEST, read_shard_entries, read_shard_segments
from pipeline.tokenize.decode import decode_sample
from storage.fs import Location
from storage.webdataset_io import iter_samples, list_shards


@dataclass(frozen=True)
class Segment:
    """One hold-out segment's identity and where its audio lives."""

    key: str
    shard: str
    speaker: str
    sample_rate: int


@dataclass(frozen=True)
class EvaluationSet:
    """The selected hold-out segments (sorted by key) and how they are scored (`scoring`, the config fingerprint).

    `set_id`: 16 hex digits of SHA-256 over both, equal for two evaluations exactly when they are comparable.
    """

    shards_url: str
    segments: list[Segment]
    scoring: dict[str, object]

    @property
    def set_id(self) -> str:
        keys = "\n".join(s.key for s in self.segments)
        scoring = json.dumps(self.scoring, sort_keys=True, default=str)
        return hashlib.sha256(f"{keys}\n{scoring}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Clip:
    """A segment's audio at its native rate: `audio` [L] float32 (the first `max_seconds` when cropped)."""

    segment: Segment
    audio: np.ndarray


def select_holdout(location: Location, config: EvaluateConfig) -> EvaluationSet:
    """Hold-out segments (the first `config.max_clips` by key), read from the hold-out shards' own manifest parts
    only: ~2% of the corpus, never the whole `manifest/segments.parquet`."""
    columns = ["key", "shard", "speaker", "sample_rate"]
    # Each part is sorted by key, so the first `max_clips` overall are among the first `max_clips` of each part.
    keep = config.max_clips
    parts = [
        read_shard_segments(location, e.shard, columns).slice(0, keep)
        for e in read_shard_entries(location)
        if e.holdout
    ]
    held = pa.concat_tables(parts).sort_by("key") if parts else pa.table({name: [] for name in columns})
    if held.num_rows == 0:
        raise ValueError(
            f"{location.url_of(*SEGMENTS_MANIFEST)} has no hold-out segments; re-shard with a holdout_fraction > 0 "
            "(`speechtok shard --holdout-fraction 0.02`) so evaluation uses speakers the codec never trained on"
        )
    if config.max_clips is not None:
        held = held.slice(0, config.max_clips)
    return EvaluationSet(location.url, _segments(held), config.fingerprint())


def _segments(table: pa.Table) -> list[Segment]:
    return [
        Segment(str(row["key"]), str(row["shard"]), str(row["speaker"]), int(row["sample_rate"]))
        for row in table.to_pylist()
    ]


def iter_clips(
    location: Location, selection: EvaluationSet, max_seconds: float | None = None
) -> Generator[Clip, None, None]:
    """Audio of every selected segment, shard by shard (streamed: one clip in memory at a time), cropped to its
    first `max_seconds` when given.

    Raises ValueError naming the missing keys when the shards hold fewer segments than the manifest lists.
    """
    wanted = {segment.key: segment for segment in selection.segments}
    needed = {segment.shard for segment in selection.segments}
    paths = [path for path in list_shards(location, holdout=True) if Path(path).stem in needed]
    seen: set[str] = set()
    for sample in iter_samples(location, paths):
        segment = wanted.get(sample["__key__"])
        if segment is None:
            continue
        seen.add(segment.key)
        audio = decode_sample(sample, segment.sample_rate)
        if max_seconds is not None:
            audio = audio[: max(1, int(max_seconds * segment.sample_rate))]
        yield Clip(segment, audio)
    missing = sorted(set(wanted) - seen)
    if missing:
        raise ValueError(
            f"{len(missing)} hold-out segments listed in {location.url_of(*SEGMENTS_MANIFEST)} are not in its shards "
            f"(first: {missing[:3]}); re-run `speechtok shard` on the corpus to repair the output"
        )
