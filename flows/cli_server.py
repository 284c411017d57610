"""`speechtok server start | stop | status`: one local Prefect server shared by the flow commands (registered in
cli.py; the logic is in flows/prefect_server.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from flows.progress import console

server_app = typer.Typer(
    help=(
        "A local Prefect server that every flow command (shard, tokenize, train-*, evaluate, demo) uses while it "
        "runs, instead of starting a temporary one per command (about 6 s each on 2 cores). PREFECT_API_URL, when "
        "set, still wins. The server keeps the runs in PREFECT_HOME (default ~/.prefect) and serves Prefect's UI."
    ),
    no_args_is_help=True,
)


@server_app.command("start")
def start_command(
    port: Annotated[int, typer.Option(help="Port to serve the API and UI on.", min=1, max=65535)] = 4200,
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback: this machine only).")] = "127.0.0.1",
) -> None:
    """Start `prefect server start` in the background and remember its URL in PREFECT_HOME/speechtok-server.json
    (log: PREFECT_HOME/speechtok-server.log). Does nothing when the remembered server already answers."""
    from flows.prefect_server import start_local_server

    with console.status(f"starting the Prefect server on {host}:{port}"):
        try:
            server = start_local_server(host, port)
        except RuntimeError as error:
            console.print(f"[red]cannot start the Prefect server:[/red] {error}", highlight=False)
            raise typer.Exit(2) from error
    console.print(f"Prefect server running: API {server.url}, UI {server.ui_url} (pid {server.pid}, log {server.log})")
    console.print("flow commands use it while it runs; `speechtok server stop` stops it")


@server_app.command("stop")
def stop_command() -> None:
    """Stop the server started by `speechtok server start` and forget it."""
    from flows.prefect_server import stop_local_server

    stopped = stop_local_server()
    console.print("no speechtok Prefect server to stop" if stopped is None else f"stopped {stopped.url}")


@server_app.command("status")
def status_command() -> None:
    """Say which Prefect API the flow commands use now: PREFECT_API_URL, the speechtok server, or a temporary
    server per command."""
    from flows.prefect_server import choose_api

    choice = choose_api()
    where = choice.url or "a temporary server started by each flow command (`speechtok server start` avoids it)"
    console.print(f"flow runs go to {where} ({choice.source})", highlight=False)
    if choice.note:
        console.print(f"[yellow]note:[/yellow] {choice.note}", highlight=False)
