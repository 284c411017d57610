"""`meta.json` of an export: what the token files hold and where they came from (format versioned, STYLE 8).

Deterministic (no timestamps or code version; those go to MLflow), so a resumed export rewrites it byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pyarrow.compute as pc

from pipeline.export.config import ExportConfig, ExportFormat
from pipeline.export.flat import DOCS_SUFFIX
from pipeline.export.plan import SplitPlan
from pipeline.export.source import TokenSource
from pipeline.tokenize.manifest import MANIFEST_FILE
from storage.fs import Location, open_location
from storage.settings import S3Settings

META_FILE = "meta.json"
META_FORMAT = "speechtok-llm-export"
META_FORMAT_VERSION = 1


def shard_files(config: ExportConfig, name: str) -> tuple[str, str]:
    """The (tokens, index) file names of one output shard."""
    return f"{name}.bin", f"{name}.idx" if config.format is ExportFormat.megatron else f"{name}{DOCS_SUFFIX}"


def build_meta(source: TokenSource, config: ExportConfig, plans: list[SplitPlan]) -> dict[str, Any]:
    specials = config.specials.used()
    splits: dict[str, Any] = {}
    for plan in plans:
        rows = plan.rows
        seconds = pc.sum(pc.subtract(rows.column("end_s"), rows.column("start_s"))).as_py() or 0.0
        books = pc.binary_join_element_wise(rows.column("speaker"), rows.column("book_id"), "/")
        splits[plan.name] = {
            "utterances": rows.num_rows,
            "documents": plan.documents,
            "speakers": len(pc.unique(rows.column("speaker"))),
            "books": len(pc.unique(books)),
            "audio_seconds": round(seconds, 6),
            "content_tokens": plan.content_tokens,
            "special_tokens": plan.tokens - plan.content_tokens,
            "tokens": plan.tokens,
            "shards": [
                {
                    "name": s.name,
                    "files": list(shard_files(config, s.name)),
                    "tokens": s.tokens,
                    "documents": s.documents,
                }
                for s in plan.shards
            ],
        }
    return {
        "format": META_FORMAT,
        "format_version": META_FORMAT_VERSION,
        "layout": config.format.value,
        "dtype": "uint16",
        "byte_order": "little",
        "document": config.document.value,
        "order": config.order.value,
        "vocab_size": source.vocab_size,
        "special_ids": specials,
        "token_space": max([source.vocab_size - 1, *specials.values()]) + 1,
        "tokens_per_frame": source.tokens_per_frame,
        "frame_rate": source.frame_rate,
        "model": {"name": source.model_name, "version": source.model_version, "uri": source.resolved_model_uri},
        "source": {"token_table": source.url, "manifest_sha256": source.manifest_sha256},
        "shard_tokens": config.shard_tokens,
        "index": "index.parquet",
        "splits": splits,
    }


def write_meta(out: Location, meta: dict[str, Any]) -> None:
    out.write_bytes_atomic(json.dumps(meta, indent=2, sort_keys=False).encode() + b"\n", META_FILE)


def read_meta(out: Location) -> dict[str, Any]:
    """An export's meta.json; refuses a missing file or unknown format by name."""
    if not out.exists(META_FILE):
        raise FileNotFoundError(f"{out.url_of(META_FILE)} not found: is {out.url} a `speechtok export-llm` output?")
    meta: dict[str, Any] = json.loads(out.read_bytes(META_FILE))
    if meta.get("format") != META_FORMAT or meta.get("format_version") != META_FORMAT_VERSION:
        raise ValueError(
            f"{out.url_of(META_FILE)} has format {meta.get('format')!r} version {meta.get('format_version')!r}; "
            f"this speechtok reads {META_FORMAT!r} version {META_FORMAT_VERSION}"
        )
    return meta


@dataclass(frozen=True)
class ExportStatus:
    """An export as `speechtok stats` lists it: what it holds and whether its token table changed since."""

    url: str
    layout: str
    document: str
    model_version: str
    tokens: dict[str, int]  # per split, specials included
    shards: int
    current: bool | None  # manifest digest equals the table's now; None when the table has no such version


def export_status(export_url: str, table_url: str, s3: S3Settings | None = None) -> ExportStatus:
    """Read an export's meta.json and compare its source manifest digest with the table's `_manifest.json`."""
    out = open_location(export_url, s3)
    meta = read_meta(out)
    version = str(meta["model"]["version"])
    table = open_location(table_url, s3)
    manifest = (f"model_version={version}", MANIFEST_FILE)
    current = None
    if table.exists(*manifest):
        current = hashlib.sha256(table.read_bytes(*manifest)).hexdigest() == meta["source"]["manifest_sha256"]
    return ExportStatus(
        url=out.url,
        layout=meta["layout"],
        document=meta["document"],
        model_version=version,
        tokens={name: int(split["tokens"]) for name, split in meta["splits"].items()},
        shards=sum(len(split["shards"]) for split in meta["splits"].values()),
        current=current,
    )
