"""Which Prefect API the flow commands talk to, and one local Prefect server they can share (issue 11).

Prefect records every flow run through an API. With no `PREFECT_API_URL`, Prefect starts a temporary server for
each process ("ephemeral mode", PREFECT_SERVER_EPHEMERAL_ENABLED in Prefect's default profile) and stops it at exit:
importing its server app costs about 2 s in the command and booting it about 4 s more (measured on 2 cores; see
benchmarks/startup.py), on every `speechtok shard`, `tokenize`, `train-*`, `evaluate` and `demo`.

`speechtok server start` runs Prefect's own `prefect server start` once, in the background, and remembers its URL
in PREFECT_HOME/speechtok-server.json. While that server answers, flow commands send their runs to it instead
(Prefect's documented way: a running server plus PREFECT_API_URL, here set for the command only). Order of choice:
PREFECT_API_URL (a user's own server always wins), then the remembered server, then Prefect's temporary server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

RECORD_NAME = "speechtok-server.json"
LOG_NAME = "speechtok-server.log"
DEFAULT_PORT = 4200  # Prefect's own default (PREFECT_SERVER_API_PORT)
# A healthy local server answers /health in milliseconds; a dead or foreign port must not delay a command long.
HEALTH_TIMEOUT_S = 2.0
# `prefect server start` migrates a new database before it answers: tens of seconds on a loaded 2-core machine.
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class LocalServer:
    """A Prefect server started by `speechtok server start`: its API URL, process id and log file."""

    url: str  # http://HOST:PORT/api, what PREFECT_API_URL is set to
    pid: int
    log: str

    @property
    def ui_url(self) -> str:
        return self.url.removesuffix("/api")

    def running(self) -> bool:
        """Whether the recorded process still exists and is a Prefect server (after a reboot the id may belong to
        another program, which `stop` must not signal)."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, owned by someone else: not ours
            return False
        cmdline = Path(f"/proc/{self.pid}/cmdline")
        return not cmdline.exists() or b"prefect" in cmdline.read_bytes()  # no /proc (macOS): trust the record

    def healthy(self, timeout: float = HEALTH_TIMEOUT_S) -> bool:
        """Whether the API answers its health check now."""
        import httpx

        try:
            return httpx.get(f"{self.url}/health", timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False


def prefect_home() -> Path:
    """PREFECT_HOME as Prefect resolves it (environment, profile or ~/.prefect)."""
    from prefect.settings import PREFECT_HOME

    return Path(PREFECT_HOME.value()).expanduser()


def record_path() -> Path:
    return prefect_home() / RECORD_NAME


def read_local_server() -> LocalServer | None:
    """The remembered server, or None when there is none or its record is unreadable."""
    try:
        return LocalServer(**json.loads(record_path().read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as error:
        raise ValueError(f"{record_path()} is not a speechtok server record ({error}); delete it") from error


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def start_local_server(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, timeout: float = START_TIMEOUT_S
) -> LocalServer:
    """Start `prefect server start` in its own session (it outlives this process), wait until it answers and
    remember it. Returns the running one when a remembered server is already healthy."""
    current = read_local_server()
    if current is not None and current.running() and current.healthy():
        return current
    if not _port_free(host, port):
        raise RuntimeError(f"port {port} on {host} is in use; pass another --port (or stop what listens there)")
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    log = home / LOG_NAME
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not killed with the terminal or the command that started it
        )
    server = LocalServer(url=f"http://{host}:{port}/api", pid=process.pid, log=str(log))
    deadline = time.monotonic() + timeout
    while not server.healthy():
        if process.poll() is not None or time.monotonic() > deadline:
            _terminate(process.pid)
            reason = f"exited with status {process.returncode}" if process.returncode is not None else "timed out"
            raise RuntimeError(f"the Prefect server {reason} before answering on {server.url}; see {log}")
        time.sleep(0.25)
    record_path().write_text(json.dumps(asdict(server)))
    return server


def stop_local_server() -> LocalServer | None:
    """Stop the remembered server (if still running) and forget it; returns what was stopped."""
    server = read_local_server()
    if server is None:
        return None
    if server.running():
        _terminate(server.pid)
    record_path().unlink(missing_ok=True)
    return server


def _terminate(pid: int) -> None:
    """SIGTERM the server's process group (uvicorn shuts down cleanly), SIGKILL it if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our child: reap it
                    return
            os.kill(pid, 0)  # raises ProcessLookupError once it is gone
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)


@dataclass(frozen=True)
class ApiChoice:
    """Where this command's flow runs are recorded, and why."""

    url: str | None  # None: a temporary server started by Prefect for this command
    source: str  # "PREFECT_API_URL", "speechtok server" or "temporary server"
    note: str | None = None  # why a remembered server was not used


def choose_api() -> ApiChoice:
    """PREFECT_API_URL when set (environment or Prefect profile), else the remembered server when it answers,
    else Prefect's temporary server."""
    from prefect.settings import PREFECT_API_URL

    configured = PREFECT_API_URL.value()
    if configured:
        return ApiChoice(configured, "PREFECT_API_URL")
    try:
        server = read_local_server()
    except ValueError as error:
        return ApiChoice(None, "temporary server", str(error))
    if server is None:
        return ApiChoice(None, "temporary server")
    if server.running() and server.healthy():
        return ApiChoice(server.url, "speechtok server")
    return ApiChoice(
        None,
        "temporary server",
        f"the server of `speechtok server start` ({server.url}) does not answer; see {server.log}, or run "
        "`speechtok server stop` to forget it",
    )


@contextlib.contextmanager
def flow_api() -> Iterator[ApiChoice]:
    """Run the enclosed flows against `choose_api()`: a remembered server is set as PREFECT_API_URL for the
    block only (Prefect's `temporary_settings`), so nothing outlives the command."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    choice = choose_api()
    if choice.source != "speechtok server":
        yield choice
        return
    with temporary_settings(updates={PREFECT_API_URL: choice.url}):
        yield choice
