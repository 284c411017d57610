"""Read WebDataset shards from any `Location` (local or S3) with webdataset's own tar iterators."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow.parquet as pq
from webdataset.tariterators import group_by_keys, tar_file_expander

from storage.fs import Location

SHARDS_MANIFEST = ("manifest", "shards.parquet")


def iter_samples(location: Location, shard_paths: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Samples (`{"__key__", "flac", "json", "__url__"}`, bytes values) of the given shards, in order.

    `shard_paths` are relative to the location (e.g. `shards/small-000000.tar`). Each shard is streamed, so
    memory stays bounded by one sample whatever the shard size.
    """
    for relative in shard_paths:
        with location.open(relative) as stream:
            yield from group_by_keys(tar_file_expander([{"url": location.url_of(relative), "stream": stream}]))


def list_shards(location: Location, *, holdout: bool | None = None) -> list[str]:
    """Shard paths from `manifest/shards.parquet`, optionally only training (`False`) or hold-out (`True`).

    Raises FileNotFoundError naming the manifest when the location holds no sharding output.
    """
    if not location.exists(*SHARDS_MANIFEST):
        raise FileNotFoundError(
            f"{location.url_of(*SHARDS_MANIFEST)} not found: is {location.url} the output of `speechtok shard`?"
        )
    with location.open(*SHARDS_MANIFEST) as handle:
        table = pq.read_table(handle, columns=["path", "holdout"]).to_pylist()
    return [row["path"] for row in table if holdout is None or row["holdout"] == holdout]
