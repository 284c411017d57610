"""Files a user asks for by name (`-o clip.wav`, `--histogram tokens.png`), local or `s3://`, written atomically."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np
import soundfile

from storage.fs import Location, open_location
from storage.settings import S3Settings


@dataclass(frozen=True)
class FileTarget:
    """One output file: the directory's `Location` and the file name in it."""

    location: Location
    name: str

    @property
    def url(self) -> str:
        return self.location.url_of(self.name)

    def write_bytes(self, data: bytes) -> None:
        self.location.makedirs()
        self.location.write_bytes_atomic(data, self.name)


def open_file_target(url: str | os.PathLike[str], s3: S3Settings | None = None) -> FileTarget:
    """Split a file URL (`out/clip.wav`, `s3://bucket/x/clip.wav`) into its directory location and name."""
    text = os.fspath(url).rstrip("/")
    directory, _, name = text.rpartition("/")
    if not name or name in (".", ".."):
        raise ValueError(f"{url!r} does not name a file; pass a path such as out/clip.wav")
    if not directory:
        directory = "."
    elif directory == "s3:/":  # `s3://name` is a bucket, not a file in one
        raise ValueError(f"{url!r} names a bucket, not a file; pass s3://bucket/path/file")
    return FileTarget(open_location(directory, s3), name)


def write_wav(target: FileTarget, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono audio [L] as a 32-bit float WAV at `sample_rate` (float keeps the decoder's samples exactly)."""
    buffer = io.BytesIO()
    soundfile.write(buffer, np.asarray(audio, dtype=np.float32), sample_rate, format="WAV", subtype="FLOAT")
    target.write_bytes(buffer.getvalue())
