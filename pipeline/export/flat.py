"""nanoGPT-style layout: `{prefix}.bin`, raw little-endian uint16 tokens back to back (`np.memmap(path,
dtype=np.uint16, mode="r")` reads it, as nanoGPT's `train.bin`; shards of a split concatenate with `cat`), and
`{prefix}.docs.npy`, int64 [documents + 1]: document k spans tokens `[docs[k], docs[k + 1])`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DOCS_SUFFIX = ".docs.npy"


def write_docs(path: Path, document_lengths: np.ndarray) -> None:
    """Write the document-offset index of a `.bin` holding documents of `document_lengths` [N] tokens."""
    starts = np.zeros(len(document_lengths) + 1, dtype="<i8")
    np.cumsum(np.asarray(document_lengths, dtype=np.int64), out=starts[1:])
    with path.open("wb") as handle:
        np.save(handle, starts, allow_pickle=False)


def read_docs(path: Path) -> np.ndarray:
    """[N + 1] int64 document start offsets (the last is the token count of the `.bin`)."""
    starts = np.load(path, allow_pickle=False)
    if starts.ndim != 1 or starts.dtype != np.dtype("<i8") or (starts.size and starts[0] != 0):
        raise ValueError(f"{path} is not a speechtok document-offset index (int64 [documents + 1] from 0)")
    return starts
