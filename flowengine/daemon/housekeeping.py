"""Housekeeping: ended calls leave the store once they are older than ``--keep-ended``.

Where it sits: beside the app, over ``Store.purge_ended``. Every ended call keeps its
snapshot, journal and outbox in the store (``GET /v1/calls/{id}`` and its trace read them)
until it has been ended for ``keep`` seconds; then a purge deletes it. The purge runs when the
daemon starts and every ``PURGE_EVERY`` seconds after, on the daemon's clock. Live calls are
never purged, nor are flow versions. With several daemons on one store each one purges:
deleting what is already deleted is a no-op, so they need no coordination.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from ..runtime.ports import Clock, sleep_on
from ..store import Store, StoreError

log = structlog.get_logger("flowengine.daemon.housekeeping")

PURGE_EVERY = 3600.0
"""Seconds between two purges."""
DAY = 86400.0


class Housekeeping:
    """Purges the calls that ended more than ``keep`` seconds ago, now and then.

    Args:
        store: the daemon's store.
        clock: the daemon's clock (what "ago" is measured on, and when the next purge runs).
        keep: seconds an ended call stays in the store; must be positive.
    """

    def __init__(self, store: Store, clock: Clock, keep: float) -> None:
        if not keep > 0:
            raise ValueError(f"an ended call's time in the store must be positive, not {keep!r}")
        self.store = store
        self.clock = clock
        self.keep = keep
        self.purged = 0
        """Calls purged since the daemon started."""
        self.rounds = 0
        """Purges run since the daemon started."""
        self._task: asyncio.Task[None] | None = None

    async def purge(self) -> int:
        """Delete every call that ended more than ``keep`` seconds ago; how many there were."""
        count = await self.store.purge_ended(self.clock.now() - self.keep)
        self.purged += count
        self.rounds += 1
        if count:
            log.info("ended calls purged", purged=count, keep_days=round(self.keep / DAY, 3))
        return count

    def start(self) -> None:
        """Purge now, then every ``PURGE_EVERY`` seconds, until ``stop``."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop purging (a purge under way is cancelled; it deletes whole calls or nothing)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.purge()
            except StoreError as exc:  # the next round tries again
                log.warning("ended calls not purged", reason=str(exc))
            await sleep_on(self.clock, PURGE_EVERY)
