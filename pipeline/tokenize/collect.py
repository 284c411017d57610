"""Driver side of the pipeline: gather encoded rows per shard until the shard is complete.

Rows of many shards arrive interleaved, in any order. Only incomplete shards are buffered (tokens are small:
~95 bytes per audio second), so driver memory stays bounded by the shards in flight, not the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.tokenize.table import EncodedRows


@dataclass(frozen=True)
class ShardOutcome:
    """A shard the stream has finished with: complete rows, or a rejection reason."""

    shard: str
    rows: EncodedRows | None = None
    reason: str = ""


@dataclass
class ShardCollector:
    """Buffers `CodecEncoder` output rows by shard; `expected` maps shard → segment count from the manifest."""

    expected: dict[str, int]
    buffers: dict[str, EncodedRows] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)
    late_rows: int = 0  # rows for shards already finished (e.g. a retried task's output); ignored

    def add_batch(self, batch: dict[str, np.ndarray]) -> list[ShardOutcome]:
        """Take one batch (numpy format) and return the shards it completed or failed."""
        outcomes: list[ShardOutcome] = []
        policies = batch.get("policy", np.full(len(batch["key"]), "", dtype=object))
        for key, shard, tokens, frames, policy, error in zip(
            batch["key"], batch["shard"], batch["tokens"], batch["n_frames"], policies, batch["error"], strict=True
        ):
            shard = str(shard)
            if shard in self.finished:
                self.late_rows += 1
                continue
            if shard not in self.expected:
                raise KeyError(f"row {key} names shard {shard!r}, which is not being tokenized in this run")
            if error:
                self.buffers.pop(shard, None)
                self.finished.add(shard)
                outcomes.append(ShardOutcome(shard, reason=str(error)))
                continue
            rows = self.buffers.setdefault(shard, EncodedRows([], [], []))
            rows.keys.append(str(key))
            rows.tokens.append(bytes(tokens))
            rows.n_frames.append(int(frames))
            if policy:
                rows.policies.add(str(policy))
            if len(rows.keys) == self.expected[shard]:
                self.finished.add(shard)
                outcomes.append(ShardOutcome(shard, rows=self.buffers.pop(shard)))
        return outcomes

    def finish(self) -> list[ShardOutcome]:
        """At the end of the stream: every shard not completed is rejected with how far it got."""
        outcomes = []
        for shard in sorted(set(self.expected) - self.finished):
            got = len(self.buffers.pop(shard, EncodedRows([], [], [])).keys)
            outcomes.append(ShardOutcome(shard, reason=f"stream ended after {got} of {self.expected[shard]} segments"))
            self.finished.add(shard)
        return outcomes
