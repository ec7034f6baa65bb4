"""The store fixtures: one ``store`` per implementation, with a clock the test moves by hand.

Each implementation comes with a harness that opens it and *reopens* it: a new store object
over the same data (the same file for SQLite, the same ``MemoryData`` for memory), as a daemon
restarting would. A Redis harness joins ``HARNESSES`` when the Redis store exists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flowengine.store import MemoryData, MemoryStore, SQLiteStore, Store

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


HARNESSES = ("memory", "sqlite")


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
    else:
        made = SQLiteHarness(clock, tmp_path / "calls.db")
    yield made
    await made.close()


@pytest.fixture
async def store(harness: Harness) -> Store:
    """An open store (closed by the harness)."""
    return await harness.reopen()
