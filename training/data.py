"""Training audio from WebDataset shards: a disjoint subset per worker, decoded, resampled, cropped, batched.

Hold-out speakers are excluded by shard (the sharder gives them shards of their own). The stream is endless
(epochs) and resumable: its position is (epoch, samples consumed), and every random choice is seeded from
(seed, rank, epoch, sample index), so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF

from storage.fs import Location
from storage.webdataset_io import iter_samples


@dataclass(frozen=True)
class DataConfig:
    """Crop, batch and augmentation settings (spec §1)."""

    batch_size: int = 4
    max_seconds: float = 15.0  # random crop of longer segments (paper and reference CLI)
    min_seconds: float = 0.5  # shorter batches are padded up to max(min_seconds, 4 hops)
    gain_probability: float = 0.3
    gain_low: float = 0.8
    gain_high: float = 1.2
    noise_probability: float = 0.2
    noise_std: float = 0.001
    seed: int = 0


@dataclass(frozen=True)
class DataPosition:
    """Where a worker's stream is: saved in checkpoints, restored on resume."""

    epoch: int = 0
    samples: int = 0


@dataclass
class AudioBatch:
    """A padded batch at the model's sample rate."""

    audio: torch.Tensor  # [B, 1, L] float32, L a multiple of the hop
    mask: torch.Tensor  # [B, L] bool, True on real (not padded) samples
    keys: list[str]
    position: DataPosition  # stream position *after* this batch

    @property
    def num_samples(self) -> int:
        return int(self.mask.sum())


class ShardAudioStream:
    """Endless batches for one worker (`rank` of `world_size`) from `shard_paths` under `location`."""

    def __init__(
        self,
        location: Location,
        shard_paths: Sequence[str],
        *,
        rank: int,
        world_size: int,
        sample_rate: int,
        hop: int,
        config: DataConfig,
    ) -> None:
        if not shard_paths:
            raise ValueError(f"no training shards under {location.url}: shard a corpus first")
        self.location = location
        self.shard_paths = sorted(shard_paths)
        self.rank, self.world_size = rank, world_size
        self.sample_rate, self.hop = sample_rate, hop
        self.config = config
        self.crop_samples = max(hop, int(config.max_seconds * sample_rate) // hop * hop)
        self.min_samples = max(4 * hop, -(-int(config.min_seconds * sample_rate) // hop) * hop)

    def _epoch_samples(self, epoch: int) -> Iterator[dict]:
        """This worker's share of one epoch: whole shards when there are enough, else every n-th sample."""
        order = list(self.shard_paths)
        random.Random(self.config.seed * 1_000_003 + epoch).shuffle(order)
        if len(order) >= self.world_size:
            yield from iter_samples(self.location, order[self.rank :: self.world_size])
            return
        for index, sample in enumerate(iter_samples(self.location, order)):
            if index % self.world_size == self.rank:
                yield sample

    def batches(self, start: DataPosition = DataPosition()) -> Iterator[AudioBatch]:
        epoch, consumed = start.epoch, start.samples
        pending: list[tuple[str, torch.Tensor]] = []
        while True:
            seen = 0
            for sample in self._epoch_samples(epoch):
                seen += 1
                if seen <= consumed:  # fast-forward without decoding
                    continue
                rng = np.random.default_rng([self.config.seed, self.rank, epoch, seen])
                pending.append((sample["__key__"], self._prepare(sample["flac"], rng)))
                if len(pending) == self.config.batch_size:
                    yield self._collate(pending, DataPosition(epoch, seen))
                    pending = []
            if seen == 0:
                raise RuntimeError(f"worker {self.rank} got no samples from {self.location.url}")
            epoch, consumed = epoch + 1, 0

    def _prepare(self, flac: bytes, rng: np.random.Generator) -> torch.Tensor:
        """FLAC bytes -> [L] float32 at the model rate, randomly cropped and augmented (spec §1)."""
        samples, rate = soundfile.read(io.BytesIO(flac), dtype="float32")
        wav = torch.from_numpy(np.ascontiguousarray(samples))
        if rate != self.sample_rate:
            wav = AF.resample(wav, rate, self.sample_rate)
        if wav.shape[0] > self.crop_samples:
            start = int(rng.integers(0, wav.shape[0] - self.crop_samples + 1))
            wav = wav[start : start + self.crop_samples]
        if rng.random() < self.config.gain_probability:
            wav = wav * float(rng.uniform(self.config.gain_low, self.config.gain_high))
        if rng.random() < self.config.noise_probability:
            noise = torch.from_numpy(rng.standard_normal(wav.shape[0]).astype(np.float32))
            wav = (wav + self.config.noise_std * noise).clamp(-1.0, 1.0)
        return wav

    def _collate(self, items: list[tuple[str, torch.Tensor]], position: DataPosition) -> AudioBatch:
        longest = max(wav.shape[0] for _, wav in items)
        length = max(self.min_samples, -(-longest // self.hop) * self.hop)  # round up to whole hops
        audio = torch.zeros(len(items), 1, length)
        mask = torch.zeros(len(items), length, dtype=torch.bool)
        for row, (_, wav) in enumerate(items):
            audio[row, 0, : wav.shape[0]] = wav
            mask[row, : wav.shape[0]] = True
        return AudioBatch(audio=audio, mask=mask, keys=[key for key, _ in items], position=position)
