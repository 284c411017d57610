"""Start-up cost of `speechtok` commands (issue 11): wall seconds from exec to exit, this tree against a baseline tree.

Everything runs in one session, as subprocesses, interleaved, `--repeats` times each; the median and the best run
are reported, and each figure's ratio to the same command on the baseline tree:

1. Floors: `python -c pass`, `import prefect`, `import torch` (what any command using them pays at least).
2. `speechtok --help`.
3. `speechtok shard` of a one-file corpus (`speechtok sample-corpus --speakers 1 --minutes 0.1`, 6 s of audio):
   with no PREFECT_API_URL (Prefect starts a temporary server for the command), and with `speechtok server start`
   running (this tree only: the baseline has no such command; `PREFECT_API_URL` pointing at the same server is
   shown for it instead).
4. Where this tree's `shard` time goes, measured inside one process: importing `flows.cli` and `flows.shard`,
   importing Prefect's server app and starting + stopping Prefect's temporary server (what `get_client` does when
   no API is configured).

The baseline tree is `--baseline` (a git revision, default a5e3eeb: the last commit before issue 11's start-up work)
extracted with `git archive`; both trees run on the same interpreter and packages (PYTHONPATH selects the tree).
PREFECT_HOME is a temporary directory (two: one where `speechtok server start` ran, one where it did not), each
database migrated before timing, so nothing touches ~/.prefect. The
machine's load is printed: on a shared 2-core machine the spread between runs is large. Never asserted in tests.

    .venv/bin/python benchmarks/startup.py [--repeats 3] [--baseline REV]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BASELINE = "a5e3eeb"  # main before issue 11's start-up work
TIMEOUT_S = 600
SERVER_RUNNING = "speechtok shard, `speechtok server` running"
TEMPORARY = "speechtok shard, temporary Prefect server"
# What the user ran before: the remembered server replaces a temporary server per command.
BASELINE_OF = {SERVER_RUNNING: TEMPORARY}

PHASES_SCRIPT = """
import json, time
t0 = time.perf_counter()
import flows.cli
t1 = time.perf_counter()
import flows.shard
t2 = time.perf_counter()
from prefect.server.api.server import SubprocessASGIServer
t3 = time.perf_counter()
server = SubprocessASGIServer()
server.start()
t4 = time.perf_counter()
server.stop()
t5 = time.perf_counter()
print(json.dumps({"import flows.cli": t1 - t0, "import flows.shard (torch, prefect)": t2 - t1,
                  "import Prefect's server app": t3 - t2, "temporary server start": t4 - t3,
                  "temporary server stop": t5 - t4}))
"""


@dataclass
class Timings:
    """Wall seconds of the runs of one command on one tree."""

    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def best(self) -> float:
        return min(self.runs)


def environment(tree: Path, prefect_home: Path, api_url: str | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(tree), "PREFECT_HOME": str(prefect_home)}
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env.pop("PREFECT_API_URL", None)
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    return env


def timed(command: Sequence[str], env: dict[str, str], cwd: Path) -> float:
    """Wall seconds of one run; fails loudly (with its stderr) when the command fails."""
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return elapsed


def extract(revision: str, into: Path) -> Path | None:
    """The tree at `revision` under `into` (None when git cannot produce it)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision], capture_output=True, timeout=TIMEOUT_S)
    if archive.returncode != 0:
        print(f"no baseline: git archive {revision} failed: {archive.stderr.decode().strip()}", file=sys.stderr)
        return None
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True, timeout=TIMEOUT_S)
    return into


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision to compare with")
    args = parser.parse_args()
    python = sys.executable
    work = Path(tempfile.mkdtemp(prefix="speechtok-startup-"))
    home = work / "prefect-home"  # no `speechtok server` here: flow commands start a temporary server
    server_home = work / "prefect-home-server"  # `speechtok server start` ran here
    trees = {"this tree": REPO}
    baseline = extract(args.baseline, work / "baseline")
    if baseline is not None:
        trees[f"baseline {args.baseline}"] = baseline
    cli = [python, "-m", "flows.cli"]
    corpus, out = work / "corpus", work / "out"
    try:
        subprocess.run(
            [*cli, "sample-corpus", str(corpus), "--speakers", "1", "--minutes", "0.1"],
            env=environment(REPO, home),
            check=True,
            capture_output=True,
            timeout=TIMEOUT_S,
        )
        shard = [*cli, "shard", str(corpus), str(out), "--no-progress"]
        timed(shard, environment(REPO, home), work)  # warm-up: migrates the temporary PREFECT_HOME's database
        port = free_port()
        start = [*cli, "server", "start", "--port", str(port)]
        subprocess.run(start, env=environment(REPO, server_home), check=True, capture_output=True, timeout=TIMEOUT_S)
        server_url = f"http://127.0.0.1:{port}/api"
        commands: dict[str, tuple[list[str], str | None, bool]] = {  # name: command, API URL, baseline too
            "python -c pass": ([python, "-c", "pass"], None, False),
            "import prefect": ([python, "-c", "import prefect"], None, False),
            "import torch": ([python, "-c", "import torch"], None, False),
            "speechtok --help": ([*cli, "--help"], None, True),
            TEMPORARY: (shard, None, True),
            "speechtok shard, PREFECT_API_URL = local server": (shard, server_url, True),
        }
        results: dict[tuple[str, str], Timings] = {}
        for _ in range(args.repeats):
            for name, (command, api_url, on_baseline) in commands.items():
                for label, tree in trees.items() if on_baseline else [("this tree", REPO)]:
                    env = environment(tree, home, api_url)
                    shutil.rmtree(out, ignore_errors=True)
                    results.setdefault((name, label), Timings()).runs.append(timed(command, env, work))
            # This tree's own path to the same server: `speechtok server start` remembered it, no PREFECT_API_URL.
            shutil.rmtree(out, ignore_errors=True)
            remembered = results.setdefault((SERVER_RUNNING, "this tree"), Timings())
            remembered.runs.append(timed(shard, environment(REPO, server_home), work))
        subprocess.run([*cli, "server", "stop"], env=environment(REPO, server_home), check=True, capture_output=True)
        phases = [
            json.loads(
                subprocess.run(
                    [python, "-c", PHASES_SCRIPT],
                    env=environment(REPO, home),
                    cwd=work,
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=TIMEOUT_S,
                ).stdout.splitlines()[-1]
            )
            for _ in range(args.repeats)
        ]
    finally:
        subprocess.run([*cli, "server", "stop"], env=environment(REPO, server_home), capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {args.repeats} runs each, wall seconds")
    print(f"{'command':52s} {'tree':18s} {'median':>7s} {'best':>7s} {'vs baseline':>11s}")
    for (name, label), timing in results.items():
        base = results.get((BASELINE_OF.get(name, name), f"baseline {args.baseline}"))
        ratio = f"{timing.median / base.median:10.2f}×" if base and label == "this tree" else ""
        print(f"{name:52s} {label:18s} {timing.median:7.2f} {timing.best:7.2f} {ratio:>11s}")
    print("\nwhere `speechtok shard` spends its start-up (this tree, in one process, median):")
    for phase in phases[0]:
        print(f"  {phase:42s} {statistics.median(p[phase] for p in phases):6.2f} s")


if __name__ == "__main__":
    main()
