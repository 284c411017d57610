"""infra/ agrees with the code and with itself (issue 15): the compose stack, the Kubernetes manifests, both Prefect
deployment files and the Dockerfile name the same images, variables, secrets and settings that speechtok reads."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from pydantic import BaseModel

from cluster_hosts import driver_environment, mlflow_server_options, node_environment, postgres_bin
from flows.cli import app
from flows.evaluate import PROMOTED_EVENT, model_resource_id
from flows.settings import Settings
from storage.mlflow_io import CODEC_MODEL_NAME

ROOT = Path(__file__).parents[2]
INFRA = ROOT / "infra"
# Variables read by speechtok's processes besides SPEECHTOK_* (README, "Configuration"); the standard names of boto3,
# MLflow, Prefect and Ray.
STANDARD_VARIABLES = {
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "MLFLOW_TRACKING_URI",
    "PREFECT_API_URL",
    "RAY_ADDRESS",
    "RAY_AUTH_MODE",
    "RAY_AUTH_TOKEN",
}
# What every speechtok process of the stack must be told (the cluster needs all of them).
REQUIRED_VARIABLES = STANDARD_VARIABLES | {"SPEECHTOK_STORAGE_ROOT"}
SPEECHTOK_IMAGE_K8S = "registry.example.org/speechtok:latest"


def pinned(package: str) -> str:
    """The version constraints.txt pins for `package`."""
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{package.lower()}=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{package} is not pinned in constraints.txt")


def settings_variables(model: type[BaseModel] = Settings, prefix: str = "SPEECHTOK_") -> set[str]:
    """Every environment variable `Settings` reads: SPEECHTOK_FIELD, nested as SPEECHTOK_GROUP__FIELD."""
    names = set()
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name.upper()}"
        names.add(variable)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= settings_variables(annotation, f"{variable}__")
    return names


def check_variable_names(names: set[str], where: str) -> None:
    unknown = {n for n in names if n.startswith("SPEECHTOK_")} - settings_variables()
    assert not unknown, f"{where} sets {sorted(unknown)}, which Settings does not read"


# --- compose ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((INFRA / "compose.yaml").read_text())


def env_example() -> dict[str, str]:
    lines = (INFRA / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_compose_services_are_healthchecked_and_ordered(compose: dict[str, Any]) -> None:
    services = compose["services"]
    one_shots = {
        name
        for spec in services.values()
        for name, condition in (spec.get("depends_on") or {}).items()
        if condition["condition"] == "service_completed_successfully"
    }
    assert one_shots == {"minio-init"}
    for name, spec in services.items():
        if name not in one_shots:
            assert "healthcheck" in spec, f"service {name} has no healthcheck"
            assert spec.get("restart") == "unless-stopped", name
        for dependency, condition in (spec.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits for {dependency}, which has no healthcheck"
    assert set(compose["volumes"]) == {
        volume.split(":")[0]
        for spec in services.values()
        for volume in spec.get("volumes", [])
        if not volume.startswith(".")
    }


def test_compose_publishes_on_loopback_only(compose: dict[str, Any]) -> None:
    published = [port for spec in compose["services"].values() for port in spec.get("ports", [])]
    assert published and all(port.startswith("127.0.0.1:") for port in published), published


def test_compose_variables_are_all_in_env_example(compose: dict[str, Any]) -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)\}", (INFRA / "compose.yaml").read_text()))
    defined = set(env_example())
    assert used == defined, f"only in compose.yaml: {sorted(used - defined)}; only in .env.example: {defined - used}"


def test_compose_speechtok_processes_get_every_setting(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("prefect-worker", "ray-head", "ray-worker"):
        spec = services[name]
        assert spec["image"] == "${SPEECHTOK_IMAGE}", name
        environment = spec["environment"]
        assert set(environment) >= REQUIRED_VARIABLES, f"{name} misses {REQUIRED_VARIABLES - set(environment)}"
        assert environment["RAY_AUTH_MODE"] == "token"
        check_variable_names(set(environment), f"compose service {name}")
    assert services["mlflow"]["image"] == "${SPEECHTOK_IMAGE}"  # runs the MLflow of constraints.txt


def test_compose_servers_match_the_pinned_versions(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["prefect-server"]["image"].startswith(f"prefecthq/prefect:{pinned('prefect')}-")
    assert services["postgres"]["image"].startswith("postgres:15")  # Debian 12's PostgreSQL, as in the tests
    command = " ".join(services["mlflow"]["command"])
    assert "--backend-store-uri=postgresql://" in command and "--artifacts-destination=s3://" in command
    hosts = re.search(r"--allowed-hosts=(\S+)", command)
    assert hosts is not None and {"mlflow:5000", "127.0.0.1:5000"} <= set(hosts.group(1).split(","))
    assert "--num-cpus=0" in services["ray-head"]["command"]
    ui = services["prefect-server"]["environment"]["PREFECT_UI_API_URL"]
    assert ui.startswith("http://127.0.0.1:"), "the UI runs in the host's browser: it must call the published port"


def test_compose_stack_mirrors_the_two_host_test(compose: dict[str, Any]) -> None:
    """The compose stack and tests/cluster run the same servers the same way: every speechtok process gets the
    variables the cluster test exports (names, not values), MLflow gets the same server options, and PostgreSQL
    the major version the test runs (Debian's package, where installed). The S3 servers differ by design: MinIO
    in the stack, moto's server in the test (both speak the S3 API through AWS_ENDPOINT_URL)."""
    node = node_environment("http://s3", "key", "secret", "http://mlflow", "token")
    exported = driver_environment(node, "head:6379", "http://prefect/api", "s3://bucket/root")
    assert set(compose["x-speechtok-env"]) == set(exported)
    for name in ("ray-head", "ray-worker", "prefect-worker"):
        assert set(compose["services"][name]["environment"]) >= set(node), name
    compose_options = {item.split("=", 1)[0] for item in compose["services"]["mlflow"]["command"] if item[:2] == "--"}
    test_options = {o for o in mlflow_server_options("postgresql://db", "s3://a", "h", 1, "h") if o[:2] == "--"}
    assert compose_options == test_options
    server = postgres_bin()
    if server is not None:
        major = server.parent.name  # /usr/lib/postgresql/<major>/bin
        assert compose["services"]["postgres"]["image"].startswith(f"postgres:{major}-"), (major, "the cluster test's")


def test_docker_compose_accepts_the_file() -> None:
    compose_cli = shutil.which("docker-compose")
    if compose_cli is None:
        pytest.skip("docker-compose is not installed (scripts/setup.sh installs Debian's docker-compose as root)")
    result = subprocess.run(
        [compose_cli, "--env-file", str(INFRA / ".env.example"), "-f", str(INFRA / "compose.yaml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


# --- Kubernetes -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def k8s() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((INFRA / "k8s").glob("*.yaml"))
        if path.name != "prefect.yaml"
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents if doc["kind"] == kind]


def containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every container spec anywhere in a manifest."""
    found = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "containers":
                    found.extend(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    return found


def base_job_template() -> dict[str, Any]:
    return json.loads((INFRA / "k8s" / "prefect-base-job-template.json").read_text())


def test_k8s_references_resolve(k8s: list[dict[str, Any]]) -> None:
    secrets = {doc["metadata"]["name"]: set(doc["stringData"]) for doc in of_kind(k8s, "Secret")}
    configs = {doc["metadata"]["name"]: set(doc["data"]) for doc in of_kind(k8s, "ConfigMap")}
    job_manifest = base_job_template()["job_configuration"]["job_manifest"]
    every = [*(c for doc in k8s for c in containers(doc)), *containers(job_manifest)]
    assert every
    for container in every:
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                assert source["secretRef"]["name"] in secrets, source
            else:
                assert source["configMapRef"]["name"] in configs, source
        for variable in container.get("env", []) if isinstance(container.get("env"), list) else []:
            reference = variable.get("valueFrom", {}).get("secretKeyRef")
            if reference:
                assert reference["key"] in secrets.get(reference["name"], set()), reference
    assert {doc["metadata"].get("namespace") for doc in k8s if doc["kind"] != "Namespace"} == {"speechtok"}
    [config] = configs.values()
    provided = config | {key for keys in secrets.values() for key in keys}
    assert REQUIRED_VARIABLES - {"RAY_ADDRESS"} <= provided, REQUIRED_VARIABLES - provided
    check_variable_names(config, "infra/k8s ConfigMap")


def test_raycluster_is_autoscaled_authenticated_and_on_gpus(k8s: list[dict[str, Any]]) -> None:
    [cluster] = of_kind(k8s, "RayCluster")
    spec = cluster["spec"]
    assert spec["rayVersion"] == pinned("ray") and spec["enableInTreeAutoscaling"] is True
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    [gpu] = spec["workerGroupSpecs"]
    pod = gpu["template"]["spec"]
    [worker] = pod["containers"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"]
    assert pod["tolerations"] and pod["nodeSelector"]
    shm = {v["name"]: v for v in pod["volumes"]}[
        next(m["name"] for m in worker["volumeMounts"] if m["mountPath"] == "/dev/shm")
    ]
    assert shm["emptyDir"]["medium"] == "Memory"
    for container in containers(cluster):
        assert {"configMapRef": {"name": "speechtok-config"}} in container["envFrom"]  # RAY_AUTH_MODE=token
        assert any(v["name"] == "RAY_AUTH_TOKEN" for v in container["env"])


def test_rayjobs_run_speechtok_commands_on_the_cluster(k8s: list[dict[str, Any]]) -> None:
    [cluster] = of_kind(k8s, "RayCluster")
    jobs = of_kind(k8s, "RayJob")
    assert {job["metadata"]["labels"]["speechtok.stage"] for job in jobs} == {
        "train-encoder",
        "train-codec",
        "tokenize",
    }
    command = typer.main.get_command(app)
    for job in jobs:
        assert job["spec"]["clusterSelector"] == {"ray.io/cluster": cluster["metadata"]["name"]}
        program, subcommand, *args = shlex.split(job["spec"]["entrypoint"])
        assert program == "speechtok"
        sub = command.get_command(None, subcommand)  # type: ignore[attr-defined]
        assert sub is not None, subcommand
        sub.make_context(subcommand, args)  # raises on an unknown option or a missing argument
    images = {c["image"] for doc in k8s for c in containers(doc)}
    assert images == {SPEECHTOK_IMAGE_K8S}


# --- Prefect ----------------------------------------------------------------------------------------------------
def deployments(path: Path) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text())["deployments"]


def flow_of(entrypoint: str) -> Any:
    file, function = entrypoint.split(":")
    module = importlib.import_module(file.removesuffix(".py").replace("/", "."))
    return getattr(module, function)


@pytest.mark.parametrize("path", [INFRA / "prefect.yaml", INFRA / "k8s" / "prefect.yaml"], ids=["local", "k8s"])
def test_prefect_deployments_match_their_flows(path: Path) -> None:
    from prefect import Flow
    from prefect.client.schemas.objects import ConcurrencyLimitConfig
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    found = deployments(path)
    assert found
    for deployment in found:
        flow = flow_of(deployment["entrypoint"])
        assert isinstance(flow, Flow), deployment["entrypoint"]
        signature = inspect.signature(flow.fn)
        required = {n for n, p in signature.parameters.items() if p.default is inspect.Parameter.empty}
        given = set(deployment.get("parameters", {}))
        triggered = {k for t in deployment.get("triggers", []) for k in t.get("parameters", {})}
        assert given | triggered <= set(signature.parameters), deployment["name"]
        assert required <= given | triggered, f"{deployment['name']} lacks {required - given}"
        assert "settings" not in given, "settings (credentials) are read by the process, never flow parameters"
        limit = ConcurrencyLimitConfig.model_validate(deployment["concurrency_limit"])
        assert limit.limit == 1, deployment["name"]
        for trigger in deployment.get("triggers", []):
            parsed = DeploymentEventTrigger.model_validate(trigger)
            assert parsed.expect == {PROMOTED_EVENT}
            assert trigger["match"]["prefect.resource.id"] == model_resource_id(CODEC_MODEL_NAME)


def test_k8s_deployments_need_no_local_directory_and_cover_the_pipeline() -> None:
    text = (INFRA / "k8s" / "prefect.yaml").read_text()
    assert "$PWD" not in text and "git_clone" not in text
    names = {d["entrypoint"] for d in deployments(INFRA / "k8s" / "prefect.yaml")}
    assert names == {
        "flows/train.py:train_encoder",
        "flows/train.py:train_codec",
        "flows/evaluate.py:evaluate_and_promote",
        "flows/tokenize.py:tokenize_corpus",
    }
    pull = yaml.safe_load(text)["pull"]
    assert pull == [{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/speechtok"}}]
    assert "WORKDIR /opt/speechtok" in (ROOT / "Dockerfile").read_text()
    pools = {d["work_pool"]["name"] for d in deployments(INFRA / "k8s" / "prefect.yaml")}
    assert pools == {"speechtok-k8s"}


def test_kubernetes_base_job_template_is_valid() -> None:
    from prefect.server.schemas.actions import WorkPoolCreate

    template = base_job_template()
    WorkPoolCreate(name="speechtok-k8s", type="kubernetes", base_job_template=template)  # Prefect's own validation
    [container] = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"]
    assert [next(iter(source.values()))["name"] for source in container["envFrom"]] == [
        "speechtok-config",
        "speechtok-s3",
        "speechtok-ray-token",
    ]
    assert template["variables"]["properties"]["image"]["default"] == SPEECHTOK_IMAGE_K8S


# --- Dockerfile -------------------------------------------------------------------------------------------------
def test_dockerfile_installs_the_pinned_project_as_a_non_root_user() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"pip install -c constraints.txt \"\.\[server\]\"", text)
    assert "ARG TORCH_VARIANT=cuda" in text and '"$TORCH_VARIANT" = "cpu"' in text
    assert re.search(r"^USER speechtok$", text, re.MULTILINE)
    assert 'ENTRYPOINT ["speechtok"]' in text
    for source in re.findall(r"^COPY (\S+)", text, re.MULTILINE):
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r"^server = \[", pyproject, re.MULTILINE)
    for package in ("psycopg2-binary", "boto3"):
        pinned(package)
