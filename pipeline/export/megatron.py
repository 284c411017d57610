"""Megatron-LM's indexed dataset layout: `{prefix}.bin` (the tokens) + `{prefix}.idx` (where each sequence is).

Written against the format that `megatron.core.datasets.indexed_dataset` (`_IndexWriter` / `_IndexReader`,
NVIDIA/Megatron-LM) reads, all little-endian:

    magic    b"MMIDIDX\\x00\\x00"                    9 bytes
    version  uint64 = 1
    dtype    uint8, the token dtype code (uint16 = 8)
    S        uint64, sequence count
    D        uint64, document count = documents + 1
    lengths  int32[S]   tokens per sequence
    pointers int64[S]   byte offset of each sequence in .bin
    docs     int64[D]   sequence index where each document starts, then the total (0, ..., S)

speechtok writes one sequence per document (a book or an utterance, specials included), so `docs` is
0..S: Megatron's GPTDataset shuffles sequences, and a book must stay one contiguous piece.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
UINT16_CODE = 8  # megatron.core.datasets.indexed_dataset.DType.uint16
_HEADER = struct.Struct("<9sQBQQ")


def write_idx(path: Path, sequence_lengths: np.ndarray) -> None:
    """Write the `.idx` of a `.bin` holding `sequence_lengths` [S] uint16 sequences back to back, one per document."""
    lengths = np.asarray(sequence_lengths, dtype=np.int64)
    if lengths.size and lengths.max() > np.iinfo(np.int32).max:
        raise ValueError(f"{path}: a document of {lengths.max()} tokens exceeds Megatron's int32 sequence length")
    pointers = np.zeros(lengths.size, dtype="<i8")
    np.cumsum(lengths[:-1] * np.dtype("<u2").itemsize, out=pointers[1:])
    documents = np.arange(lengths.size + 1, dtype="<i8")
    with path.open("wb") as handle:
        handle.write(_HEADER.pack(MAGIC, VERSION, UINT16_CODE, lengths.size, documents.size))
        handle.write(lengths.astype("<i4").tobytes())
        handle.write(pointers.tobytes())
        handle.write(documents.tobytes())


@dataclass(frozen=True)
class IdxFile:
    """The parsed `.idx`: per sequence its length in tokens and byte pointer; `documents` as stored."""

    lengths: np.ndarray  # [S] int32
    pointers: np.ndarray  # [S] int64, bytes
    documents: np.ndarray  # [D] int64

    @property
    def token_starts(self) -> np.ndarray:
        """[S] token offset of each sequence in the `.bin` (pointers are in bytes)."""
        return self.pointers // np.dtype("<u2").itemsize


def read_idx(path: Path) -> IdxFile:
    """Parse an `.idx` (uint16 tokens only), refusing other magic, versions and dtypes by name."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    if data.size < _HEADER.size:
        raise ValueError(f"{path} is too short for a Megatron index ({data.size} bytes)")
    magic, version, code, sequences, documents = _HEADER.unpack(bytes(data[: _HEADER.size]))
    if magic != MAGIC or version != VERSION:
        raise ValueError(f"{path}: not a Megatron MMIDIDX version 1 index (magic {magic!r}, version {version})")
    if code != UINT16_CODE:
        raise ValueError(f"{path}: token dtype code {code}; speechtok exports uint16 (code {UINT16_CODE})")
    offset = _HEADER.size
    lengths = np.frombuffer(data, dtype="<i4", count=sequences, offset=offset)
    pointers = np.frombuffer(data, dtype="<i8", count=sequences, offset=offset + lengths.nbytes)
    docs = np.frombuffer(data, dtype="<i8", count=documents, offset=offset + lengths.nbytes + pointers.nbytes)
    return IdxFile(lengths=lengths, pointers=pointers, documents=docs)
