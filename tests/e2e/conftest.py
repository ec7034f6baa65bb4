"""End-to-end over real HTTP on loopback: the emulator, ``flowengine serve`` and a fake CRM.

The servers run as the demo runs them (``flowengine.harness.Stack``): the emulator in this
process on a free port of 127.0.0.1, the daemon as a ``flowengine serve`` child process on a
SQLite file, the bridge carrying key presses between them. account-lookup and verify-pin call
business systems on ``billing.example.com`` and ``id.example.com``; the tests serve a copy of
the flows in which those URLs point at ``FakeCrm``, a small Starlette app on loopback, with
``allowed_hosts: ["127.0.0.1"]`` to match (the URLs are literal in the flows, so a variable
could not move them). support-line's ``hours_override`` is ``open`` in the copy, so the line
is open whatever the hour the suite runs at.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from flowengine.harness import copy_flows, free_port

FLOWS = Path(__file__).resolve().parents[2] / "flows"


class _Quiet(uvicorn.Server):
    """uvicorn inside the test's loop: the signals stay with pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class FakeCrm:
    """The billing system and the identity service of account-lookup and verify-pin."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        app = Starlette(
            routes=[
                Route("/v2/accounts/lookup", self.lookup, methods=["GET"]),
                Route("/v1/pin-checks", self.pin_check, methods=["POST"]),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = _Quiet(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def lookup(self, request: Request) -> JSONResponse:
        self.requests.append(("GET", request.url.path, dict(request.query_params)))
        return JSONResponse({"status": "active", "balance": "84.20", "due_date": "June 14"})

    async def pin_check(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(("POST", request.url.path, body))
        if body.get("pin") == "4321":
            return JSONResponse({"result": "match", "first_name": "Dana"})
        return JSONResponse({"result": "no_match"})

    async def __aenter__(self) -> FakeCrm:
        self._task = asyncio.create_task(self.server.serve())
        async with asyncio.timeout(10):
            while not self.server.started:  # noqa: ASYNC110 - uvicorn offers a flag only
                await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        if self._task is not None:
            async with asyncio.timeout(10):
                await self._task


@pytest.fixture
async def crm() -> AsyncIterator[FakeCrm]:
    """The fake business systems, served on loopback for the test."""
    async with FakeCrm() as server:
        yield server


@pytest.fixture
def flows(tmp_path: Path, crm: FakeCrm) -> Path:
    """The example flows, as the daemon serves them in these tests (see the module docstring)."""
    return copy_flows(
        FLOWS,
        tmp_path / "flows",
        var_defaults={"support-line": {"hours_override": "open"}},
        replace={
            "account-lookup": {
                "https://billing.example.com": crm.url,
                "allowed_hosts: [billing.example.com]": 'allowed_hosts: ["127.0.0.1"]',
            },
            "verify-pin": {
                "https://id.example.com": crm.url,
                "allowed_hosts: [id.example.com]": 'allowed_hosts: ["127.0.0.1"]',
            },
        },
    )
