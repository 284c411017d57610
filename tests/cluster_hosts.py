"""Two hosts on one machine, for the cluster test (issue 10).

"This host" is the machine's own network namespace; the "second host" is a network and mount namespace the test
creates, joined to this one by a veth pair with addresses from 198.51.100.0/24 (TEST-NET-2, RFC 5737). Inside it
an empty tmpfs covers the driver's scratch folder, the test's data folders and /dev/shm, so a path that exists
only on the driver, or a server on 127.0.0.1, fails there as it would on another machine. The servers a cluster
runs (PostgreSQL, MLflow, an S3 API, Prefect, the Ray head) listen on this host's side of the pair (Ray's own
gRPC servers listen on every interface of this namespace; Ray has no option to restrict them; token
authentication guards them).

Everything here is started as its own process group and recorded in a `Processes` registry that stops it, with
its descendants, even when the test fails half-way; the namespace and its link are deleted last.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TEST_NET = ipaddress.ip_network("198.51.100.0/24")  # TEST-NET-2: documentation-only, never routed
STOP_GRACE_S = 10.0


def node_environment(s3_url: str, access_key: str, secret: str, mlflow_url: str, ray_token: str) -> dict[str, str]:
    """What every Ray node needs, the head included (Ray Train's controller runs there and opens the storage).

    The standard variables only; `infra/compose.yaml` (`x-speechtok-env`) gives its containers the same names, which
    tests/infra checks.
    """
    return {
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_url,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": ray_token,
        "MLFLOW_TRACKING_URI": mlflow_url,
    }


def driver_environment(node: dict[str, str], ray_address: str, prefect_api: str, storage_root: str) -> dict[str, str]:
    """What a user exports on the machine that runs `speechtok` (and what the Prefect worker sees): a node's
    variables plus where the Ray head, the Prefect API and the storage root are."""
    return {**node, "RAY_ADDRESS": ray_address, "PREFECT_API_URL": prefect_api, "SPEECHTOK_STORAGE_ROOT": storage_root}


def mlflow_server_options(backend_uri: str, artifacts_uri: str, host: str, port: int, allowed_hosts: str) -> list[str]:
    """`mlflow server`'s options for a tracking server on PostgreSQL with S3 artifacts proxied through it (the
    compose stack's `mlflow` service passes the same options)."""
    return [
        *["--backend-store-uri", backend_uri, "--serve-artifacts", "--artifacts-destination", artifacts_uri],
        *["--host", host, "--port", str(port), "--allowed-hosts", allowed_hosts],
    ]


def postgres_bin() -> Path | None:
    """The newest PostgreSQL server binaries of Debian's `postgresql` package (not on PATH there)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3]))
    return candidates[-1].parent if candidates else None


def unavailable_reason() -> str | None:
    """Why the two-host test cannot run here (None: it can)."""
    if not os.path.isdir("/proc/self/ns"):
        return "needs Linux namespaces"
    if os.geteuid() != 0:
        return "needs root to create network and mount namespaces (CI runs as root)"
    for tool in ("ip", "unshare", "nsenter", "mount"):
        if shutil.which(tool) is None:
            return f"`{tool}` not found (iproute2 / util-linux)"
    if postgres_bin() is None:
        return "PostgreSQL server not installed (Debian package postgresql; scripts/setup.sh installs it as root)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no `postgres` user (created by Debian's postgresql package)"
    probe = f"speechtok-probe-{os.getpid()}"
    created = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if created.returncode != 0:
        return f"cannot create a network namespace: {created.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """A process this test started (in its own session), with its log."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, characters: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-characters:] if self.log.exists() else ""

    def stop(self) -> None:
        """SIGTERM the process, its descendants and its process group; SIGKILL what is left after a grace period."""
        family = [self.process.pid, *descendants(self.process.pid)]
        _signal_all(family, signal.SIGTERM)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and any(_alive(pid) for pid in family[1:]):
            time.sleep(0.2)
        _signal_all(family + descendants(self.process.pid), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_GRACE_S)


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, grandchildren, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # `comm` (field 2) may hold spaces and parentheses: the parent pid is the 2nd field after the last ')'.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        children = parents.get(queue.pop(), [])
        found.extend(children)
        queue.extend(children)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


@dataclass
class Processes:
    """Starts services and stops them all, newest first, on `close` (called by the fixture's finaliser)."""

    logs: Path
    services: list[Service] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        *,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> Service:
        log = self.logs / f"{name}.log"
        with log.open("wb") as handle:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                user=user,
                group=user,
                extra_groups=[] if user else None,
            )
        service = Service(name, process, log)
        self.services.append(service)
        return service

    def on_close(self, cleanup: Callable[[], None]) -> None:
        self.cleanups.append(cleanup)

    def close(self) -> None:
        errors: list[BaseException] = []
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception as error:  # keep stopping the others; report at the end
                errors.append(error)
        for cleanup in reversed(self.cleanups):
            try:
                cleanup()
            except Exception as error:
                errors.append(error)
        if errors:
            raise RuntimeError(f"cluster clean-up: {errors}")


