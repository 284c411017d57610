"""The training data stream: disjoint per worker, hold-out excluded, hop-aligned, resumable exactly, also on a
different number of workers; fast-forward opens no finished shard; background decoding changes nothing."""

from __future__ import annotations

import itertools
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from storage.fs import open_location
from storage.webdataset_io import list_shards
from training.data import DataConfig, ShardAudioStream
from training.data_position import DataPosition, repartition

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
        epoch_keys = {s.key for s in data._read_share(DataPosition(0))}
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


def epoch_keys(data: ShardAudioStream, position: DataPosition) -> list[str]:
    """The keys a worker reads from `position` to the end of that position's epoch."""
    return [s.key for s in data._read_share(position)]


@pytest.mark.parametrize(("old_world", "new_world"), [(2, 3), (3, 1), (2, 5)])
def test_repartition_on_another_world_size_loses_no_sample(
    sharded_sample_corpus: Path, old_world: int, new_world: int
) -> None:
    old = [stream(sharded_sample_corpus, rank, old_world) for rank in range(old_world)]
    full_epoch = sorted(key for data in old for key in epoch_keys(data, DataPosition(0)))
    # Each old worker stops somewhere inside its share (a different number of samples each).
    consumed, positions = [], []
    for rank, data in enumerate(old):
        samples = list(itertools.islice(data._read_share(DataPosition(0)), 3 + 2 * rank))
        consumed += [s.key for s in samples]
        positions.append(samples[-1].position)
    shards = list_shards(open_location(str(sharded_sample_corpus)), holdout=False)
    resumed = repartition(positions, shards, seed=0, new_world_size=new_world)
    new = [stream(sharded_sample_corpus, rank, new_world) for rank in range(new_world)]
    rest = [key for rank, data in enumerate(new) for key in epoch_keys(data, resumed[rank])]
    if all(not p.share.shared for p in resumed if p.share):
        assert sorted(consumed + rest) == full_epoch  # every sample exactly once
    else:
        assert set(consumed + rest) == set(full_epoch)  # a shared stride may replay up to world − 1 samples
    assert all(p.epoch == 0 for p in resumed)


def test_fast_forward_opens_no_finished_shard(sharded_sample_corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = stream(sharded_sample_corpus)
    share = data.share(0)
    assert len(share.cursors) >= 3
    position = DataPosition(epoch=0, shards_done=2, samples_in_shard=1)
    opened: list[str] = []
    original = type(data.location).open

    def recording_open(self: object, *parts: str, **kwargs: object) -> object:
        opened.append("/".join(parts))
        return original(self, *parts, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(type(data.location), "open", recording_open)
    first = next(data._read_share(position))
    assert opened == [share.cursors[2].shard]
    assert first.position == DataPosition(0, 2, 2)


def test_background_decoding_gives_the_same_batches(sharded_sample_corpus: Path) -> None:
    synchronous = list(itertools.islice(stream(sharded_sample_corpus, decode_workers=0).batches(), 5))
    threaded = list(itertools.islice(stream(sharded_sample_corpus, decode_workers=2).batches(), 5))
    for a, b in zip(synchronous, threaded, strict=True):
        assert a.keys == b.keys and a.position == b.position
        assert torch.equal(a.audio, b.audio)


def test_positions_round_trip_through_json(sharded_sample_corpus: Path) -> None:
    shards = list_shards(open_location(str(sharded_sample_corpus)), holdout=False)
    positions = repartition([DataPosition(0, 1, 4), DataPosition(0, 0, 2)], shards, seed=0, new_world_size=3)
    import json

    for position in positions:
        assert DataPosition.from_json(json.loads(json.dumps(position.to_json()))) == position
