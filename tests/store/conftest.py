"""The store fixtures: one ``store`` per implementation, with a clock the test moves by hand.

Each implementation comes with a harness that opens it and *reopens* it: a new store object
over the same data (the same file for SQLite, the same ``MemoryData`` for memory, a new client
on the same key prefix for Redis), as a daemon restarting would.

Redis is expected: a real ``redis-server`` at ``FLOWENGINE_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``). When none answers there, every Redis test *fails* with how to
start one; ``FLOWENGINE_REDIS_URL=off`` is the only way to leave Redis out (its tests are then
skipped, saying so). Each test uses its own key prefix and deletes its keys when it ends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import redis
import redis.asyncio

from flowengine.store import MemoryData, MemoryStore, RedisStore, SQLiteStore, Store
from flowengine.store.redis_io import redis_url

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_SETTING = os.environ.get("FLOWENGINE_REDIS_URL", "").strip() or DEFAULT_REDIS_URL
REDIS_URL: str | None = None if _SETTING.lower() == "off" else redis_url(_SETTING)[0]
"""Where the tests' Redis is (without a prefix), or None when FLOWENGINE_REDIS_URL=off."""

NO_REDIS = """\
Redis is expected at {url} for the store's tests, and it does not answer: {error}
Start one (loopback, nothing kept on disk):
    redis-server --port 6379 --bind 127.0.0.1 --save "" --appendonly no --daemonize yes
or point FLOWENGINE_REDIS_URL at one (redis://host:port/db); .ci/run starts one by itself.
FLOWENGINE_REDIS_URL=off leaves the Redis tests out (they are skipped, not passed)."""

EPOCH = 1_767_225_600.0


class FakeClock:
    """Wall-clock seconds that move only when told."""

    def __init__(self, now: float = EPOCH) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Harness:
    """Opens a store, and reopens it over the same data after closing the current one."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.current: Store | None = None

    async def open(self) -> Store:
        raise NotImplementedError

    async def reopen(self) -> Store:
        if self.current is not None:
            await self.current.close()
        self.current = await self.open()
        return self.current

    async def close(self) -> None:
        if self.current is not None:
            await self.current.close()
            self.current = None


class MemoryHarness(Harness):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.data = MemoryData()

    async def open(self) -> Store:
        return MemoryStore(self.data, clock=self.clock)


class SQLiteHarness(Harness):
    def __init__(self, clock: FakeClock, path: Path) -> None:
        super().__init__(clock)
        self.path = path

    async def open(self) -> Store:
        return await SQLiteStore.open(self.path, clock=self.clock)


class RedisHarness(Harness):
    """A Redis store on a key prefix of its own; closing it deletes every key of the prefix."""

    def __init__(self, clock: FakeClock, url: str) -> None:
        super().__init__(clock)
        self.url = url
        self.prefix = unique_prefix()

    async def open(self) -> Store:
        return await RedisStore.open(with_prefix(self.url, self.prefix), clock=self.clock)

    async def close(self) -> None:
        await super().close()
        await drop_keys(self.url, self.prefix)


def unique_prefix() -> str:
    """A key prefix no other test (or run) uses."""
    return f"flowengine-test-{uuid.uuid4().hex[:12]}"


def with_prefix(url: str, prefix: str) -> str:
    """``url`` with the store's ``prefix`` parameter."""
    return f"{url}{'&' if '?' in url else '?'}{urlencode({'prefix': prefix})}"


async def redis_keys(url: str, prefix: str) -> list[str]:
    """Every key under ``prefix``."""
    async with redis.asyncio.Redis.from_url(url, decode_responses=True) as client:
        return [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]


async def drop_keys(url: str, prefix: str) -> int:
    """Delete every key under ``prefix``; how many there were."""
    keys = await redis_keys(url, prefix)
    async with redis.asyncio.Redis.from_url(url) as client:
        for start in range(0, len(keys), 500):
            await client.unlink(*keys[start : start + 500])
    return len(keys)


@pytest.fixture(scope="session")
def redis_server() -> str:
    """The tests' Redis URL, once it answered a PING: fails (not skips) when it does not."""
    if REDIS_URL is None:
        pytest.skip("FLOWENGINE_REDIS_URL=off: the Redis store is not tested")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    error = None
    try:
        client.ping()
    except redis.RedisError as exc:
        error = exc
    finally:
        client.close()
    if error is not None:  # failed outside the handler: the message alone, no traceback
        pytest.fail(NO_REDIS.format(url=REDIS_URL, error=error), pytrace=False)
    return REDIS_URL


HARNESSES = ("memory", "sqlite", "redis")


@pytest.fixture
def clock() -> FakeClock:
    """The stores' clock."""
    return FakeClock()


@pytest.fixture(params=HARNESSES)
async def harness(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[Harness]:
    """Each implementation in turn."""
    made: Harness
    if request.param == "memory":
        made = MemoryHarness(clock)
    elif request.param == "sqlite":
        made = SQLiteHarness(clock, tmp_path / "calls.db")
    else:
        made = RedisHarness(clock, request.getfixturevalue("redis_server"))
    yield made
    await made.close()


@pytest.fixture
async def store(harness: Harness) -> Store:
    """An open store (closed by the harness)."""
    return await harness.reopen()
