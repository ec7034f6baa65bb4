"""Leases, timer claims and wake-ups of a store that one process holds, kept in memory.

``MemoryStore`` and ``SQLiteStore`` use it. A SQLite file is held by one process (its lock
file sees to it), so its leases need not outlive the process: a restarted daemon starts with
none and takes each call's lease again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from .base import DueTimer, Lease, LeaseLostError, check_positive
from .errors import StoreError

_SWEEP_EVERY = 1024
"""Grants between two sweeps of lapsed leases (keeps the table from growing)."""


class LocalLeases:
    """Leases, timer claims and wake-ups of a store that one process holds, kept in memory.

    They have the Redis store's semantics (a lease is exclusive, lapses by the store's clock
    unless renewed, each grant has a larger token, a write with a stale token is refused), so
    a daemon runs the same code on every store. With one process there is one owner, which
    always gets its leases; a restarted process starts with none and takes them again. A lock
    guards them because ``SQLiteStore`` checks fences in its writer thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[str, Lease] = {}
        self._token = 0
        self._grants = 0
        self._claims: dict[tuple[str, str], tuple[float, float]] = {}
        """(call, timer) -> (the deadline claimed, claimed until)."""
        self._woken: dict[str, dict[str, None]] = {}
        """Owner -> calls to look at, in order (a dict: each call once)."""
        self._events: dict[str, asyncio.Event] = {}

    def acquire(self, call_id: str, owner: str, ttl: float, now: float) -> int | None:
        """See ``Store.acquire_lease``."""
        check_positive("lease TTL", ttl)
        if not owner:
            raise StoreError("a lease owner must not be empty")
        with self._lock:
            self._grants += 1
            if self._grants % _SWEEP_EVERY == 0:
                for lapsed in [c for c, lease in self._leases.items() if lease.expires_at <= now]:
                    del self._leases[lapsed]
            held = self._live(call_id, now)
            if held is not None and held.owner != owner:
                return None
            if held is None:
                self._token += 1
            token = self._token if held is None else held.token
            self._leases[call_id] = Lease(call_id, owner, token, now + ttl)
            return token

    def renew(self, call_id: str, owner: str, token: int, ttl: float, now: float) -> bool:
        """See ``Store.renew_lease``."""
        check_positive("lease TTL", ttl)
        with self._lock:
            held = self._live(call_id, now)
            if held is None or (held.owner, held.token) != (owner, token):
                return False
            self._leases[call_id] = replace(held, expires_at=now + ttl)
            return True

    def release(self, call_id: str, owner: str, token: int, now: float) -> bool:
        """See ``Store.release_lease``."""
        with self._lock:
            held = self._leases.get(call_id)
            if held is None or (held.owner, held.token) != (owner, token):
                return False
            del self._leases[call_id]  # ours, even lapsed: nobody took it since
            return held.expires_at > now

    def live(self, call_id: str, now: float) -> Lease | None:
        """See ``Store.lease``."""
        with self._lock:
            return self._live(call_id, now)

    def check(self, call_id: str, fence: int | None, now: float) -> None:
        """Refuse a write whose ``fence`` is not the call's live lease (``None``: no check).

        Raises:
            LeaseLostError: the lease lapsed, or another grant holds it.
        """
        if fence is None:
            return
        with self._lock:
            held = self._live(call_id, now)
        if held is None or held.token != fence:
            raise LeaseLostError(call_id, fence, None if held is None else held.token)

    def claim(
        self, due: Sequence[DueTimer], now: float, hold: float, limit: int | None
    ) -> list[DueTimer]:
        """See ``Store.claim_timers``; ``due`` is every due timer, earliest first."""
        check_positive("claim hold", hold)
        with self._lock:
            for key in [k for k, (_, until) in self._claims.items() if until <= now]:
                del self._claims[key]
            out: list[DueTimer] = []
            for timer in due:
                if limit is not None and len(out) >= limit:
                    break
                key = (timer.call_id, timer.timer_id)
                claimed = self._claims.get(key)
                # A claim covers the deadline it was made for: a timer set again is new.
                if claimed is not None and claimed[0] == timer.deadline:
                    continue
                self._claims[key] = (timer.deadline, now + hold)
                out.append(timer)
            return out

    def wake(self, call_id: str, by: str | None, now: float) -> None:
        """Tell the call's lease holder, unless it is ``by``, that its inbox has news."""
        held = self.live(call_id, now)
        if held is None or held.owner == by:
            return
        self._woken.setdefault(held.owner, {})[call_id] = None
        event = self._events.get(held.owner)
        if event is not None:
            event.set()

    async def wakeups(self, owner: str, wait: float) -> list[str]:
        """See ``Store.wakeups``."""
        if not self._woken.get(owner) and wait > 0:
            event = self._events.setdefault(owner, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), wait)
            self._events.pop(owner, None)
        return list(self._woken.pop(owner, {}))

    def _live(self, call_id: str, now: float) -> Lease | None:
        held = self._leases.get(call_id)
        return held if held is not None and held.expires_at > now else None


class LocalLeaseMethods:
    """The Store methods for leases, timer claims and wake-ups, over a ``LocalLeases``.

    Mixed into ``MemoryStore`` and ``SQLiteStore``, which provide ``local_leases`` (theirs),
    ``_clock``, ``_check_open`` and ``due_timers``.
    """

    _clock: Callable[[], float]

    @property
    def local_leases(self) -> LocalLeases:
        """The store's leases, timer claims and wake-ups."""
        raise NotImplementedError

    def _check_open(self) -> None:
        raise NotImplementedError

    async def due_timers(self, now: float, *, limit: int | None = None) -> list[DueTimer]:
        raise NotImplementedError

    async def acquire_lease(self, call_id: str, owner: str, ttl: float) -> int | None:
        """See ``Store.acquire_lease``."""
        self._check_open()
        return self.local_leases.acquire(call_id, owner, ttl, self._clock())

    async def renew_lease(self, call_id: str, owner: str, token: int, ttl: float) -> bool:
        """See ``Store.renew_lease``."""
        self._check_open()
        return self.local_leases.renew(call_id, owner, token, ttl, self._clock())

    async def release_lease(self, call_id: str, owner: str, token: int) -> bool:
        """See ``Store.release_lease``."""
        self._check_open()
        return self.local_leases.release(call_id, owner, token, self._clock())

    async def lease(self, call_id: str) -> Lease | None:
        """See ``Store.lease``."""
        self._check_open()
        return self.local_leases.live(call_id, self._clock())

    async def claim_timers(
        self, now: float, *, hold: float, limit: int | None = None
    ) -> list[DueTimer]:
        """See ``Store.claim_timers``."""
        due = await self.due_timers(now)
        return self.local_leases.claim(due, now, hold, limit)

    async def wakeups(self, owner: str, *, wait: float) -> list[str]:
        """See ``Store.wakeups``."""
        self._check_open()
        return await self.local_leases.wakeups(owner, wait)
