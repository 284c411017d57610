"""Sharding through a real S3 API on loopback (moto server): S3 → S3, read back by WebDataset and Ray Data."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builders import make_sample_corpus
from flows.cli import app
from flows.shard import run_shard_corpus
from librilight_files import seed_bad_inputs
from pipeline.sharding.config import ShardConfig
from shard_checks import assert_accounting, assert_shards_match_sources, read_manifest, tree_bytes
from storage.fs import arrow_filesystem, open_location
from storage.settings import S3Settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]


def test_shard_s3_to_s3_reads_back_exactly(tmp_path: Path, s3_endpoint: str, ray_local: None) -> None:
    corpus = make_sample_corpus(tmp_path, speakers=3, minutes=0.75, seed=1)
    good_files = len(list(corpus.rglob("*.flac")))
    expected = seed_bad_inputs(corpus)
    (corpus / "small" / "901" / "4" / "folder.flac").rmdir()  # S3 has no directories to trip over
    # Explicit keys travel (pickled) to the Ray workers below, whose environment predates the S3 server's.
    s3 = S3Settings(endpoint_url=s3_endpoint, access_key_id="testing", secret_access_key="testing")  # type: ignore[arg-type]
    bucket = open_location("s3://speechtok", s3)
    bucket.fs.put(str(corpus), "speechtok/corpus", recursive=True)

    config = ShardConfig(target_shard_bytes=200_000)
    summary = run_shard_corpus("s3://speechtok/corpus", "s3://speechtok/out", config, s3, show_progress=False)
    del expected["small/901/4/folder.flac"]
    kept_with_note = [o for o in expected.values() if o.startswith(("energy VAD", "downmixed", "sample rate"))]
    assert summary.manifest.sharded_files == good_files + len(kept_with_note)
    assert summary.manifest.rejected_files == len(expected) - len(kept_with_note)

    # Same bytes as a local run of the same corpus: S3 changes where, not what.
    local = tmp_path / "local-out"
    run_shard_corpus(str(corpus), str(local), config, show_progress=False)
    downloaded = tmp_path / "downloaded"
    bucket.fs.get("speechtok/out", str(downloaded), recursive=True)
    assert tree_bytes(downloaded) == tree_bytes(local)
    assert_accounting(corpus, downloaded)
    assert_shards_match_sources(corpus, downloaded)

    import ray.data

    # The pyarrow filesystem comes from the same settings as every other S3 access (storage.fs, issue 10).
    dataset = ray.data.read_webdataset("speechtok/out/shards", filesystem=arrow_filesystem(bucket), decoder=None)
    rows = dataset.take_all()
    segments, _ = read_manifest(downloaded)
    assert sorted(row["__key__"] for row in rows) == sorted(row["key"] for row in segments)
    assert all(isinstance(row["flac"], bytes) and row["flac"][:4] == b"fLaC" for row in rows)


def test_aws_variables_alone_configure_every_s3_filesystem(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_ENDPOINT_URL + AWS keys, nothing in speechtok's settings: s3fs and the pyarrow filesystem Ray Train
    checkpoints through both reach the endpoint, also after pickling (what a Ray worker receives) (issue 10)."""
    import pickle

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    location = open_location("s3://speechtok/aws-only")
    location.write_bytes_atomic(b"through s3fs", "a.txt")
    arrow = pickle.loads(pickle.dumps(arrow_filesystem(location)))
    with arrow.open_output_stream("speechtok/aws-only/b.txt") as out:
        out.write(b"through pyarrow")
    with arrow.open_input_stream("speechtok/aws-only/a.txt") as handle:
        assert handle.read() == b"through s3fs"
    assert open_location("s3://speechtok/aws-only").read_bytes("b.txt") == b"through pyarrow"


def test_unreachable_endpoint_fails_fast_naming_the_url(tmp_path: Path) -> None:
    started = time.monotonic()
    result = CliRunner().invoke(
        app,
        ["shard", "s3://speechtok/corpus", str(tmp_path / "out"), "--s3-endpoint", "http://127.0.0.1:9"],
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 2, result.output
    assert "s3://speechtok/corpus" in result.output
    assert "127.0.0.1:9" in result.output
    assert elapsed < 60


def test_discovery_on_s3_is_one_recursive_listing(tmp_path: Path, s3_endpoint: str) -> None:
    """Listing a corpus of many folders costs one paginated, recursive listing, not one request per folder."""
    from pipeline.sharding.discover import discover

    corpus = make_sample_corpus(tmp_path, speakers=4, minutes=0.5, seed=3)
    folders = {path.parent for path in corpus.rglob("*.flac")}
    s3 = S3Settings(endpoint_url=s3_endpoint, access_key_id="testing", secret_access_key="testing")  # type: ignore[arg-type]
    location = open_location("s3://speechtok/listing", s3)
    location.fs.put(str(corpus), "speechtok/listing", recursive=True)
    location.fs.invalidate_cache()

    calls: list[str] = []
    real_call = location.fs._call_s3

    async def counting_call(method: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(method)
        return await real_call(method, *args, **kwargs)

    location.fs._call_s3 = counting_call
    try:
        found = discover(location)
    finally:
        del location.fs._call_s3
    assert len(found.files) == len(list(corpus.rglob("*.flac"))) and len(folders) >= 4
    assert [c for c in calls if c.startswith("list")] == ["list_objects_v2"], calls
