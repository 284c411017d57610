"""One way to reach a location, local or `s3://`: fsspec filesystems, existence checks, atomic publish.

Every other module goes through here (STYLE: only `storage/` opens remote files or talks to S3).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import fsspec
import pyarrow.fs
from fsspec.implementations.local import LocalFileSystem

from storage.settings import S3Settings


class StorageUnreachableError(RuntimeError):
    """The location cannot be reached (bad endpoint, credentials or bucket); raised before any work starts."""


# Fail the same way on every attempt: retrying them only delays the real error.
_PERMANENT_OS_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level error types of the S3 stack (botocore, aiohttp), which are not all `OSError`s."""
    from aiohttp import ClientConnectionError, ClientPayloadError
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import ReadTimeoutError

    return (BotoConnectionError, ReadTimeoutError, ClientConnectionError, ClientPayloadError)


def is_transient_storage_error(error: BaseException) -> bool:
    """A network or service hiccup worth retrying (reset connection, timeout, throttling, 5xx), as opposed to a
    missing file, denied access or damaged data, which fail the same way again (issue 10)."""
    if isinstance(error, _PERMANENT_OS_ERRORS):
        return False
    return isinstance(error, (OSError, TimeoutError, *_transport_errors()))


@dataclass(frozen=True)
class Location:
    """A filesystem plus a root path on it. `url` is what the user typed (used in messages)."""

    url: str
    fs: fsspec.AbstractFileSystem
    root: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def path(self, *parts: str) -> str:
        """Join `parts` under the root with '/' (fsspec paths are always '/'-separated)."""
        return "/".join([self.root.rstrip("/"), *(p.strip("/") for p in parts if p)])

    def url_of(self, *parts: str) -> str:
        """A full URL for `parts`, for messages and manifests (`s3://bucket/...` or a local path)."""
        path = self.path(*parts)
        return path if self.is_local else f"s3://{path}"

    def relative(self, path: str) -> str:
        """`path` relative to the root (for manifests that must not depend on where the corpus is mounted)."""
        root = self.root.rstrip("/") + "/"
        return path[len(root) :] if path.startswith(root) else path

    def exists(self, *parts: str) -> bool:
        return bool(self.fs.exists(self.path(*parts)))

    def open(self, *parts: str, mode: str = "rb") -> IO[Any]:
        return self.fs.open(self.path(*parts), mode)

    def read_bytes(self, *parts: str) -> bytes:
        with self.open(*parts, mode="rb") as handle:
            return handle.read()

    def sha256(self, *parts: str) -> str:
        """Hex SHA-256 of a file, streamed in 1 MiB blocks."""
        digest = hashlib.sha256()
        with self.open(*parts, mode="rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def write_bytes_atomic(self, data: bytes, *parts: str) -> None:
        """Write `data` so that readers see either nothing or the whole file."""
        with tempfile.NamedTemporaryFile(delete=False, suffix=".part") as tmp:
            tmp.write(data)
        publish_file(Path(tmp.name), self, *parts)

    def size(self, *parts: str) -> int:
        return int(self.fs.size(self.path(*parts)))

    def remove(self, *parts: str) -> None:
        """Delete one file (no error when it is already gone)."""
        if self.exists(*parts):
            self.fs.rm(self.path(*parts))

    def names(self, *parts: str) -> list[str]:
        """Names of the entries directly under `parts` (empty when it does not exist), sorted."""
        base = self.path(*parts)
        if not self.fs.exists(base):
            return []
        return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in self.fs.ls(base, detail=False))

    def makedirs(self, *parts: str) -> None:
        if self.is_local:
            self.fs.makedirs(self.path(*parts), exist_ok=True)
        # S3 has no directories: nothing to create.


def s3_filesystem(s3: S3Settings | None = None) -> fsspec.AbstractFileSystem:
    """The s3fs filesystem of `s3` (AWS defaults filled in by botocore); every S3 access goes through one."""
    fs = fsspec.filesystem("s3", **(s3 or S3Settings()).storage_options())
    # Don't let a stale listing from a previous run hide files written since.
    fs.invalidate_cache()
    return fs


