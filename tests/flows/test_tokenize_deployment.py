"""`infra/prefect.yaml` against a real Prefect server: register the deployment with `prefect deploy`, trigger a
run, let a process worker execute it, and check the token table it wrote (issue 4, "Schedule")."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml

from tokenize_helpers import register_tiny_codec

REPO = Path(__file__).resolve().parents[2]
PREFECT_FILE = REPO / "infra" / "prefect.yaml"
DEPLOYMENT = "tokenize_corpus/tokenize-nightly"
POOL = "speechtok-local"

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ray_local")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """`prefect server start` on loopback with its own PREFECT_HOME; yields the environment that points at it."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{env['PREFECT_API_URL']}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"prefect server did not start; see {home / 'server.log'}")
        time.sleep(0.5)
    yield env
    server.terminate()
    server.wait(timeout=30)
    log.close()


def _prefect(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"prefect {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_prefect_file_declares_a_cron_deployment_of_tokenize_corpus() -> None:
    spec = yaml.safe_load(PREFECT_FILE.read_text())
    (deployment,) = spec["deployments"]
    assert deployment["entrypoint"] == "flows/tokenize.py:tokenize_corpus"
    assert deployment["schedules"][0]["cron"] == "0 3 * * *"
    assert deployment["work_pool"]["name"] == POOL


def test_deployment_registers_and_a_triggered_run_writes_the_table(
    prefect_server: dict[str, str], sharded_sample_corpus: Path, tmp_path: Path
) -> None:
    import ray

    registry = tmp_path / "registry"
    registry.mkdir()
    register_tiny_codec(registry, alias="production")
    out = tmp_path / "tokens"
    env = {
        **prefect_server,
        "SPEECHTOK_SHARDS": str(sharded_sample_corpus),
        "SPEECHTOK_TOKENS": str(out),
        "SPEECHTOK_MLFLOW__TRACKING_URI": f"sqlite:///{registry}/mlflow.db",
        # The flow run joins the session's Ray instance instead of starting a second one on the same 2 CPUs.
        "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
    }
    _prefect(env, "work-pool", "create", POOL, "--type", "process")
    deployed = _prefect(env, "deploy", "--all", "--prefect-file", str(PREFECT_FILE))
    assert "tokenize-nightly" in deployed

    inspected = json.loads(_prefect(env, "deployment", "inspect", DEPLOYMENT, "--output", "json"))
    assert inspected["parameters"]["shards"] == str(sharded_sample_corpus)
    assert inspected["parameters"]["out"] == str(out)
    assert [s["schedule"]["cron"] for s in inspected["schedules"]] == ["0 3 * * *"]

    _prefect(env, "deployment", "run", DEPLOYMENT)
    _prefect(env, "worker", "start", "--pool", POOL, "--run-once", timeout=600)
    runs = json.loads(_prefect(env, "flow-run", "ls", "--flow-name", "tokenize_corpus", "--output", "json"))
    assert [run["state_type"] for run in runs] == ["COMPLETED"], runs

    files = sorted((out / "model_version=1").rglob("*.parquet"))
    segments = pq.read_table(sharded_sample_corpus / "manifest" / "segments.parquet")
    rows = ds.dataset(out, format="parquet", partitioning="hive").to_table(columns=["utterance_id"])
    assert files and sorted(rows.column("utterance_id").to_pylist()) == sorted(segments.column("key").to_pylist())
