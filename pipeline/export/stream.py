"""Write one shard's tokens in output order, streaming from a bounded cache of decoded source row groups.

The shard's utterances (in book order) are cut into *visits*: runs of consecutive utterances that live in the same
source row group. Each visit is assembled in a reused staging buffer (specials placed with one vectorised store,
each utterance one slice copy) and appended to the output file, so the file is written sequentially and no
shard-sized buffer is ever touched (page faults on fresh memory cost more than the copy itself).

Memory: at most `config.cache_row_groups` decoded row groups (a 4096-row group of 16 s rows is ~6 MB) plus the staging
buffer. When the cache is full, the row group needed furthest in the future is evicted (Belady's rule: the
visit order is known in advance), so a source whose books are scattered over many files is re-read rather than
held; a group is dropped as soon as no later visit needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from pipeline.export.config import ExportConfig
from pipeline.export.source import TokenSource
from storage.parquet_io import open_parquet

_NEVER = np.iinfo(np.int64).max
_STAGE_TOKENS = 1 << 21  # tokens gathered before one write (4 MiB)


@dataclass
class _Group:
    values: np.ndarray  # [tokens] uint16, the row group's tokens back to back
    bounds: np.ndarray  # [rows + 1] offsets of each row's tokens in `values`


def write_tokens(
    handle: BinaryIO,
    source: TokenSource,
    rows: pa.Table,
    config: ExportConfig,
    advance: Callable[[int], None],
) -> int:
    """Append the shard `rows` (output order, with `_file`, `_row`, `length`, `first`, `last`) with their specials
    to `handle`; returns the tokens written."""
    n = rows.num_rows
    if not n:
        return 0
    file_of = rows.column("_file").to_numpy()
    row_of = rows.column("_row").to_numpy()
    length = rows.column("length").to_numpy()
    first = rows.column("first").to_numpy(zero_copy_only=False)
    last = rows.column("last").to_numpy(zero_copy_only=False)
    group_of = np.zeros(n, dtype=np.int64)
    for f in np.unique(file_of):
        mine = file_of == f
        group_of[mine] = np.searchsorted(source.files[int(f)].row_group_starts, row_of[mine], side="right") - 1
    key = file_of.astype(np.int64) << 32 | group_of  # one id per (file, row group)
    visit_start = np.flatnonzero(np.diff(key, prepend=-1))
    visit_stop = np.append(visit_start[1:], n)
    next_use = _next_use(key[visit_start])

    specials = config.specials
    prefix = np.where(first, specials.bos is not None, specials.sep is not None).astype(np.int64)
    suffix = (last & (specials.eos is not None)).astype(np.int64)
    units = prefix + length + suffix
    largest_visit = int(np.add.reduceat(units, visit_start).max())
    stage = np.empty(max(largest_visit, min(int(units.sum()), _STAGE_TOKENS)), dtype="<u2")
    filled = 0  # tokens staged, not yet written
    cache: dict[int, _Group] = {}
    written = 0
    for v, (a, b) in enumerate(zip(visit_start.tolist(), visit_stop.tolist(), strict=True)):
        k = int(key[a])
        group = cache.get(k) or _load(source, int(file_of[a]), int(group_of[a]))
        cache[k] = group
        size = int(units[a:b].sum())
        if filled + size > stage.size:
            handle.write(stage[:filled].data)
            filled = 0
        local = row_of[a:b] - source.files[int(file_of[a])].row_group_starts[group_of[a]]
        _check_lengths(source, int(file_of[a]), rows, a, group.bounds[local + 1] - group.bounds[local], length[a:b])
        _assemble(stage[filled : filled + size], group, local, length[a:b], first[a:b], last[a:b], config)
        filled += size
        written += size
        advance(size)
        if next_use[v] == _NEVER:
            del cache[k]
        elif len(cache) > config.cache_row_groups:
            del cache[max(cache, key=lambda c: _upcoming(c, key, visit_start, v))]
    handle.write(stage[:filled].data)
    return written


def _assemble(
    out: np.ndarray,
    group: _Group,
    local: np.ndarray,
    length: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    config: ExportConfig,
) -> None:
    """Write one visit's utterances (rows `local` of `group`) with their specials into `out` ([visit tokens]).

    Consecutive source rows (the usual case: a file is sorted by utterance id, i.e. source order) are one slice
    with the specials inserted by `np.insert`; otherwise one slice copy per utterance.
    """
    specials = config.specials
    before = np.where(first, -1 if specials.bos is None else specials.bos, -1 if specials.sep is None else specials.sep)
    after = np.where(last & (specials.eos is not None), -1 if specials.eos is None else specials.eos, -1)
    starts = group.bounds[local] - group.bounds[local[0]]  # [U] utterance starts in the slice
    if np.all(np.diff(local) == 1):
        content = group.values[group.bounds[local[0]] : group.bounds[local[-1] + 1]]
        # Inserted before index `at`; at equal indices an eos (after row i) precedes the next bos/sep (row i + 1).
        at = np.concatenate([(starts + length)[after >= 0], starts[before >= 0]])
        ids = np.concatenate([after[after >= 0], before[before >= 0]])
        kind = np.concatenate([np.zeros(int((after >= 0).sum())), np.ones(int((before >= 0).sum()))])
        order = np.lexsort((kind, at))
        out[:] = np.insert(content, at[order], ids[order].astype(np.uint16))
        return
    units = (before >= 0) + length + (after >= 0)
    place = np.zeros(local.size, dtype=np.int64)
    np.cumsum(units[:-1], out=place[1:])
    content_at = place + (before >= 0)
    out[content_at[before >= 0] - 1] = before[before >= 0]
    out[(content_at + length)[after >= 0]] = after[after >= 0]
    for src, dst, count in zip(group.bounds[local].tolist(), content_at.tolist(), length.tolist(), strict=True):
        out[dst : dst + count] = group.values[src : src + count]  # one memcpy per utterance


def _next_use(visit_keys: np.ndarray) -> np.ndarray:
    """[V] index of the next visit with the same key, or _NEVER."""
    order = np.argsort(visit_keys, kind="stable")
    following = np.full(visit_keys.size, _NEVER, dtype=np.int64)
    same = visit_keys[order[1:]] == visit_keys[order[:-1]]
    following[order[:-1][same]] = order[1:][same]
    return following


def _upcoming(k: int, key: np.ndarray, visit_start: np.ndarray, v: int) -> int:
    """The next visit after `v` that needs row group `k` (for eviction; only runs when the cache is full)."""
    later = np.flatnonzero(key[visit_start[v + 1 :]] == k)
    return int(later[0]) if later.size else _NEVER


def _load(source: TokenSource, file: int, group: int) -> _Group:
    path = source.files[file].path
    with open_parquet(source.location, path) as parquet:
        column = parquet.read_row_group(group, columns=["tokens"]).column(0).combine_chunks()
    where = f"{source.location.url_of(path)} row group {group}"
    if column.null_count:
        raise ValueError(f"{where}: {column.null_count} rows have no tokens (null); re-tokenize that shard")
    values = column.values.to_numpy()
    if values.size and int(values.max()) >= source.vocab_size:
        raise ValueError(
            f"{where}: token id {int(values.max())} >= vocabulary size {source.vocab_size} of "
            f"model_version={source.model_version} (it would read as a special id)"
        )
    return _Group(values=values, bounds=column.offsets.to_numpy())


def _check_lengths(
    source: TokenSource, file: int, rows: pa.Table, first_row: int, stored: np.ndarray, expected: np.ndarray
) -> None:
    bad = np.flatnonzero(stored != expected)
    if bad.size:
        utterance = rows.column("utterance_id")[first_row + int(bad[0])].as_py()
        raise ValueError(
            f"{source.location.url_of(source.files[file].path)}: utterance {utterance} holds {stored[bad[0]]} tokens, "
            f"n_frames × tokens_per_frame says {expected[bad[0]]}; re-tokenize that shard"
        )
