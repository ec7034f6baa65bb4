"""``flowengine serve``: settings, flows, store and Daily client, then uvicorn.

Where it sits: the command line's entry to the daemon (registered on ``flowengine.cli``). It
checks the settings and every flow before anything listens: a problem is printed as a message
(the flows' diagnostics in full) with exit code 2 or 1, never a traceback. uvicorn runs with
``uvloop`` and ``httptools`` when they are installed (``uvicorn[standard]``), which the
benchmarks measured at three times the throughput of the defaults; SIGTERM and Ctrl-C go
through uvicorn's graceful shutdown, which runs the daemon's drain (``Daemon.stop``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from types import FrameType
from typing import Any

import click


def _choice(module: str, fast: str, default: str) -> str:
    return fast if importlib.util.find_spec(module) is not None else default


async def _serve(settings: Any) -> None:
    import uvicorn

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            # uvicorn raises the signal again once it has stopped, so the process dies of it;
            # here the drain is the whole shutdown, and a drained daemon exits 0.
            self._captured_signals.clear()

    from ..daily import DailyClient
    from ..store import open_store
    from .app import Daemon
    from .flows import FlowCatalog

    catalog = FlowCatalog.load(settings.flows)
    if not settings.shared:
        _ensure_parent(settings.store)
    store = await open_store(settings.store)
    daily = DailyClient(settings.daily_api_key, base_url=settings.daily_api_url)
    try:
        daemon = Daemon(settings, store=store, daily=daily, catalog=catalog)
        config = uvicorn.Config(
            daemon.app(),
            host=settings.host,
            port=settings.port,
            loop=_choice("uvloop", "uvloop", "asyncio"),
            http=_choice("httptools", "httptools", "h11"),
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        await _Server(config).serve()
    finally:
        await daily.aclose()
        await store.close()


def _ensure_parent(store: str) -> None:
    from pathlib import Path

    from ..store import MEMORY, sqlite_path

    path = sqlite_path(store)
    if path != MEMORY and "://" not in str(path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--flows", "flows", default="flows", show_default=True, help="Folder of flows.")
@click.option("--store", default=None, help="SQLite path or URL [default: .flowengine/calls.db].")
@click.option(
    "--log-format", type=click.Choice(["json", "console"]), default=None, help="Log lines."
)
@click.option("--reload-interval", default=2.0, show_default=True, help="0 turns reload off.")
@click.option("--drain-timeout", default=10.0, show_default=True, help="Seconds to drain.")
@click.option(
    "--lease-ttl",
    default=15.0,
    show_default=True,
    help="Several daemons on Redis: seconds before a dead daemon's calls are taken over.",
)
@click.option(
    "--keep-ended",
    default=30.0,
    show_default=True,
    help="Days an ended call stays in the store; 0 keeps it for good.",
)
@click.option("--owner", default=None, help="This daemon's name among several [default: host:pid].")
@click.option(
    "--room-agent",
    type=click.Choice(["auto", "daily", "off"]),
    default=None,
    help="An in-room participant per call [default: auto: daily when daily-python is installed].",
)
def serve(
    host: str,
    port: int,
    flows: str,
    store: str | None,
    log_format: str | None,
    reload_interval: float,
    drain_timeout: float,
    lease_ttl: float,
    keep_ended: float,
    owner: str | None,
    room_agent: str | None,
) -> None:
    """Run the daemon: Daily webhooks and dial-in in, durable calls, metrics.

    Secrets come from the environment: DAILY_API_KEY, DAILY_WEBHOOK_SECRET,
    DAILY_PINLESS_SECRET, FLOWENGINE_API_TOKEN (DAILY_API_URL points at an emulator).
    FLOWENGINE_ROOM_AGENT is --room-agent's default.
    """
    from ..errors import FlowEngineError, FlowValidationError
    from . import logs
    from .settings import load_settings

    fmt = log_format or ("console" if sys.stdout.isatty() else "json")
    try:
        settings = load_settings(
            flows=flows,
            host=host,
            port=port,
            store=store,
            log_format=fmt,
            reload_interval=reload_interval,
            drain_timeout=drain_timeout,
            lease_ttl=lease_ttl,
            owner=owner,
            keep_ended=keep_ended,
            room_agent=room_agent,
        )
        logs.configure(settings.log_format)
        asyncio.run(_serve(settings))
    except FlowValidationError as exc:
        for diagnostic in exc.diagnostics:
            click.echo(diagnostic.render(), err=True)
        click.echo("flowengine: error: the flows have errors; the daemon did not start", err=True)
        sys.exit(1)
    except FlowEngineError as exc:
        click.echo(f"flowengine: error: {exc}", err=True)
        sys.exit(exc.exit_code)
