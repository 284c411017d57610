"""Which Prefect API flow commands use (flows/prefect_server.py): PREFECT_API_URL first, then the server of
`speechtok server start` while it answers, else Prefect's temporary server; and that server's whole life."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest
from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

from flows.prefect_server import RECORD_NAME, LocalServer, choose_api
from librilight_files import tone_with_pauses, write_entry

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def prefect_home(tmp_path: Path) -> Iterator[Path]:
    """An empty PREFECT_HOME and no API URL, for this test only."""
    with temporary_settings(updates={PREFECT_HOME: str(tmp_path)}, restore_defaults={PREFECT_API_URL}):
        yield tmp_path


def test_a_configured_api_url_always_wins(prefect_home: Path) -> None:
    (prefect_home / RECORD_NAME).write_text(json.dumps({"url": "http://127.0.0.1:1/api", "pid": 1, "log": "x"}))
    with temporary_settings(updates={PREFECT_API_URL: "http://prefect.example:4200/api"}):
        choice = choose_api()
    assert (choice.url, choice.source) == ("http://prefect.example:4200/api", "PREFECT_API_URL")


def test_without_a_server_prefect_starts_a_temporary_one(prefect_home: Path) -> None:
    choice = choose_api()
    assert (choice.url, choice.source, choice.note) == (None, "temporary server", None)


def test_a_dead_remembered_server_is_reported_and_not_used(prefect_home: Path) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    server = LocalServer(url="http://127.0.0.1:9/api", pid=finished.pid, log=str(prefect_home / "x.log"))
    (prefect_home / RECORD_NAME).write_text(json.dumps(asdict(server)))
    assert not server.running()
    choice = choose_api()
    assert choice.source == "temporary server" and choice.url is None
    assert choice.note is not None and "does not answer" in choice.note and "speechtok server stop" in choice.note


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _speechtok(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "flows.cli", *args]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.integration
def test_server_start_is_used_by_flow_commands_and_stop_leaves_nothing(tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    corpus = tmp_path / "corpus"
    samples, regions = tone_with_pauses([2.0, 3.0])
    write_entry(corpus, "12", "3", "chapter_01_reader_64kb", samples, regions)

    started = _speechtok(env, "server", "start", "--port", str(_free_port()))
    try:
        assert started.returncode == 0, started.stderr
        record = json.loads((home / RECORD_NAME).read_text())
        assert "(speechtok server)" in _speechtok(env, "server", "status").stderr

        shard = _speechtok(env, "shard", str(corpus), str(tmp_path / "out"), "--json")
        assert shard.returncode == 0, shard.stderr
        summary = json.loads(shard.stdout)
        assert (summary["files"], summary["sharded_files"], summary["shards_written"]) == (1, 1, 1)
        assert "Starting temporary server" not in shard.stderr
        flows = httpx.post(f"{record['url']}/flows/filter", json={}, timeout=10).json()
        assert "shard_corpus" in {flow["name"] for flow in flows}  # the run went to the remembered server
    finally:
        stopped = _speechtok(env, "server", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not (home / RECORD_NAME).exists()
    deadline = time.monotonic() + 20
    while LocalServer(**record).running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not LocalServer(**record).running(), f"server process {record['pid']} still running"
