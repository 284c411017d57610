"""The training data stream: disjoint per worker, hold-out excluded, hop-aligned, resumable exactly."""

from __future__ import annotations

import itertools
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from storage.fs import open_location
from storage.webdataset_io import list_shards
from training.data import DataConfig, DataPosition, ShardAudioStream

pytestmark = pytest.mark.usefixtures("prefect_api")
HOP = 9600


def stream(shards: Path, rank: int = 0, world: int = 1, **config: object) -> ShardAudioStream:
    location = open_location(str(shards))
    return ShardAudioStream(
        location,
        list_shards(location, holdout=False),
        rank=rank,
        world_size=world,
        sample_rate=24_000,
        hop=HOP,
        config=DataConfig(**{"batch_size": 2, "max_seconds": 3.0, **config}),  # type: ignore[arg-type]
    )


def test_workers_see_disjoint_training_segments_and_no_holdout(sharded_sample_corpus: Path) -> None:
    segments = pq.read_table(sharded_sample_corpus / "manifest" / "segments.parquet").to_pylist()
    training_keys = {row["key"] for row in segments if not row["holdout"]}
    assert any(row["holdout"] for row in segments)
    per_rank = []
    for rank in range(2):
        data = stream(sharded_sample_corpus, rank, 2)
        epoch_keys = {s["__key__"] for s in data._epoch_samples(0)}
        per_rank.append(epoch_keys)
    assert not per_rank[0] & per_rank[1]
    assert per_rank[0] | per_rank[1] == training_keys


def test_batches_are_hop_aligned_cropped_and_masked(sharded_sample_corpus: Path) -> None:
    batch = next(stream(sharded_sample_corpus).batches())
    assert batch.audio.shape[0] == 2 and batch.audio.shape[1] == 1
    assert batch.audio.shape[-1] % HOP == 0
    assert batch.audio.shape[-1] <= 3.0 * 24_000
    assert batch.mask.shape == (2, batch.audio.shape[-1])
    assert torch.all(batch.audio[~batch.mask.unsqueeze(1)] == 0)  # padding is silent
    assert batch.audio.abs().max() <= 1.0


def test_resuming_from_a_position_gives_the_same_batches(sharded_sample_corpus: Path) -> None:
    uninterrupted = list(itertools.islice(stream(sharded_sample_corpus).batches(), 7))
    position = uninterrupted[2].position
    resumed = list(itertools.islice(stream(sharded_sample_corpus).batches(position), 4))
    for expected, actual in zip(uninterrupted[3:], resumed, strict=True):
        assert expected.keys == actual.keys
        assert torch.equal(expected.audio, actual.audio)
    assert position != DataPosition()
