"""Training audio from WebDataset shards: a share per worker, decoded, resampled, cropped, batched.

Hold-out speakers are excluded by shard (the sharder gives them shards of their own). The stream is endless
(epochs) and resumable: its position (`training.data_position`) says which shards are done and how far into the
current one the worker got, so a resume never re-reads finished shards, and every random choice is seeded from
(seed, epoch, shard, sample index), so a resumed run sees exactly the samples an uninterrupted one would, whichever
worker reads them.

Decoding (FLAC), resampling and cropping run in a thread pool ahead of the training step (`decode_workers`):
libsndfile and torch release the GIL, so the next batch is prepared while the step runs, and the order, hence
exact resume, is unchanged.
"""

from __future__ import annotations

import io
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF

from storage.fs import Location
from storage.webdataset_io import iter_samples
from training.data_position import DataPosition, ShardCursor, WorkerShare, default_share


@dataclass(frozen=True)
class DataConfig:
    """Crop, batch, augmentation and loading settings (spec §1)."""

    batch_size: int = 4
    max_seconds: float = 15.0  # random crop of longer segments (paper and reference CLI)
    min_seconds: float = 0.5  # shorter batches are padded up to max(min_seconds, 4 hops)
    gain_probability: float = 0.3
    gain_low: float = 0.8
    gain_high: float = 1.2
    noise_probability: float = 0.2
    noise_std: float = 0.001
    seed: int = 0
    decode_workers: int = 2  # threads decoding ahead of the step; 0 decodes on the training thread
    prefetch_batches: int = 2  # batches decoded ahead (bounds memory: prefetch × batch_size clips)


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


@dataclass(frozen=True)
class _RawSample:
    key: str
    flac: bytes
    seed: tuple[int, ...]
    position: DataPosition  # after this sample


def _shard_seed(shard: str) -> int:
    return zlib.crc32(shard.encode())


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

    def share(self, epoch: int) -> WorkerShare:
        """This worker's default share of `epoch` (whole shards when there are enough, else a stride)."""
        return default_share(self.shard_paths, self.config.seed, epoch, self.rank, self.world_size)

    def _read_share(self, position: DataPosition) -> Iterator[_RawSample]:
        """Undecoded samples of the position's epoch share, from the position on; finished shards are not opened."""
        share = position.share or self.share(position.epoch)
        for ordinal in range(position.shards_done, len(share.cursors)):
            cursor = share.cursors[ordinal]
            first = max(cursor.start, position.samples_in_shard) if ordinal == position.shards_done else cursor.start
            yield from self._read_shard(position, share, ordinal, cursor, first)

    def _read_shard(
        self, start: DataPosition, share: WorkerShare, ordinal: int, cursor: ShardCursor, first: int
    ) -> Iterator[_RawSample]:
        for index, sample in enumerate(iter_samples(self.location, [cursor.shard])):
            if index < first:  # fast-forward inside the current shard without decoding
                continue
            # A shared share (fewer shards than workers) gives each worker every world_size-th sample; the
            # choice depends only on the sample's place, so it survives a resume.
            if share.shared and (index + ordinal) % self.world_size != self.rank:
                continue
            yield _RawSample(
                key=sample["__key__"],
                flac=sample["flac"],
                seed=(self.config.seed, start.epoch, _shard_seed(cursor.shard), index),
                # An explicit share (after a repartition) travels with the position until the epoch ends.
                position=DataPosition(start.epoch, ordinal, index + 1, start.share),
            )

    def _samples(self, start: DataPosition) -> Iterator[_RawSample]:
        """Every undecoded sample from `start` on, across epochs."""
        position = start
        while True:
            seen = 0
            for raw in self._read_share(position):
                seen += 1
                yield raw
            if seen == 0 and position == DataPosition(position.epoch):
                raise RuntimeError(f"worker {self.rank} got no samples from {self.location.url}")
            position = DataPosition(position.epoch + 1)

    def batches(self, start: DataPosition = DataPosition()) -> Iterator[AudioBatch]:
        """Endless batches from `start`; decoding runs `prefetch_batches` ahead in `decode_workers` threads."""
        raw = self._samples(start)
        if self.config.decode_workers == 0:
            yield from self._collate_stream((s.key, self._prepare(s.flac, s.seed), s.position) for s in raw)
            return
        window = self.config.batch_size * max(1, self.config.prefetch_batches)
        with ThreadPoolExecutor(self.config.decode_workers, thread_name_prefix="speechtok-decode") as pool:
            pending: deque[tuple[str, Future[torch.Tensor], DataPosition]] = deque()

            def prepared() -> Iterator[tuple[str, torch.Tensor, DataPosition]]:
                for sample in raw:
                    pending.append((sample.key, pool.submit(self._prepare, sample.flac, sample.seed), sample.position))
                    if len(pending) >= window:
                        key, future, position = pending.popleft()
                        yield key, future.result(), position

            try:
                yield from self._collate_stream(prepared())
            finally:
                for _, future, _ in pending:
                    future.cancel()

    def _collate_stream(self, items: Iterator[tuple[str, torch.Tensor, DataPosition]]) -> Iterator[AudioBatch]:
        batch: list[tuple[str, torch.Tensor]] = []
        for key, wav, position in items:
            batch.append((key, wav))
            if len(batch) == self.config.batch_size:
                yield self._collate(batch, position)
                batch = []

    def _prepare(self, flac: bytes, seed: tuple[int, ...]) -> torch.Tensor:
        """FLAC bytes -> [L] float32 at the model rate, randomly cropped and augmented (spec §1)."""
        rng = np.random.default_rng(list(seed))
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
