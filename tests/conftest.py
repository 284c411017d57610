"""Shared fixtures: one Prefect test server, one local Ray instance and one S3 server per test session."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # so tests can import the builders in tests/
# The test server's telemetry writes race its own SQLite start-up ("database is locked" noise); tests need none.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


# `mlflow.set_tracking_uri` also exports MLFLOW_TRACKING_URI, which speechtok's settings honour (issue 10): clear it
# for every module (before its fixtures) and every test, so one test's registry never becomes another's default.
@pytest.fixture(scope="module", autouse=True)
def _no_inherited_tracking_uri_per_module() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield


@pytest.fixture(autouse=True)
def _no_inherited_tracking_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A temporary Prefect API (own SQLite database) for every flow run in the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """One local Ray instance (2 CPUs) shared by the session: start-up costs seconds, so do it once."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API on loopback (moto's threaded server) with dummy credentials and a `speechtok` bucket."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {key: os.environ.get(key) for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    import boto3

    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="speechtok")
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def sharded_sample_corpus(tmp_path_factory: pytest.TempPathFactory, prefect_api: None) -> Path:
    """A sample corpus (5 speakers, one held out) sharded once per session into small shards."""
    from builders import make_sample_corpus
    from flows.shard import run_shard_corpus
    from pipeline.sharding.config import ShardConfig

    root = tmp_path_factory.mktemp("sharded")
    corpus = make_sample_corpus(root, speakers=5, minutes=1.5, seed=3)
    run_shard_corpus(str(corpus), str(root / "shards"), ShardConfig(target_shard_bytes=60_000), show_progress=False)
    return root / "shards"
