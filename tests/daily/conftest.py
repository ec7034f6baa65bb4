"""Fakes for the Daily tests: a scripted Daily behind httpx.MockTransport, and fake time."""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from flowengine.daily import DailyClient, RateLimiter, RetryPolicy

API_KEY = "dk_live_7f3c9a1e5b2d4c8f9e0a1b2c3d4e5f60"
BASE = "https://api.daily.co/v1"

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """A clock that only moves when something sleeps; every sleep is recorded."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class VirtualTime:
    """Virtual time for concurrent tasks: sleepers wake in time order as ``run`` advances."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._sleepers: list[tuple[float, int, Any]] = []
        self._seq = 0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        import asyncio

        future = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (self.now + seconds, self._seq, future))
        await future

    async def run(self, *awaitables: Any) -> list[Any]:
        """Run the awaitables as tasks, jumping time to the next wake-up whenever all wait."""
        import asyncio

        tasks = [asyncio.ensure_future(a) for a in awaitables]
        while not all(t.done() for t in tasks):
            for _ in range(50):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
            if self._sleepers and not all(t.done() for t in tasks):
                at, _, future = heapq.heappop(self._sleepers)
                self.now = max(self.now, at)
                future.set_result(None)
        return [t.result() for t in tasks]


class MockDaily:
    """Answers requests from a script, in order; records every request it receives."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.script: list[Reply] = []

    def reply(self, *replies: Reply) -> MockDaily:
        self.script.extend(replies)
        return self

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.script.pop(0) if self.script else httpx.Response(200, json={"ok": "true"})
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        return reply

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


def error(status: int, error_type: str, info: str, **headers: str) -> httpx.Response:
    """A Daily error answer: ``{"error": type, "info": text}``."""
    return httpx.Response(status, json={"error": error_type, "info": info}, headers=headers)


def raising(exc_type: type[httpx.TransportError], message: str = "boom") -> Reply:
    """A reply that raises an httpx transport error carrying the request."""

    def reply(request: httpx.Request) -> httpx.Response:
        raise exc_type(message, request=request)

    return reply


def unlimited(time: FakeTime) -> RateLimiter:
    return RateLimiter(10_000, 1.0, min_interval=0.0, clock=time.clock, sleep=time.sleep)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def daily() -> MockDaily:
    return MockDaily()


@pytest.fixture
async def make_client(daily: MockDaily, fake_time: FakeTime):
    """Build DailyClients on the mock; each is closed, with its http client, at teardown."""
    made: list[httpx.AsyncClient] = []

    def make(**options: Any) -> DailyClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(daily.handler))
        made.append(http)
        options.setdefault("limiter", unlimited(fake_time))
        options.setdefault("retry", RetryPolicy())
        return DailyClient(
            API_KEY,
            http=http,
            clock=fake_time.clock,
            sleep=fake_time.sleep,
            rand=lambda: 0.5,
            **options,
        )

    yield make
    for http in made:
        await http.aclose()


@pytest.fixture
def client(make_client: Callable[..., DailyClient]) -> DailyClient:
    return make_client()
