"""Serving the emulator over HTTP with uvicorn, on loopback unless told otherwise.

``EmulatorServer`` runs one ``Emulator`` either blocking (``run()``, for the command line;
``stop()`` from another thread ends it) or inside a running event loop (``async with
EmulatorServer(...)``, for end-to-end tests). Port 0 picks a free port; ``url`` says which.
``main(argv)`` is the command line (``flowengine emulator``); secrets come from the same
environment variables the daemon reads (``DAILY_API_KEY``, ``DAILY_WEBHOOK_SECRET``,
``DAILY_PINLESS_SECRET``), so one environment configures both sides of a demo.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from flowengine.emulator.emulator import (
    DEFAULT_API_KEY,
    DEFAULT_PINLESS_SECRET,
    DEFAULT_WEBHOOK_SECRET,
    Emulator,
)
from flowengine.emulator.farends import FarEnds, ScriptError
from flowengine.emulator.faults import Faults

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
START_TIMEOUT = 10.0


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves SIGINT and SIGTERM to the owner of the running loop.

    uvicorn installs its own handlers while it serves (in the main thread); inside someone
    else's loop (``async with EmulatorServer(...)``) that would take Ctrl-C away from the
    program embedding the emulator, and raise the signal again once the server stops.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmulatorServer:
    """uvicorn serving ``emulator.app`` at ``host:port``."""

    def __init__(
        self,
        emulator: Emulator,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        log_level: str = "warning",
    ) -> None:
        self.emulator = emulator
        self.host = host
        self.port = port
        config = uvicorn.Config(
            emulator.app, host=host, port=port, log_level=log_level, lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.started = threading.Event()
        """Set once the socket listens (for ``run()`` in a thread)."""
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (the real port once started)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Daily's API root on this server, for ``DailyClient(base_url=...)``."""
        return f"{self.url}/v1"

    def run(self) -> None:
        """Serve until ``stop()`` (or Ctrl-C in the main thread)."""
        asyncio.run(self._serve())

    def stop(self) -> None:
        """Ask the server to finish its requests and stop (safe from any thread)."""
        self.server.should_exit = True

    async def _serve(self) -> None:
        task = asyncio.ensure_future(self.server.serve())
        with contextlib.suppress(TimeoutError):
            await self._wait_started(task)
        await task

    async def _wait_started(self, task: asyncio.Future[None]) -> None:
        async with asyncio.timeout(START_TIMEOUT):
            # uvicorn offers a flag, not an event, for "listening".
            while not self.server.started and not task.done():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        if self.server.started:
            servers = getattr(self.server, "servers", [])
            if servers and servers[0].sockets:
                self.port = int(servers[0].sockets[0].getsockname()[1])
            self.started.set()

    async def __aenter__(self) -> EmulatorServer:
        self.server = _EmbeddedServer(self.server.config)
        self._task = asyncio.ensure_future(self.server.serve())
        await self._wait_started(self._task)
        if not self.started.is_set():
            await self.__aexit__()
            raise RuntimeError(f"the emulator did not start on {self.host}:{self.port}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()
        if self._task is not None:
            async with asyncio.timeout(START_TIMEOUT):
                await self._task
            self._task = None


def run(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    emulator: Emulator | None = None,
    log_level: str = "warning",
    **options: Any,
) -> None:
    """Serve an emulator (``emulator``, or one made from ``options``) until interrupted."""
    EmulatorServer(emulator or Emulator(**options), host, port, log_level=log_level).run()


def load_script(path: Path) -> FarEnds:
    """Far ends from a YAML or JSON file: ``{numbers: {address: callee}, default: callee}``."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ScriptError(f"{path}: expected a mapping with numbers and default")
    return FarEnds.from_dict(data)


def parse_faults(items: Sequence[str], seed: int) -> Faults:
    """``Faults`` from ``name=value`` pairs (``rest_429=0.1``, ``endpoints=dialOut/start``)."""
    values: dict[str, Any] = {"seed": seed}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--fault {item!r}: expected name=value")
        values[name.strip()] = (
            frozenset(v for v in value.split(",") if v) if name == "endpoints" else float(value)
        )
    return Faults(**values)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="flowengine emulator",
        description="Serve a local Daily: REST under /v1, signed webhooks, pinless dial-in.",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (loopback)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--domain", default="emulator", help="the Daily subdomain to pretend")
    p.add_argument(
        "--webhook-url",
        action="append",
        help="where to POST signed webhooks; repeat it for several daemons (each delivery "
        "goes to one of them, drawn from --seed)",
    )
    p.add_argument(
        "--dialin-url",
        action="append",
        help="the pinless room_creation_api URL; repeatable like --webhook-url",
    )
    p.add_argument("--script", type=Path, help="far ends (YAML): numbers and default")
    p.add_argument("--seed", type=int, default=0, help="seeds ids, faults and target choices")
    p.add_argument("--fault", action="append", default=[], help="name=value, repeatable")
    p.add_argument("--no-rate-limits", action="store_true", help="switch Daily's limits off")
    p.add_argument("--log-level", default="warning")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit code (2 for bad arguments or scripts)."""
    args = _parser().parse_args(argv)
    try:
        far_ends = load_script(args.script) if args.script else FarEnds()
        faults = parse_faults(args.fault, args.seed)
    except (OSError, ValueError, TypeError, yaml.YAMLError) as exc:
        print(f"flowengine emulator: error: {exc}", file=sys.stderr)
        return 2
    emulator = Emulator(
        api_key=os.environ.get("DAILY_API_KEY") or DEFAULT_API_KEY,
        domain=args.domain,
        webhook_url=args.webhook_url,
        webhook_secret=os.environ.get("DAILY_WEBHOOK_SECRET") or DEFAULT_WEBHOOK_SECRET,
        dialin_url=args.dialin_url,
        pinless_secret=os.environ.get("DAILY_PINLESS_SECRET") or DEFAULT_PINLESS_SECRET,
        far_ends=far_ends,
        faults=faults,
        seed=args.seed,
    )
    if args.no_rate_limits:
        emulator.limits(False)
    server = EmulatorServer(emulator, args.host, args.port, log_level=args.log_level)
    print(f"Daily emulator on {server.base_url} (Ctrl-C stops it)", file=sys.stderr)
    server.run()
    return 0
