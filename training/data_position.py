"""Where a training worker is in the corpus, and how positions move to a different number of workers.

An epoch is a seeded shuffle of the training shards. Its work is a list of `ShardCursor`s (a shard and the
sample to start at); a worker either owns a disjoint slice of that list (whole shards, the normal case) or, when
there are fewer shards than workers, all workers share the list and take every `world_size`-th sample.

A `DataPosition` records how far one worker got: whole shards done, samples consumed in the current shard, and,
after a resume on a different number of workers, the explicit list of cursors it was given. Fast-forwarding to a
position never opens a finished shard (issue 12), and `repartition` spreads the unfinished work of an epoch over
a new number of workers instead of dropping it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

# Decorrelates the epoch shuffles of different seeds (an arbitrary large prime).
_EPOCH_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class ShardCursor:
    """One shard of an epoch's work and the first sample (0-based, in shard order) still to read."""

    shard: str
    start: int = 0


@dataclass(frozen=True)
class WorkerShare:
    """The cursors a worker reads in one epoch; `shared`: every worker reads them and keeps its stride."""

    cursors: tuple[ShardCursor, ...]
    shared: bool


@dataclass(frozen=True)
class DataPosition:
    """A worker's place in its stream, saved with every checkpoint (as JSON) and restored on resume.

    `shards_done` whole cursors of this epoch's share are finished; `samples_in_shard` samples of the next one
    are consumed (an absolute index in the shard, cursor start included; in a shared share it counts every
    worker's samples). `share` is None for the default share of (epoch, rank, world size), else the explicit
    share given by `repartition`.
    """

    epoch: int = 0
    shards_done: int = 0
    samples_in_shard: int = 0
    share: WorkerShare | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DataPosition:
        """Inverse of `to_json`; also reads checkpoints of the earlier (epoch, samples) format as epoch starts."""
        share = data.get("share")
        return cls(
            epoch=int(data.get("epoch", 0)),
            shards_done=int(data.get("shards_done", 0)),
            samples_in_shard=int(data.get("samples_in_shard", 0)),
            share=None
            if share is None
            else WorkerShare(tuple(ShardCursor(**c) for c in share["cursors"]), bool(share["shared"])),
        )


def epoch_order(shards: Sequence[str], seed: int, epoch: int) -> list[str]:
    """The epoch's shard order: a shuffle seeded by (seed, epoch), the same on every worker."""
    order = sorted(shards)
    random.Random(seed * _EPOCH_SEED_STRIDE + epoch).shuffle(order)
    return order


def split_work(cursors: Sequence[ShardCursor], rank: int, world_size: int) -> WorkerShare:
    """Rank's share of `cursors`: every world_size-th cursor when there are enough, else all of them, shared."""
    if len(cursors) >= world_size:
        return WorkerShare(tuple(cursors[rank::world_size]), shared=False)
    return WorkerShare(tuple(cursors), shared=True)


def default_share(shards: Sequence[str], seed: int, epoch: int, rank: int, world_size: int) -> WorkerShare:
    return split_work([ShardCursor(s) for s in epoch_order(shards, seed, epoch)], rank, world_size)


def _remaining(position: DataPosition, share: WorkerShare) -> list[ShardCursor]:
    """The cursors `position` has not finished, the current one advanced to its next sample."""
    rest = list(share.cursors[position.shards_done :])
    if rest:
        rest[0] = ShardCursor(rest[0].shard, max(rest[0].start, position.samples_in_shard))
    return rest


def repartition(
    positions: Sequence[DataPosition], shards: Sequence[str], seed: int, new_world_size: int
) -> list[DataPosition]:
    """Positions for `new_world_size` workers that continue the epoch the old workers were in.

    The unfinished cursors of the earliest epoch any old worker is in are spread over the new workers (each
    partial shard resumes at its next sample). A shared share resumes from the slowest worker's place, so up to
    world_size − 1 samples may be seen twice; progress a worker had made into a later epoch is replayed.
    """
    if not positions:
        return [DataPosition() for _ in range(new_world_size)]
    old_world = len(positions)
    epoch = min(p.epoch for p in positions)
    remaining: dict[str, ShardCursor] = {}
    for rank, position in enumerate(positions):
        if position.epoch > epoch:
            continue  # finished its share of `epoch`
        share = position.share or default_share(shards, seed, epoch, rank, old_world)
        for cursor in _remaining(position, share):
            known = remaining.get(cursor.shard)
            # Shared shares list the same shards on every worker: keep the slowest worker's cursor.
            if known is None or cursor.start < known.start:
                remaining[cursor.shard] = cursor
    rank_in_order = {shard: i for i, shard in enumerate(epoch_order(shards, seed, epoch))}
    work = sorted(remaining.values(), key=lambda c: rank_in_order.get(c.shard, len(rank_in_order)))
    result = []
    for rank in range(new_world_size):
        share = split_work(work, rank, new_world_size)
        start = share.cursors[0].start if share.cursors else 0
        result.append(DataPosition(epoch=epoch, shards_done=0, samples_in_shard=start, share=share))
    return result