def arrow_filesystem(location: Location) -> pyarrow.fs.FileSystem:
    """A pyarrow filesystem over `location` (what Ray Train's `RunConfig(storage_filesystem=...)` takes).

    S3 goes through the same s3fs filesystem as everything else (`PyFileSystem(FSSpecHandler(...))`), so it
    honours the same settings and AWS variables; pyarrow's own S3 client would ignore `AWS_ENDPOINT_URL` and
    mixes credential sources (issue 10). It pickles: a Ray worker rebuilds the s3fs filesystem from the same
    options, resolving whatever is not set explicitly from its own environment.
    """
    if location.is_local:
        return pyarrow.fs.LocalFileSystem()
    return pyarrow.fs.PyFileSystem(pyarrow.fs.FSSpecHandler(location.fs))


def open_location(url: str | os.PathLike[str], s3: S3Settings | None = None) -> Location:
    """Resolve a local path or `s3://bucket/prefix` into a `Location` (no I/O yet)."""
    text = os.fspath(url)
    if text.startswith("s3://"):
        return Location(url=text, fs=s3_filesystem(s3), root=text[len("s3://") :].rstrip("/"))
    if "://" in text and not text.startswith("file://"):
        raise ValueError(f"unsupported location {text!r}: use a local path or an s3://bucket/prefix URL")
    local = Path(text.removeprefix("file://")).expanduser().resolve()
    return Location(url=text, fs=fsspec.filesystem("file"), root=local.as_posix())


def check_reachable(location: Location, *, must_exist: bool) -> None:
    """Fail fast, naming the URL, when a location cannot be used.

    For S3 this makes one cheap request (bucket listing) bounded by the connect timeout and retry count in
    `S3Settings`, so a wrong endpoint or missing bucket is reported in seconds, not after a long retry loop.
    """
    try:
        if location.is_local:
            if must_exist and not Path(location.root).exists():
                raise StorageUnreachableError(f"{location.url}: no such directory")
            return
        bucket = location.root.split("/", 1)[0]
        # `ls` raises on connection/credential/bucket errors, unlike `exists`, which maps them all to False.
        location.fs.ls(bucket, refresh=True)
        if must_exist and not location.fs.exists(location.root):
            raise StorageUnreachableError(f"{location.url}: prefix not found")
    except StorageUnreachableError:
        raise
    except Exception as error:  # botocore/aiohttp raise a zoo of types; all mean "cannot use this URL"
        endpoint = getattr(location.fs, "client_kwargs", {}).get("endpoint_url") or _environment_endpoint()
        raise StorageUnreachableError(
            f"cannot reach {location.url} (endpoint {endpoint}): {type(error).__name__}: {error}. "
            "Check --s3-endpoint / AWS_ENDPOINT_URL, the AWS credentials and the bucket name."
        ) from error


def _environment_endpoint() -> str:
    """The endpoint botocore takes from the environment, for messages."""
    return S3Settings().endpoint() or "AWS default endpoint"


def publish_file(local_file: Path, location: Location, *parts: str) -> None:
    """Move a finished local file to `location/parts` atomically.

    Local: `os.replace` within the destination directory (atomic on POSIX). S3: one upload of the complete
    file (a PUT or multipart upload only becomes visible when complete), then the temp file is removed.
    """
    destination = location.path(*parts)
    try:
        if location.is_local:
            Path(destination).parent.mkdir(parents=True, exist_ok=True)
            staging = Path(destination).with_name(f".{Path(destination).name}.{os.getpid()}.tmp")
            shutil.move(str(local_file), staging)  # may cross devices: copy to the same dir first
            os.replace(staging, destination)
        else:
            location.fs.put_file(str(local_file), destination)
    finally:
        local_file.unlink(missing_ok=True)


@contextmanager
def local_scratch(prefix: str = "speechtok-"):  # type: ignore[no-untyped-def]
    """A scratch directory removed afterwards, used to build files before publishing them."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
