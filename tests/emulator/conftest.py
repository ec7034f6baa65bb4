"""Fixtures for the emulator's tests: a virtual clock, a recording ingress, a real client.

The ingress is an in-process Starlette app standing in for the daemon: it verifies every
webhook and pinless request with ``flowengine.daily``'s own verifiers (on the virtual clock)
and records what it accepted, in arrival order. The client is the project's ``DailyClient``
talking to the emulator over ``httpx.ASGITransport``: the real client, a fake network.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flowengine.daily import (
    NO_RETRY,
    DailyClient,
    RateLimiter,
    RoomSpec,
    SipConfig,
    WebhookError,
    parse_event,
    parse_pinless,
    pinless_verifier,
    webhook_verifier,
)
from flowengine.emulator import DEFAULT_PINLESS_SECRET, DEFAULT_WEBHOOK_SECRET, Caller, Emulator
from flowengine.runtime.ports import VirtualClock


class Ingress:
    """Verifies and records what the emulator sends; answers ``status`` (200 by default)."""

    def __init__(self, clock: VirtualClock, webhook_secret: str, pinless_secret: str) -> None:
        self.webhooks = webhook_verifier(webhook_secret, clock=clock.now)
        self.pinless = pinless_verifier(pinless_secret, clock=clock.now)
        self.events: list[dict[str, Any]] = []
        self.pinless_requests: list[dict[str, Any]] = []
        self.refused: list[str] = []
        self.status = 200
        self.on_pinless: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        self.on_event: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        self.app = Starlette(
            routes=[
                Route("/webhooks/daily", self._webhook, methods=["POST"]),
                Route("/dialin", self._dialin, methods=["POST"]),
            ]
        )

    async def _webhook(self, request: Request) -> Response:
        body = await request.body()
        try:
            self.webhooks.verify(request.headers.items(), body)
        except WebhookError as exc:
            self.refused.append(str(exc))
            return JSONResponse({"error": str(exc)}, status_code=exc.http_status)
        parse_event(body)  # the daemon's parser accepts it
        if self.status == 200:
            self.events.append(json.loads(body))
            if self.on_event is not None:
                await self.on_event(json.loads(body))
        return JSONResponse({}, status_code=self.status)

    async def _dialin(self, request: Request) -> Response:
        body = await request.body()
        try:
            self.pinless.verify(request.headers.items(), body)
        except WebhookError as exc:
            self.refused.append(str(exc))
            return JSONResponse({"error": str(exc)}, status_code=exc.http_status)
        parse_pinless(body)
        data = json.loads(body)
        self.pinless_requests.append(data)
        if self.on_pinless is not None:
            await self.on_pinless(data)
        return JSONResponse({}, status_code=self.status)

    def types(self) -> list[str]:
        """The types of the accepted webhooks, in arrival order."""
        return [e["type"] for e in self.events]

    def of(self, type_: str) -> list[dict[str, Any]]:
        """The payloads of the accepted webhooks of one type."""
        return [e["payload"] for e in self.events if e["type"] == type_]


def unlimited() -> RateLimiter:
    """A client-side limiter that never waits (the tests look at the emulator's limits)."""
    return RateLimiter(100_000, 1.0, min_interval=0.0)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def ingress(clock: VirtualClock) -> Ingress:
    return Ingress(clock, DEFAULT_WEBHOOK_SECRET, DEFAULT_PINLESS_SECRET)


@pytest.fixture
async def emu(clock: VirtualClock, ingress: Ingress) -> AsyncIterator[Emulator]:
    emulator = Emulator(clock=clock, webhook_app=ingress.app, dialin_app=ingress.app)
    yield emulator
    await emulator.aclose()


@pytest.fixture
def client(emu: Emulator) -> DailyClient:
    """The project's client on the emulator, sending each request once."""
    return emu.daily_client(retry=NO_RETRY, limiter=unlimited())


async def make_room(
    client: DailyClient, name: str = "call-1", *, sip: bool = True, dialout: bool = True
) -> Any:
    """A room for a call, as the daemon makes one."""
    return await client.create_room(
        RoomSpec(name=name, enable_dialout=dialout, sip=SipConfig() if sip else None)
    )


@pytest.fixture
async def http(emu: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """Raw HTTP to the emulator, authorised, for what the client would refuse to send."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emu.app),
        base_url="http://localhost",
        headers={"Authorization": f"Bearer {emu.api_key}"},
    ) as raw:
        yield raw


async def connect_caller(
    emu: Emulator,
    client: DailyClient,
    *,
    from_: str = "+14155550123",
    caller: Caller | None = None,
    room: str = "call-1",
) -> str:
    """A pinless caller connected to ``room``, as the daemon would do it; its session id."""
    emu.limits(False)
    made = await make_room(client, room)
    await emu.advance(1)  # dialin.ready
    call = await emu.place_call("+18005550100", from_, caller=caller)
    await client.pinless_call_update(call.call_id, call.call_domain, made.sip_endpoint)
    await emu.advance(1)
    assert call.session_id is not None
    return call.session_id
