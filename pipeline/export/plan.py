"""The export plan: which utterances go to which split, document and output shard, at which token offset.

Built from the metadata pass alone (no tokens), so every output shard's bytes are known before any is written:
a shard can then be written on its own (resumable), and its fingerprint says whether a file on disk is current.

Stream layout of one document (a book, or one utterance), specials optional:
`[bos] u1 [sep] u2 [sep] ... un [eos]`, each `u` its utterance's tokens, whole frames, frame-major.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.export.config import DocumentUnit, ExportConfig
from pipeline.export.source import TokenSource

TRAIN, VALIDATION = "train", "validation"
# Source order inside a book: chapters (source files) by path, segments by their index in the file; the
# utterance id breaks any remaining tie so the order is total and the same on every run.
BOOK_ORDER = ["speaker", "book_id", "source_path", "segment_index", "utterance_id"]


@dataclass(frozen=True)
class ShardPlan:
    """One output file pair: rows `[row_start, row_stop)` of its split's plan, `tokens` tokens in total."""

    split: str
    index: int
    row_start: int
    row_stop: int
    tokens: int
    documents: int
    fingerprint: str

    @property
    def name(self) -> str:
        return f"{self.split}-{self.index:05d}"


@dataclass(frozen=True)
class SplitPlan:
    """A split's utterances in output order with their placement (columns added to the metadata):
    `document` (split-wide), `shard`, `offset` (first content token in the shard file), `length` (tokens),
    `first`/`last` (opens/closes its document)."""

    name: str
    rows: pa.Table
    shards: list[ShardPlan]

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.shards)

    @property
    def content_tokens(self) -> int:
        return int(pc.sum(self.rows.column("length")).as_py() or 0)

    @property
    def documents(self) -> int:
        return sum(s.documents for s in self.shards)


def split_rows(metadata: pa.Table, url: str) -> dict[str, pa.Table]:
    """train = rows of non-hold-out speakers, validation = rows of hold-out speakers.

    The hold-out is a per-speaker decision of the sharding step; a speaker with rows on both sides would leak
    into train, so it is refused, naming the speaker.
    """
    holdout = metadata.column("holdout")
    held = set(pc.unique(metadata.filter(holdout).column("speaker")).to_pylist())
    kept = set(pc.unique(metadata.filter(pc.invert(holdout)).column("speaker")).to_pylist())
    mixed = sorted(held & kept)
    if mixed:
        raise ValueError(
            f"{url}: speakers {mixed[:5]} have rows with holdout true and false; the hold-out is per speaker "
            "(re-shard and re-tokenize so no hold-out speaker reaches train)"
        )
    return {TRAIN: metadata.filter(pc.invert(holdout)), VALIDATION: metadata.filter(holdout)}


def plan_split(name: str, rows: pa.Table, source: TokenSource, config: ExportConfig) -> SplitPlan:
    """Order `rows`, cut them into documents and shards and place every utterance (vectorised over rows)."""
    rows = rows.sort_by([(column, "ascending") for column in BOOK_ORDER])
    n = rows.num_rows
    length = rows.column("n_frames").to_numpy().astype(np.int64) * source.tokens_per_frame
    first = np.ones(n, dtype=bool)
    if config.document is DocumentUnit.book and n > 1:
        same_speaker = pc.equal(rows.column("speaker")[1:], rows.column("speaker")[:-1])
        same_book = pc.equal(rows.column("book_id")[1:], rows.column("book_id")[:-1])
        first[1:] = ~pc.and_(same_speaker, same_book).to_numpy(zero_copy_only=False)
    last = np.ones(n, dtype=bool)
    last[:-1] = first[1:]
    specials = config.specials
    prefix = np.where(first, specials.bos is not None, specials.sep is not None).astype(np.int64)
    suffix = (last & (specials.eos is not None)).astype(np.int64)
    units = prefix + length + suffix  # stream tokens each utterance occupies
    start = np.zeros(n, dtype=np.int64)  # split-wide stream position where each utterance's units begin
    np.cumsum(units[:-1], out=start[1:])
    document = np.cumsum(first) - 1
    # A document goes to the shard its first token falls in, so shards end on document boundaries and hold about
    # `shard_tokens` tokens; np.unique renumbers densely (a long document can leave a range with no start).
    _, shard = np.unique(start[first] // config.shard_tokens, return_inverse=True)
    shard = shard.reshape(-1)[document] if n else np.zeros(0, dtype=np.int64)
    boundaries = np.flatnonzero(np.diff(shard, prepend=-1)) if n else np.zeros(0, dtype=np.int64)
    shard_base = start[boundaries]
    offset = start + prefix - shard_base[shard]
    rows = rows.append_column("document", pa.array(document.astype(np.int64)))
    rows = rows.append_column("shard", pa.array(shard.astype(np.int32)))
    rows = rows.append_column("offset", pa.array(offset))
    rows = rows.append_column("length", pa.array(length))
    rows = rows.append_column("first", pa.array(first))
    rows = rows.append_column("last", pa.array(last))
    stops = [*boundaries[1:].tolist(), n] if n else []
    shards = []
    for index, (lo, hi) in enumerate(zip(boundaries.tolist(), stops, strict=True)):
        tokens = int(units[lo:hi].sum())
        chunk = rows.slice(lo, hi - lo)
        shards.append(
            ShardPlan(
                split=name,
                index=index,
                row_start=lo,
                row_stop=hi,
                tokens=tokens,
                documents=int(first[lo:hi].sum()),
                fingerprint=_fingerprint(name, index, chunk, tokens, source, config),
            )
        )
    return SplitPlan(name=name, rows=rows, shards=shards)


def _fingerprint(split: str, index: int, rows: pa.Table, tokens: int, source: TokenSource, config: ExportConfig) -> str:
    """SHA-256 of everything that decides a shard's bytes: layout settings, the source table version and
    manifest, and the shard's utterances with their placement."""
    digest = hashlib.sha256()
    header = {
        "layout": config.layout_fingerprint(),
        "source_manifest_sha256": source.manifest_sha256,
        "model_version": source.model_version,
        "shard": [split, index, tokens],
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    digest.update("\n".join(rows.column("utterance_id").to_pylist()).encode())
    for column in ("offset", "length", "first", "last"):
        digest.update(rows.column(column).to_numpy(zero_copy_only=False).tobytes())
    return digest.hexdigest()
