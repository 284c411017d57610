"""CPU side of the Ray Data pipeline: read one shard and decode its samples to model-rate float32 audio.

`read_shard` is the `flat_map` UDF: one input row per shard, one output row per sample. A shard that cannot be
read (broken tar, undecodable FLAC, fewer samples than the manifest lists) ends with an *error row* naming the
reason, so the driver records the shard as rejected and the other shards carry on. A transient storage error
(a reset connection, a timeout, an S3 5xx) is not damage: the read is retried from the sample it reached, and only
if the store stays unreachable does the task fail (and with it the run, which a re-run resumes) (issue 10). Audio
travels as raw float32 bytes: a plain Arrow binary column, whatever the clip lengths.
"""

from __future__ import annotations

import io
import itertools
import logging
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile
import torch
import torchaudio.functional as AF

from storage.fs import is_transient_storage_error, open_location
from storage.settings import S3Settings
from storage.webdataset_io import iter_samples

logger = logging.getLogger(__name__)

# What a damaged shard raises: tarfile for broken archives, soundfile (a RuntimeError) for broken FLAC,
# ValueError/KeyError for samples without audio, EOFError for truncated streams, and the OSErrors that are not
# transient (a missing or unreadable file).
SHARD_READ_ERRORS = (tarfile.TarError, RuntimeError, ValueError, KeyError, OSError, EOFError)
READ_ATTEMPTS = 4  # the first read and three retries, waiting 1, 2 and 4 s: rides out a brief outage
_RETRY_WAIT_S = 1.0


@dataclass(frozen=True)
class ShardTask:
    """One input row of the pipeline: a shard, where it is and how many samples the manifest lists."""

    shard: str
    path: str
    expected: int

    def as_row(self) -> dict[str, Any]:
        return {"shard": self.shard, "path": self.path, "expected": self.expected}


def decode_sample(sample: dict[str, Any], target_rate: int) -> np.ndarray:
    """FLAC bytes of one WebDataset sample → mono float32 audio at `target_rate`: [L_native] -> [L_target].

    Resampling uses torchaudio's default sinc resampler, the same call as `Codec.encode` (spec §1), so tokens
    equal those of `Codec.encode(native_audio, native_rate)`.
    """
    key = sample.get("__key__", "?")
    if "flac" not in sample:
        raise KeyError(f"sample {key} has no .flac member (members: {sorted(k for k in sample if k[0] != '_')})")
    try:
        audio, rate = soundfile.read(io.BytesIO(sample["flac"]), dtype="float32", always_2d=True)
    except soundfile.LibsndfileError as error:
        raise ValueError(f"{key}.flac cannot be decoded: {error}") from error
    mono = torch.from_numpy(audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0])  # [L, C] -> [L]
    if rate != target_rate:
        mono = AF.resample(mono, int(rate), target_rate)
    return np.ascontiguousarray(mono.numpy(), dtype=np.float32)


def error_row(shard: str, reason: str) -> dict[str, Any]:
    """The row that tells the driver a shard failed (empty key and audio)."""
    return {"key": "", "shard": shard, "audio": b"", "error": reason}


def read_shard(row: dict[str, Any], *, shards_url: str, s3: S3Settings | None, target_rate: int) -> Iterator[dict]:
    """flat_map UDF: a `ShardTask` row → one `{key, shard, audio (float32 bytes), error: ""}` row per sample,
    or, when the shard is damaged, the rows decoded so far followed by one error row."""
    shard, path, expected = str(row["shard"]), str(row["path"]), int(row["expected"])
    location = open_location(shards_url, s3)
    count = 0
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            # A retry re-opens the shard and skips the samples already emitted, so no row is duplicated.
            for sample in itertools.islice(iter_samples(location, [path]), count, None):
                audio = decode_sample(sample, target_rate)
                count += 1
                yield {"key": sample["__key__"], "shard": shard, "audio": audio.tobytes(), "error": ""}
            break
        except Exception as error:  # sorted below: transient (retry), damage (reject), anything else (a bug: raise)
            if not is_transient_storage_error(error):
                if not isinstance(error, SHARD_READ_ERRORS):
                    raise
                yield error_row(shard, f"unreadable shard {location.url_of(path)}: {type(error).__name__}: {error}")
                return
            if attempt == READ_ATTEMPTS:
                raise  # the store, not the shard, is the problem: fail the task rather than reject good data
            wait = _RETRY_WAIT_S * 2 ** (attempt - 1)
            url = location.url_of(path)
            logger.warning("reading %s: %r; retrying in %.0f s from sample %d", url, error, wait, count)
            time.sleep(wait)
    if count != expected:
        yield error_row(
            shard, f"{location.url_of(path)} holds {count} samples but manifest/segments.parquet lists {expected}"
        )
