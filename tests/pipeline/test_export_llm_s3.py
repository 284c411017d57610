"""`export_llm` from and to `s3://` (moto's S3 server on loopback) gives the same files as a local export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.export import ExportConfig, plan_export, run_export
from storage.fs import open_location
from storage.settings import S3Settings
from token_tables import write_book_table

pytestmark = pytest.mark.integration


def test_s3_export_equals_local_and_resumes(s3_endpoint: str, tmp_path: Path) -> None:
    local = write_book_table(tmp_path / "tokens", seed=5)
    s3 = S3Settings(endpoint_url=s3_endpoint)
    remote = open_location("s3://speechtok/export-test/tokens", s3)
    for path in sorted(local.rglob("*")):
        if path.is_file():
            remote.fs.put_file(str(path), remote.path(path.relative_to(local).as_posix()))
    config = ExportConfig(shard_tokens=2500)
    run_export(plan_export(str(local), config), str(tmp_path / "local"))
    out_url = "s3://speechtok/export-test/out"
    summary = run_export(plan_export(remote.url, config, s3=s3), out_url, s3)
    assert summary.shards_written == len(summary.plan.shards) > 2
    out = open_location(out_url, s3)
    names = sorted(p.name for p in (tmp_path / "local").iterdir() if p.is_file())
    assert out.names() == sorted([*names, "_markers"])
    for name in names:
        if name != "meta.json":  # it names the source URL
            assert out.read_bytes(name) == (tmp_path / "local" / name).read_bytes(), name
    remote_meta = json.loads(out.read_bytes("meta.json"))
    local_meta = json.loads((tmp_path / "local" / "meta.json").read_text())
    assert remote_meta["splits"] == local_meta["splits"] and remote_meta["source"]["token_table"].startswith("s3://")
    again = run_export(plan_export(remote.url, config, s3=s3), out_url, s3)
    assert again.shards_written == 0 and again.shards_reused == len(summary.plan.shards)
