"""Check a token table against the sharding manifest: exactly one row per segment, files as the manifest says.

One shard at a time (issue 11): each token file is compared with its own shard's part of the sharding manifest
(`manifest/parts/{shard}.parquet`), so memory is bounded by the largest shard, not by the corpus. Gaps are
counted in full; at most `KEPT_EXAMPLES` keys of each kind are kept to quote.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipeline.sharding.manifest import read_shard_entries, read_shard_keys
from pipeline.tokenize.manifest import read_table_manifest
from pipeline.tokenize.table import file_policies, token_file_parts, version_partition
from storage.fs import open_location
from storage.parquet_io import list_parquet_files, read_table
from storage.settings import S3Settings

_SHOWN = 5  # keys quoted per problem in messages
KEPT_EXAMPLES = 1000  # keys kept per kind of gap (the counts are complete)


@dataclass(frozen=True)
class VerifyReport:
    """Gaps between `model_version={V}` under a token table root and `manifest/segments.parquet`."""

    table_url: str
    model_version: str
    expected_rows: int
    rows: int
    files: int
    missing: list[str] = field(default_factory=list)  # manifest keys with no row (first KEPT_EXAMPLES, sorted)
    duplicated: list[str] = field(default_factory=list)  # keys with more than one row
    unexpected: list[str] = field(default_factory=list)  # rows whose key is not in their shard's manifest part
    gap_counts: dict[str, int] = field(default_factory=dict)  # "missing"/"duplicated"/"unexpected" -> full count
    checksum_mismatches: list[str] = field(default_factory=list)  # files differing from (or absent in) _manifest.json
    rejected_shards: list[str] = field(default_factory=list)  # as recorded by the last run
    # Distinct encoding policies of the files (training.encoding_policy); more than one is a warning, not a gap:
    # every row is valid, but rows of different policies are not bit-comparable.
    encoding_policies: list[dict[str, Any]] = field(default_factory=list)
    files_without_policy: int = 0

    def warnings(self) -> list[str]:
        """Things that are not gaps but a user should know."""
        lines = []
        if len(self.encoding_policies) > 1:
            ids = ", ".join(_policy_summary(p) for p in self.encoding_policies)
            lines.append(
                f"the table mixes {len(self.encoding_policies)} encoding policies ({ids}): tokens of the same audio "
                "may differ between them; re-tokenize under one policy for bit-identical tokens"
            )
        if self.files_without_policy:
            lines.append(f"{self.files_without_policy} files record no encoding policy (written by an older speechtok)")
        return lines

    def count(self, label: str) -> int:
        """How many keys have this gap (all of them, not only the examples kept)."""
        kept = {"missing": self.missing, "duplicated": self.duplicated, "unexpected": self.unexpected}[label]
        return self.gap_counts.get(label, len(kept))

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.unexpected or self.checksum_mismatches)

    def problems(self) -> list[str]:
        """One line per kind of gap, quoting a few keys."""
        lines = []
        for label, items in (
            ("missing", self.missing),
            ("duplicated", self.duplicated),
            ("unexpected", self.unexpected),
            ("checksum mismatch", self.checksum_mismatches),
        ):
            if items:
                total = len(items) if label == "checksum mismatch" else self.count(label)
                more = f" (+{total - _SHOWN} more)" if total > _SHOWN else ""
                lines.append(f"{total} {label}: {', '.join(items[:_SHOWN])}{more}")
        return lines


def _policy_summary(policy: dict[str, Any]) -> str:
    return f"{policy.get('device_type')}/batch {policy.get('batch_chunks')}/torch {policy.get('torch_version')}"


def model_versions(table_url: str, s3: S3Settings | None = None) -> list[str]:
    """The `model_version=V` partitions under a token table root."""
    out = open_location(table_url, s3)
    if not out.fs.exists(out.root):
        return []
    names = [entry.rstrip("/").rsplit("/", 1)[-1] for entry in out.fs.ls(out.root, detail=False)]
    return sorted(n.split("=", 1)[1] for n in names if n.startswith("model_version="))


def verify_tokens(
    out_url: str, shards_url: str, model_version: str | None = None, s3: S3Settings | None = None
) -> VerifyReport:
    """Compare the rows of one model version's table with every segment of the sharding manifest.

    `model_version` may be omitted when the table root holds exactly one version.
    """
    out, shards = open_location(out_url, s3), open_location(shards_url, s3)
    if model_version is None:
        versions = model_versions(out_url, s3)
        if len(versions) != 1:
            raise ValueError(
                f"{out.url} holds model versions {versions or 'none'}; pass the one to check (--model-version V)"
            )
        model_version = versions[0]
    directory = version_partition(model_version)
    files = list_parquet_files(out, directory)
    present_files = set(files)
    entries = read_shard_entries(shards)
    expected_files = {"/".join(token_file_parts(model_version, e.split, e.shard)): e for e in entries}
    gaps = _Gaps()
    policies: set[str] = set()
    without_policy = expected_rows = rows = 0
    for path in sorted(present_files | set(expected_files)):
        entry = expected_files.get(path)
        expected = [] if entry is None else read_shard_keys(shards, entry.shard)
        expected_rows += len(expected)
        keys: list[str] = []
        if path in present_files:
            table = read_table(out, path, columns=["utterance_id"])
            keys = table.column("utterance_id").to_pylist()
            found = file_policies(table)
            policies.update(json.dumps(p, sort_keys=True) for p in found)
            without_policy += not found
        rows += len(keys)
        gaps.add(expected, keys)
    manifest = read_table_manifest(out, model_version)
    mismatches: list[str] = []
    rejected: list[str] = []
    if manifest is None:
        mismatches.append(f"{out.url_of(directory, '_manifest.json')} (missing)")
    else:
        listed = {f"{directory}/{entry['path']}": entry["sha256"] for entry in manifest["files"]}
        present = set(files)
        mismatches += [f"{p} (not in _manifest.json)" for p in sorted(present - set(listed))]
        mismatches += [f"{p} (listed, missing)" for p in sorted(set(listed) - present)]
        mismatches += [f"{p} (sha256 differs)" for p in sorted(present & set(listed)) if out.sha256(p) != listed[p]]
        rejected = [f"{r['shard']}: {r['reason']}" for r in manifest["rejected_shards"]]
    return VerifyReport(
        table_url=out.url_of(directory),
        model_version=model_version,
        expected_rows=expected_rows,
        rows=rows,
        files=len(files),
        missing=sorted(gaps.examples["missing"]),
        duplicated=sorted(gaps.examples["duplicated"]),
        unexpected=sorted(gaps.examples["unexpected"]),
        gap_counts=dict(gaps.counts),
        checksum_mismatches=mismatches,
        rejected_shards=rejected,
        encoding_policies=[json.loads(p) for p in sorted(policies)],
        files_without_policy=without_policy,
    )


class _Gaps:
    """Counts of missing, duplicated and unexpected keys over all shards, with the first examples of each."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {"missing": [], "duplicated": [], "unexpected": []}

    def add(self, expected: list[str], keys: list[str]) -> None:
        """One shard: the keys its manifest part lists and the keys its token file holds."""
        counts = Counter(keys)
        wanted = set(expected)
        found = {
            "missing": sorted(wanted - set(counts)),
            "duplicated": sorted(key for key, n in counts.items() if n > 1),
            "unexpected": sorted(set(counts) - wanted),
        }
        for label, items in found.items():
            self.counts[label] += len(items)
            room = KEPT_EXAMPLES - len(self.examples[label])
            self.examples[label].extend(items[:room])
