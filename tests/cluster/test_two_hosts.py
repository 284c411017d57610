"""speechtok on a two-host cluster, configured through the environment alone (issue 10).

Servers on this host's side of a veth pair (`cluster_hosts`): PostgreSQL with an MLflow tracking server on it
(artifacts on S3), moto's S3 server, a Prefect server, and a Ray head with no CPUs for work, with token
authentication. The second Ray node runs in its own network and mount namespace where the driver's scratch
folder, the test's data folders and /dev/shm are empty, so every Ray task and actor must get its inputs through
S3, the MLflow server or the object store.

The pipeline runs as a user would run it, one `speechtok` process per step, with the storage root on `s3://`:
sample corpus → shard → train-encoder → train-codec (workers on the second node) → evaluate → promote → tokenize
(run by a Prefect process worker from the `infra/prefect.yaml` deployment) → verify-tokens → query. The tests
then check each server through its own API, and grep every MLflow param/tag and Prefect flow-run parameter for
the S3 secret and the Ray token.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cluster_hosts import (
    Processes,
    SecondHost,
    driver_environment,
    free_port,
    http_ok,
    mlflow_server_options,
    node_environment,
    start_postgres,
    unavailable_reason,
    wait_until,
)
from registry_checks import assert_loaded_from_model_code, load_with_mlflow_alone

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
BUCKET = "speechtok"
ROOT = f"s3://{BUCKET}/cluster"
SHARDS, TOKENS = f"{ROOT}/shards", f"{ROOT}/tokens"
ARTIFACT_BUCKET = "mlflow"
DEPLOYMENT = "tokenize_corpus/tokenize-nightly"
POOL = "speechtok-local"
OBJECT_STORE_BYTES = 200 * 2**20
NODE_CPUS = 2
# Variables of the machine that must not leak into the cluster's processes: only what the test sets configures them.
_CONFIG_PREFIXES = ("AWS_", "MLFLOW_", "RAY_", "PREFECT_", "SPEECHTOK_")


@dataclass
class Cluster:
    """Addresses, credentials and the driver's environment (what a user would export)."""

    root: Path
    processes: Processes
    host: SecondHost
    env: dict[str, str]
    secret: str
    ray_token: str
    s3_url: str
    mlflow_url: str
    prefect_url: str
    dashboard_url: str
    node_pid: int  # `ray start` of the second host, inside its namespaces
    timings: dict[str, float] = field(default_factory=dict)

    def on_second_host(self, *argv: str) -> int:
        """Exit status of `argv` run in the second host's mount namespace."""
        return subprocess.run(["nsenter", "--target", str(self.node_pid), "--mount", "--", *argv]).returncode

    def run(self, name: str, argv: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> str:
        """Run one command as the user would (in the repository, with the cluster environment), timed and logged."""
        started = time.monotonic()
        result = subprocess.run(
            argv, env={**self.env, **(env or {})}, cwd=REPO, capture_output=True, text=True, timeout=timeout
        )
        self.timings[name] = time.monotonic() - started
        output = result.stdout + result.stderr
        (self.processes.logs / f"{name}.log").write_text(output)
        assert result.returncode == 0, f"{name}: {' '.join(argv)} exited {result.returncode}:\n{output[-6000:]}"
        return result.stdout

    def speechtok(self, *args: str, env: dict[str, str] | None = None) -> str:
        return self.run(f"speechtok-{args[0]}", [sys.executable, "-m", "flows.cli", *args], env)

    def prefect(self, *args: str, env: dict[str, str] | None = None) -> str:
        return self.run(f"prefect-{args[0]}", [sys.executable, "-m", "prefect", "--no-prompt", *args], env)

    def ray_api(self, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.dashboard_url}{path}", headers={"Authorization": f"Bearer {self.ray_token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["data"]["result"]

    def s3_keys(self, bucket: str, prefix: str = "") -> list[str]:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.secret,
            region_name="us-east-1",
        )
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _json(url: str, payload: dict[str, Any] | None = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"two-host cluster test: {reason}")
    started = time.monotonic()
    root = tmp_path_factory.mktemp("cluster")
    (root / "logs").mkdir()
    processes = Processes(root / "logs")
    host: SecondHost | None = None
    try:
        host = SecondHost.create(processes)
        ip = host.host_ip
        secret, ray_token = f"speechtok-secret-{secrets.token_hex(16)}", secrets.token_hex(32)
        base = {k: v for k, v in os.environ.items() if not k.startswith(_CONFIG_PREFIXES)}
        # This host's processes keep their scratch files (TMPDIR) and home under the test's folder, which the second
        # host does not see; the repository and the virtual environment stay visible there, as code in an image.
        for folder in ("home", "scratch"):
            (root / folder).mkdir()
        base.update(
            HOME=str(root / "home"),
            TMPDIR=str(root / "scratch"),
            RAY_USAGE_STATS_ENABLED="0",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            COLUMNS="200",
        )
        s3_port, prefect_port, mlflow_port = free_port(ip), free_port(ip), free_port(ip)
        s3_url = f"http://{ip}:{s3_port}"
        mlflow_url = f"http://{ip}:{mlflow_port}"
        node_config = node_environment(s3_url, "speechtok-cluster", secret, mlflow_url, ray_token)
        aws = {name: value for name, value in node_config.items() if name.startswith("AWS_")}

        ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
        ray_port, dashboard_port = free_port(ip), free_port(ip)
        dashboard_url = f"http://{ip}:{dashboard_port}"
        # A short temp folder of its own: Ray's socket paths must stay under 108 bytes, and its address file must not
        # be where other Ray instances on this machine look for one (/tmp/ray). The second host gets an empty one.
        ray_temp = Path(tempfile.mkdtemp(prefix="stk-ray-", dir="/tmp"))
        node_home = Path(tempfile.mkdtemp(prefix="stk-home-", dir="/tmp"))
        for folder in (ray_temp, node_home):
            processes.on_close(lambda folder=folder: shutil.rmtree(folder, ignore_errors=True))
        # The Ray head starts first, alone: its helper processes give up when the machine is busy for a minute.
        head = processes.start(
            "ray-head",
            [
                *[ray, "start", "--head", "--block", "--node-ip-address", ip, "--port", str(ray_port)],
                *["--num-cpus", "0", "--temp-dir", str(ray_temp), "--object-store-memory", str(OBJECT_STORE_BYTES)],
                *["--dashboard-host", ip, "--dashboard-port", str(dashboard_port), "--disable-usage-stats"],
                *["--ray-client-server-port", str(free_port(ip)), "--dashboard-agent-listen-port", str(free_port(ip))],
            ],
            {**base, **node_config},
        )
        auth_header = {"Authorization": f"Bearer {ray_token}"}
        wait_until(lambda: http_ok(f"{dashboard_url}/api/v0/nodes", auth_header), head, 120, "Ray dashboard")
        # The second host sees its own (empty) /tmp and /dev/shm: none of the driver's files, none of its memory.
        node = host.start(
            processes,
            "ray-node",
            [
                *[ray, "start", "--block", "--address", f"{ip}:{ray_port}", "--node-ip-address", host.node_ip],
                *["--num-cpus", str(NODE_CPUS), "--object-store-memory", str(OBJECT_STORE_BYTES)],
                "--disable-usage-stats",
            ],
            {**base, **node_config, "HOME": str(node_home), "TMPDIR": str(node_home)},
            hidden=[root, ray_temp, node_home, Path("/dev/shm")],
        )
        s3 = processes.start("s3", [sys.executable, "-m", "moto.server", "-H", ip, "-p", str(s3_port)], base)
        prefect = processes.start(
            "prefect-server",
            [sys.executable, "-m", "prefect", "server", "start", "--host", ip, "--port", str(prefect_port)],
            {**base, "PREFECT_HOME": str(root / "prefect-server"), "PREFECT_UI_ENABLED": "false"},
        )
        database = start_postgres(processes, ip)
        wait_until(lambda: http_ok(f"{s3_url}/moto-api/"), s3, 60, "S3 API")
        import boto3

        client = boto3.client(
            "s3", endpoint_url=s3_url, aws_access_key_id="speechtok-cluster", aws_secret_access_key=secret
        )
        for bucket in (BUCKET, ARTIFACT_BUCKET):
            client.create_bucket(Bucket=bucket)
        mlflow = processes.start(
            "mlflow-server",
            [
                *[sys.executable, "-m", "mlflow", "server", "--workers", "1"],
                *mlflow_server_options(
                    database, f"s3://{ARTIFACT_BUCKET}/artifacts", ip, mlflow_port, f"{ip}:{mlflow_port},{ip}"
                ),
            ],
            # No GenAI job runner: not used here, and it leaves a folder in /dev/shm behind.
            {**base, **aws, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
        env = {
            **base,
            **driver_environment(node_config, f"{ip}:{ray_port}", f"http://{ip}:{prefect_port}/api", ROOT),
            "PREFECT_HOME": str(root / "prefect-client"),
        }
        cluster = Cluster(
            root,
            processes,
            host,
            env,
            secret,
            ray_token,
            s3_url,
            mlflow_url,
            env["PREFECT_API_URL"],
            dashboard_url,
            node.process.pid,
        )

        def node_joined() -> bool:
            nodes = cluster.ray_api("/api/v0/nodes?detail=1")["result"]
            return any(n["node_ip"] == host.node_ip and n["state"] == "ALIVE" for n in nodes)  # type: ignore[union-attr]

        wait_until(node_joined, node, 120, "second Ray node")
        wait_until(lambda: http_ok(f"{cluster.prefect_url}/health"), prefect, 120, "Prefect API")
        wait_until(lambda: http_ok(f"{mlflow_url}/health"), mlflow, 120, "MLflow API")
        cluster.timings["servers"] = time.monotonic() - started
        yield cluster
    finally:
        processes.close()
        if host is not None:
            assert not host.leftovers(), host.leftovers()


@pytest.fixture(scope="module")
def pipeline(cluster: Cluster) -> Cluster:
    """The whole weekly loop, one `speechtok` (or `prefect`) process per step, configured by `cluster.env` alone."""
    started = time.monotonic()
    corpus = cluster.root / "corpus"
    cluster.speechtok("sample-corpus", str(corpus), "--speakers", "3", "--minutes", "0.6", "--seed", "0")
    cluster.speechtok("shard", str(corpus), SHARDS, "--target-shard-mb", "0.1")
    training = {"SPEECHTOK_TRAIN__MAX_SECONDS": "2", "SPEECHTOK_TRAIN__CHECKPOINT_EVERY": "2"}
    tiny = ["--config", "tiny", "--sample-rate", "16000", "--batch-size", "2"]
    # Stage 1 also gets the key pair through speechtok's own (secret) settings: they must not reach MLflow params
    # or Prefect flow-run parameters (issue 10: they used to, in clear text).
    explicit_keys = {
        "SPEECHTOK_S3__ACCESS_KEY_ID": "speechtok-cluster",
        "SPEECHTOK_S3__SECRET_ACCESS_KEY": cluster.secret,
    }
    cluster.speechtok(
        "train-encoder", SHARDS, *tiny, "--workers", "2", "--max-steps", "4", env={**training, **explicit_keys}
    )
    cluster.speechtok(
        "train-codec", SHARDS, "--encoder", "models:/speechtok-encoder@candidate", *tiny,
        "--workers", "1", "--max-steps", "2", env=training,
    )  # fmt: skip
    cluster.speechtok("evaluate", "models:/speechtok-codec@candidate", "--shards", SHARDS, "--max-clips", "2")
    cluster.speechtok("promote")

    deployment = {"SPEECHTOK_SHARDS": SHARDS, "SPEECHTOK_TOKENS": TOKENS}
    cluster.prefect("work-pool", "create", POOL, "--type", "process")
    cluster.prefect("deploy", "--all", "--prefect-file", str(REPO / "infra" / "prefect.yaml"), env=deployment)
    cluster.prefect("deployment", "run", DEPLOYMENT)
    # The worker's environment is the deployment's configuration: tokenize settings included.
    worker = {"SPEECHTOK_TOKENIZE__WORKERS": "1", "SPEECHTOK_TOKENIZE__BATCH_SECONDS": "30"}
    cluster.prefect("worker", "start", "--pool", POOL, "--run-once", env=worker)

    cluster.speechtok("verify-tokens", TOKENS, "--shards", SHARDS)
    query = "SELECT count(*) AS utterances, sum(n_tokens) AS tokens FROM utterances"
    (cluster.root / "query.json").write_text(cluster.speechtok("query", query, "--tokens", TOKENS, "--format", "json"))
    cluster.timings["pipeline"] = time.monotonic() - started
    (cluster.processes.logs / "timings.json").write_text(json.dumps(cluster.timings, indent=2))
    print("cluster timings (s):", json.dumps({k: round(v, 1) for k, v in cluster.timings.items()}))
    return cluster


def _mlflow(cluster: Cluster, path: str, payload: dict[str, Any] | None = None) -> Any:
    return _json(f"{cluster.mlflow_url}/api/2.0/mlflow/{path}", payload)


def _all_runs(cluster: Cluster) -> list[dict[str, Any]]:
    experiments = _mlflow(cluster, "experiments/search", {"max_results": 1000})["experiments"]
    ids = [e["experiment_id"] for e in experiments]
    return list(_mlflow(cluster, "runs/search", {"experiment_ids": ids, "max_results": 1000}).get("runs", []))


def _assert_no_credential(cluster: Cluster, text: str, where: str) -> None:
    assert cluster.secret not in text, f"the S3 secret is stored in {where}"
    assert cluster.ray_token not in text, f"the Ray token is stored in {where}"


def test_mlflow_server_holds_finished_runs_the_production_codec_and_no_secret(pipeline: Cluster) -> None:
    runs = _all_runs(pipeline)
    by_experiment: dict[str, list[dict[str, Any]]] = {}
    names = {
        e["experiment_id"]: e["name"]
        for e in _mlflow(pipeline, "experiments/search", {"max_results": 100})["experiments"]
    }
    for run in runs:
        by_experiment.setdefault(names[run["info"]["experiment_id"]], []).append(run)
        assert run["info"]["status"] == "FINISHED", run["info"]
        _assert_no_credential(
            pipeline, json.dumps(run["data"].get("params", [])), f"params of run {run['info']['run_id']}"
        )
        _assert_no_credential(pipeline, json.dumps(run["data"].get("tags", [])), f"tags of run {run['info']['run_id']}")
    assert {"train-encoder", "train-codec", "evaluate", "tokenize"} <= set(by_experiment), sorted(by_experiment)
    (codec_run,) = by_experiment["train-codec"]
    params = {p["key"]: p["value"] for p in codec_run["data"]["params"]}
    assert params["encoder_uri"] == "models:/speechtok-encoder/1"  # the alias, pinned on the driver
    (tokenize_run,) = by_experiment["tokenize"]
    params = {p["key"]: p["value"] for p in tokenize_run["data"]["params"]}
    assert params["resolved_model_uri"] == "models:/speechtok-codec/1"

    production = _json(
        f"{pipeline.mlflow_url}/api/2.0/mlflow/registered-models/alias?name=speechtok-codec&alias=production"
    )
    assert production["model_version"]["version"] == "1"
    versions = _mlflow(pipeline, "model-versions/search?max_results=100")["model_versions"]
    assert {(v["name"], v["version"]) for v in versions} == {("speechtok-encoder", "1"), ("speechtok-codec", "1")}
    for version in versions:
        _assert_no_credential(
            pipeline, json.dumps(version.get("tags", [])), f"tags of {version['name']}/{version['version']}"
        )
    # Model artifacts went through the server's proxy to S3.
    assert pipeline.s3_keys(ARTIFACT_BUCKET, "artifacts/")


def test_registered_models_load_with_mlflow_pyfunc_and_encode(pipeline: Cluster, tmp_path: Path) -> None:
    uris = ["models:/speechtok-codec@production", "models:/speechtok-encoder/1"]
    report = load_with_mlflow_alone(pipeline.mlflow_url, uris, tmp_path, pipeline.env)
    assert report[uris[0]]["dtype"] == "uint16" and report[uris[0]]["shape"][1] == 19
    assert report[uris[1]]["dtype"] == "float32" and report[uris[1]]["shape"][1] == 128
    assert_loaded_from_model_code(report)


def test_prefect_ran_every_flow_and_stored_no_secret(pipeline: Cluster) -> None:
    runs = _json(f"{pipeline.prefect_url}/flow_runs/filter", {"limit": 200})
    flows = {f["id"]: f["name"] for f in _json(f"{pipeline.prefect_url}/flows/filter", {"limit": 200})}
    for run in runs:
        assert run["state_type"] == "COMPLETED", (flows[run["flow_id"]], run["state_name"])
        _assert_no_credential(pipeline, json.dumps(run["parameters"]), f"parameters of flow run {run['name']}")
    ran = {flows[run["flow_id"]] for run in runs}
    assert {"shard_corpus", "train_encoder", "train_codec", "evaluate_model", "tokenize_corpus"} <= ran, ran
    (scheduled,) = [run for run in runs if flows[run["flow_id"]] == "tokenize_corpus"]
    assert scheduled["deployment_id"] is not None  # run by the worker from the deployment
    assert scheduled["parameters"] == {"shards": SHARDS, "out": TOKENS}


def test_s3_holds_shards_checkpoints_and_tokens(pipeline: Cluster) -> None:
    keys = pipeline.s3_keys(BUCKET, "cluster/")
    shards = [k for k in keys if k.startswith("cluster/shards/shards/") and k.endswith(".tar")]
    assert len(shards) >= 3 and "cluster/shards/manifest/segments.parquet" in keys
    checkpoints = {k.split("/")[2] for k in keys if k.startswith("cluster/checkpoints/") and "/checkpoint_" in k}
    assert any(name.startswith("encoder-tiny-16k") for name in checkpoints), checkpoints
    assert any(name.startswith("codec-tiny-16k") for name in checkpoints), checkpoints
    tokens = [k for k in keys if k.startswith("cluster/tokens/model_version=1/split=") and k.endswith(".parquet")]
    assert len(tokens) == len(shards) and "cluster/tokens/model_version=1/_manifest.json" in keys
    result = json.loads((pipeline.root / "query.json").read_text())
    assert result[0]["utterances"] > 0 and result[0]["tokens"] > 0


def test_ray_work_ran_on_the_second_host(pipeline: Cluster) -> None:
    # The second host cannot see the driver's files: corpus, scratch, Ray session; it does have the code.
    for hidden in (pipeline.root / "corpus", pipeline.root / "scratch", pipeline.root / "logs"):
        assert pipeline.on_second_host("test", "-e", str(hidden)) == 1, hidden
    assert pipeline.on_second_host("test", "-e", str(REPO / "pyproject.toml")) == 0
    nodes = pipeline.ray_api("/api/v0/nodes?detail=1")["result"]
    (second,) = [n["node_id"] for n in nodes if n["node_ip"] == pipeline.host.node_ip]
    (head,) = [n for n in nodes if n["is_head_node"]]
    assert head["resources_total"].get("CPU", 0) == 0
    actors = pipeline.ray_api("/api/v0/actors?detail=1&limit=10000")["result"]
    train_workers = [a for a in actors if a["class_name"] == "RayTrainWorker"]
    encoders = [a for a in actors if "CodecEncoder" in (a.get("repr_name") or "") + a["class_name"]]
    assert len(train_workers) >= 3 and encoders, sorted({a["class_name"] for a in actors})
    assert {a["node_id"] for a in train_workers + encoders} == {second}
