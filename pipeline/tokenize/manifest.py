"""The table-level manifest `OUT/model_version={V}/_manifest.json`, written last by every run.

It lists every token file with its row/frame/token counts, audio seconds and SHA-256, the shards that were
rejected and why, the model (requested URI and resolved version) and the code version, so a reader can check a
table without the sharding output and tell which run produced it. Format versioned (STYLE rule 8); the leading
underscore keeps Parquet readers (DuckDB, pyarrow) from treating it as data.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from pipeline.tokenize.table import ModelInfo, file_policies, version_dir
from storage.fs import Location
from storage.parquet_io import read_table

MANIFEST_FILE = "_manifest.json"
MANIFEST_FORMAT = "speechtok-token-table"
MANIFEST_FORMAT_VERSION = 1


@dataclass(frozen=True)
class RejectedShard:
    shard: str
    path: str
    reason: str


@dataclass(frozen=True)
class FileEntry:
    """One token file: `path` relative to the model-version directory."""

    path: str
    shard: str
    split: str
    rows: int
    frames: int
    tokens: int
    audio_seconds: float
    bytes: int
    sha256: str
    encoding_policies: list[dict[str, Any]] = field(default_factory=list)  # usually one (training.encoding_policy)


def describe_file(out: Location, model: ModelInfo, relative: str, shard: str, split: str) -> FileEntry:
    """Counts and checksum of one published token file."""
    parts = (version_dir(model), relative)
    table = read_table(out, *parts, columns=["n_frames", "tokens_per_frame", "duration_s"])
    policies = file_policies(table)
    frames = int(pc.sum(table.column("n_frames")).as_py() or 0)
    tokens = int(pc.sum(pc.multiply(table.column("n_frames"), table.column("tokens_per_frame"))).as_py() or 0)
    return FileEntry(
        path=relative,
        shard=shard,
        split=split,
        rows=table.num_rows,
        frames=frames,
        tokens=tokens,
        audio_seconds=float(pc.sum(table.column("duration_s")).as_py() or 0.0),
        bytes=int(out.fs.size(out.path(*parts))),
        sha256=out.sha256(*parts),
        encoding_policies=policies,
    )


def code_version() -> str:
    """`speechtok {version}` plus the git commit when running from a checkout (`+dirty` with local edits)."""
    version = f"speechtok {metadata.version('speechtok')}"
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return version
    if commit.returncode != 0:
        return version
    return f"{version} (git {commit.stdout.strip()}{'+dirty' if dirty.stdout.strip() else ''})"


def distinct_policies(files: list[FileEntry]) -> list[dict[str, Any]]:
    """Every encoding policy any file's rows were encoded under, once each, in a stable order."""
    unique = {json.dumps(p, sort_keys=True) for f in files for p in f.encoding_policies}
    return [json.loads(p) for p in sorted(unique)]


def write_table_manifest(
    out: Location,
    model: ModelInfo,
    shards_url: str,
    files: list[FileEntry],
    rejected: list[RejectedShard],
) -> dict[str, Any]:
    """Write `_manifest.json` atomically and return its content."""
    files = sorted(files, key=lambda f: f.path)
    payload: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "source": {"shards_url": shards_url, "segments_manifest": "manifest/segments.parquet"},
        "model": {**asdict(model), "resolved_uri": model.resolved_uri},
        "totals": {
            "files": len(files),
            "rows": sum(f.rows for f in files),
            "frames": sum(f.frames for f in files),
            "tokens": sum(f.tokens for f in files),
            "audio_hours": sum(f.audio_seconds for f in files) / 3600.0,
            "rejected_shards": len(rejected),
        },
        # Distinct policies over all files: more than one means the table is not bit-comparable throughout.
        "encoding_policies": distinct_policies(files),
        "files": [asdict(f) for f in files],
        "rejected_shards": [asdict(r) for r in sorted(rejected, key=lambda r: r.shard)],
    }
    out.write_bytes_atomic(json.dumps(payload, indent=2).encode() + b"\n", version_dir(model), MANIFEST_FILE)
    return payload


def read_table_manifest(out: Location, version: str) -> dict[str, Any] | None:
    """The manifest of `model_version={version}`, or None when absent; refuses unknown formats by name."""
    parts = (f"model_version={version}", MANIFEST_FILE)
    if not out.exists(*parts):
        return None
    payload: dict[str, Any] = json.loads(out.read_bytes(*parts))
    if payload.get("format") != MANIFEST_FORMAT or payload.get("format_version") != MANIFEST_FORMAT_VERSION:
        raise ValueError(
            f"{out.url_of(*parts)} has format {payload.get('format')!r} version {payload.get('format_version')!r}; "
            f"this speechtok reads {MANIFEST_FORMAT!r} version {MANIFEST_FORMAT_VERSION} (upgrade speechtok)"
        )
    return payload
