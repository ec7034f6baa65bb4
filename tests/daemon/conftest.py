"""The daemon's test harness: the app, the emulator and SQLite, in one process, on one clock.

Everything is in-process (``httpx.ASGITransport``): the emulator posts its webhooks and
pinless requests into the daemon's app, and the daemon's ``DailyClient`` talks to the
emulator's app. A ``VirtualClock`` drives both, so timers and far-end scripts run instantly.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from flowengine.daemon.app import Daemon
from flowengine.daemon.settings import Settings
from flowengine.daily import NO_RETRY, DailyClient, Secret
from flowengine.emulator import Emulator
from flowengine.emulator.emulator import DEFAULT_PINLESS_SECRET, DEFAULT_WEBHOOK_SECRET
from flowengine.runtime.ports import VirtualClock
from flowengine.store import SQLiteStore, Store

FLOWS = Path(__file__).parent / "flows"
TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BASE = "http://daemon.test"


class NoPacing:
    """A limiter that never waits (the emulator's own limits are switched off too)."""

    async def acquire(self) -> None:
        return None


def settings(flows: Path, **kw: object) -> Settings:
    """Settings for a test daemon (hot reload off unless asked)."""
    options: dict[str, object] = {
        "flows": flows,
        "daily_api_key": Secret("emulator-api-key"),
        "webhook_secret": Secret(DEFAULT_WEBHOOK_SECRET),
        "pinless_secret": Secret(DEFAULT_PINLESS_SECRET),
        "api_token": Secret(TOKEN),
        "reload_interval": 0.0,
        "drain_timeout": 5.0,
    }
    options.update(kw)
    return Settings(**options)  # type: ignore[arg-type]


class Rig:
    """An emulator and a daemon wired to each other."""

    def __init__(self, flows: Path, db: Path, clock: VirtualClock) -> None:
        self.flows, self.db, self.clock = flows, db, clock
        self.emu = Emulator(clock=clock)
        self.emu.limits(False)
        self.daemon: Daemon | None = None
        self.store: Store | None = None
        self.client: httpx.AsyncClient | None = None

    async def start_daemon(self, daily: DailyClient | None = None, **kw: object) -> Daemon:
        self.store = await SQLiteStore.open(self.db, clock=self.clock.now)
        daily = daily or self.emu.daily_client(retry=NO_RETRY, limiter=NoPacing())
        self.daemon = Daemon(
            settings(self.flows, **kw), store=self.store, daily=daily, clock=self.clock
        )
        app = self.daemon.app()
        self.emu.set_webhook_target(f"{BASE}/daily/webhooks", app)
        self.emu.set_dialin_target(f"{BASE}/daily/dialin", app)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
        await self.daemon.start()
        return self.daemon

    async def stop_daemon(self) -> None:
        assert self.daemon is not None
        assert self.store is not None
        assert self.client is not None
        await self.daemon.stop()
        await self.client.aclose()
        await self.store.close()
        self.emu.set_webhook_target(None)
        self.emu.set_dialin_target(None)
        self.daemon = None

    async def kill_daemon(self) -> None:
        """Stop the daemon as SIGKILL would: work in flight is cut off, nothing drained."""
        assert self.daemon is not None
        assert self.store is not None
        assert self.client is not None
        await self.daemon.engine.aclose()
        for task in list(self.daemon.persistence.background):
            task.cancel()
        await self.client.aclose()
        await self.store.close()
        self.emu.set_webhook_target(None)
        self.emu.set_dialin_target(None)
        self.daemon = None

    async def settle(self) -> None:
        """Run until the emulator and the daemon are both quiet."""
        assert self.daemon is not None
        for _ in range(50):
            await self.emu.settle()
            await self.daemon.engine.idle()
            await self.daemon.persistence.drain()
            await self.emu.settle()
            if not self.emu.outbox.pending and not self.daemon.engine._pending:
                return

    async def advance(self, seconds: float, step: float = 0.5) -> None:
        """Move time on in small steps, settling after each."""
        moved = 0.0
        while moved < seconds:
            await self.emu.advance(min(step, seconds - moved))
            await self.settle()
            moved += step


@pytest.fixture
def flows_dir(tmp_path: Path) -> Path:
    """A copy of the test flows the test may edit."""
    folder = tmp_path / "flows"
    shutil.copytree(FLOWS, folder)
    return folder


@pytest.fixture
async def rig(tmp_path: Path, flows_dir: Path) -> AsyncIterator[Rig]:
    """A started daemon on a fresh SQLite file, with the emulator."""
    rig = Rig(flows_dir, tmp_path / "calls.db", VirtualClock())
    await rig.start_daemon()
    yield rig
    if rig.daemon is not None:
        await rig.stop_daemon()
    await rig.emu.aclose()
