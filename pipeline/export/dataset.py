"""A `torch.utils.data.Dataset` of fixed-length windows over an export's memory-mapped token files.

Window `i` is `seq_len` consecutive tokens of one shard file, starting on the first token of a frame (never on a
special id, never inside a frame); `seq_len` must be a whole number of frames. Windows do not overlap: each starts
at the first frame boundary at or after the previous window's end. With `within_documents=True` a window also
ends inside the document it starts in (windows never mix two books or utterances); otherwise it may run on into
the next document, taking its `eos`/`bos` in between.

Special ids and frame phase: bos/sep/eos are single tokens between frames. A window starts frame-aligned; if it
crosses a `sep` (book documents) or a document edge, the frames after it sit one or two tokens later. For windows
in which every `tokens_per_frame` block is a frame, export with `--document utterance` and read with
`within_documents=True` (a whole-frame window can never reach the eos), or export book documents with `--sep none`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import torch
from torch.utils.data import Dataset

from pipeline.export.config import ExportFormat
from pipeline.export.flat import read_docs
from pipeline.export.index import read_index
from pipeline.export.job import local_path
from pipeline.export.megatron import read_idx
from pipeline.export.meta import read_meta
from storage.fs import open_location


@dataclass(frozen=True)
class WindowPosition:
    """Where window `i` lies: shard file prefix and token offset in its `.bin`."""

    shard: str
    start: int


class ExportWindows(Dataset[torch.Tensor]):
    """Fixed-length, frame-aligned windows of one split: item `i` is an int64 tensor [seq_len]."""

    def __init__(self, export_dir: str, split: str, seq_len: int, within_documents: bool = False) -> None:
        out = open_location(export_dir)
        meta = read_meta(out)
        self.tokens_per_frame = int(meta["tokens_per_frame"])
        if seq_len <= 0 or seq_len % self.tokens_per_frame:
            raise ValueError(
                f"seq_len {seq_len} is not a whole number of frames ({self.tokens_per_frame} tokens each, from "
                f"{out.url_of('meta.json')}); use a multiple such as {self.tokens_per_frame * 108}"
            )
        if split not in meta["splits"]:
            raise KeyError(f"{out.url} has no split {split!r}; splits: {sorted(meta['splits'])}")
        self.seq_len = seq_len
        index = read_index(out, split)
        self._bins: list[np.memmap] = []
        self._names: list[str] = []
        shards, starts = [], []
        for shard in meta["splits"][split]["shards"]:
            bin_name, index_name = shard["files"]
            bounds = _document_bounds(local_path(out, index_name), ExportFormat(meta["layout"]))
            rows = index.filter(pc.equal(index.column("shard"), shard["name"]))
            frames = _frame_starts(
                rows.column("offset").to_numpy(), rows.column("n_frames").to_numpy(), self.tokens_per_frame
            )
            limit = bounds[np.searchsorted(bounds, frames, side="right")] if within_documents else shard["tokens"]
            chosen = _non_overlapping(frames[frames + seq_len <= limit], seq_len)
            shards.append(np.full(chosen.size, len(self._bins), dtype=np.int32))
            starts.append(chosen)
            self._bins.append(np.memmap(local_path(out, bin_name), dtype="<u2", mode="r", shape=(shard["tokens"],)))
            self._names.append(shard["name"])
        self._shard = np.concatenate(shards) if shards else np.zeros(0, dtype=np.int32)
        self._start = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return int(self._start.size)

    def __getitem__(self, i: int) -> torch.Tensor:
        """Window `i`: [seq_len] int64 token ids (uint16 on disk; torch indexes embeddings with int64)."""
        start = int(self._start[i])
        window = self._bins[int(self._shard[i])][start : start + self.seq_len]
        return torch.from_numpy(window.astype(np.int64))

    def position(self, i: int) -> WindowPosition:
        """The shard and offset of window `i` (map it back to audio with `pipeline.export.index.locate`)."""
        return WindowPosition(self._names[int(self._shard[i])], int(self._start[i]))


def _document_bounds(index_path: Path, layout: ExportFormat) -> np.ndarray:
    """[documents + 1] token offsets where the documents of a shard start, then its end."""
    if layout is ExportFormat.flat:
        return read_docs(index_path)
    idx = read_idx(index_path)
    end = int(idx.token_starts[-1] + idx.lengths[-1]) if idx.lengths.size else 0
    return np.append(idx.token_starts, end)


def _frame_starts(offsets: np.ndarray, n_frames: np.ndarray, tokens_per_frame: int) -> np.ndarray:
    """Every frame's first token in the shard, ascending: [U] utterance offsets, [U] frame counts -> [F]."""
    n_frames = n_frames.astype(np.int64)
    total = int(n_frames.sum())
    first_frame = np.repeat(np.cumsum(n_frames) - n_frames, n_frames)  # [F] frame number of its utterance's first
    frame_in_utterance = np.arange(total, dtype=np.int64) - first_frame
    return np.repeat(offsets.astype(np.int64), n_frames) + frame_in_utterance * tokens_per_frame


def _non_overlapping(candidates: np.ndarray, seq_len: int) -> np.ndarray:
    """Greedy: the first candidate, then the first at or after each chosen start + seq_len ([C] sorted -> [W])."""
    chosen = []
    i = 0
    while i < candidates.size:  # one step per window, not per frame
        chosen.append(int(candidates[i]))
        i = int(np.searchsorted(candidates, candidates[i] + seq_len, side="left"))
    return np.asarray(chosen, dtype=np.int64)