def wait_until(ready: Callable[[], bool], service: Service, timeout_s: float, what: str) -> None:
    """Poll `ready` until it holds; fail with the service's log when it exits or the time is up."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(Exception):
            if ready():
                return
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited ({service.process.returncode}) before {what}:\n{service.tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{service.name}: no {what} after {timeout_s:.0f} s:\n{service.tail()}")
        time.sleep(0.5)


def http_ok(url: str, headers: dict[str, str] | None = None) -> bool:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=3) as response:
        return bool(200 <= response.status < 300)


def _used_addresses() -> set[ipaddress.IPv4Address]:
    listing = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True).stdout
    return {ipaddress.ip_interface(line.split()[3]).ip for line in listing.splitlines()}


@dataclass(frozen=True)
class SecondHost:
    """A network + mount namespace joined to this host by a veth pair (a /30 of TEST-NET-2)."""

    namespace: str
    host_link: str
    host_ip: str  # this host's side of the pair: the servers bind here
    node_ip: str  # the second host's address

    @classmethod
    def create(cls, processes: Processes) -> SecondHost:
        """Pick a free /30 of 198.51.100.0/24, make the namespace and the pair; `processes` removes them."""
        used = _used_addresses()
        tag = os.getpid() % 100_000
        subnets = list(TEST_NET.subnets(new_prefix=30))
        start = tag % len(subnets)
        for subnet in subnets[start:] + subnets[:start]:
            host_ip, node_ip = list(subnet.hosts())
            if host_ip not in used and node_ip not in used:
                break
        else:
            raise RuntimeError(f"no free /30 left in {TEST_NET} on this machine")
        host = cls(f"speechtok-node-{tag}", f"stk{tag}h", str(host_ip), str(node_ip))
        node_link = f"stk{tag}n"
        processes.on_close(host.remove)
        commands = [
            ["ip", "netns", "add", host.namespace],
            ["ip", "link", "add", host.host_link, "type", "veth", "peer", "name", node_link, "netns", host.namespace],
            ["ip", "addr", "add", f"{host_ip}/30", "dev", host.host_link],
            ["ip", "link", "set", host.host_link, "up"],
            ["ip", "-n", host.namespace, "addr", "add", f"{node_ip}/30", "dev", node_link],
            ["ip", "-n", host.namespace, "link", "set", node_link, "up"],
            ["ip", "-n", host.namespace, "link", "set", "lo", "up"],
        ]
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        return host

    def start(
        self, processes: Processes, name: str, argv: list[str], env: dict[str, str], hidden: list[Path]
    ) -> Service:
        """Run `argv` on the second host, with an empty tmpfs over each of `hidden` (a folder already covered by
        an earlier one is skipped: it no longer exists there)."""
        covered: list[Path] = []
        for folder in sorted({p.resolve() for p in hidden}, key=lambda p: len(p.parts)):
            if not any(folder.is_relative_to(parent) for parent in covered):
                covered.append(folder)
        mounts = [f"mount -t tmpfs -o size=2g,mode=1777 speechtok-hidden {shlex.quote(str(p))}" for p in covered]
        script = " && ".join([*mounts, f"exec {shlex.join(argv)}"])
        wrapped = ["ip", "netns", "exec", self.namespace, "unshare", "--mount", "--propagation", "private"]
        return processes.start(name, [*wrapped, "sh", "-c", script], env)

    def remove(self) -> None:
        """Kill whatever still runs in the namespace, then delete the link and the namespace."""
        listed = subprocess.run(["ip", "netns", "pids", self.namespace], capture_output=True, text=True)
        for pid in listed.stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "link", "del", self.host_link], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.namespace], capture_output=True)

    def leftovers(self) -> list[str]:
        """What remains of this host after `remove` (empty when clean)."""
        found = []
        if self.namespace in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout:
            found.append(f"namespace {self.namespace}")
        if subprocess.run(["ip", "link", "show", self.host_link], capture_output=True).returncode == 0:
            found.append(f"link {self.host_link}")
        return found


def start_postgres(processes: Processes, host: str) -> str:
    """A throw-away PostgreSQL cluster (initdb, then the server, as the `postgres` user) listening on `host`;
    returns its SQLAlchemy URL. Its folder is outside the test's (root-only) temp folders, so `postgres` can use it."""
    binaries = postgres_bin()
    assert binaries is not None
    data = Path(tempfile.mkdtemp(prefix="speechtok-pg-")).resolve()
    processes.on_close(lambda: shutil.rmtree(data, ignore_errors=True))
    account = pwd.getpwnam("postgres")
    os.chown(data, account.pw_uid, account.pw_gid)
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "HOME": str(data)}
    initdb = [str(binaries / "initdb"), "-D", str(data / "db"), "-U", "postgres", "--auth=trust", "--no-locale"]
    subprocess.run(
        [*initdb, "-E", "UTF8", "--no-sync"],
        env=env,
        user="postgres",
        group="postgres",
        extra_groups=[],
        check=True,
        capture_output=True,
    )
    # initdb trusts loopback only; the server listens on (and MLflow connects from) `host`.
    with (data / "db" / "pg_hba.conf").open("a") as hba:
        hba.write(f"host all postgres {host}/32 trust\n")
    port = free_port(host)
    options = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    server = processes.start(
        "postgres",
        [str(binaries / "postgres"), "-D", str(data / "db"), "-h", host, "-p", str(port), "-k", str(data), *options],
        env,
        user="postgres",
    )
    ready = [str(binaries / "pg_isready"), "-h", host, "-p", str(port), "-U", "postgres", "-q"]
    wait_until(lambda: subprocess.run(ready, env=env).returncode == 0, server, 60, "connections")
    return f"postgresql+psycopg2://postgres@{host}:{port}/postgres"
