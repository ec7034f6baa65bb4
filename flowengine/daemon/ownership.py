"""Several daemons, one set of calls: who runs each call, and taking over a dead daemon's calls.

Where it sits: over the store's leases (``Store.acquire_lease``...), ``restore.take_back`` and
the call registry; used when the daemon runs on a store that several daemons share (Redis).
One store held by one process (SQLite) needs none of it, and the daemon runs without it.

The rules:

- **One runner per call.** A daemon runs a call only while it holds the call's lease; every
  write of the call and every claim of its commands carries the lease's fencing token, so a
  daemon that paused past its lease writes nothing and sends nothing more of it (the write is
  refused and the daemon drops the call).
- **Any daemon accepts.** A webhook or an in-room event for a call another daemon runs is
  journaled in the call's inbox by whichever daemon received it; the store wakes the call's
  owner (``wakeups``), which posts it from the inbox in journal order.
- **Nobody's calls are taken.** A daemon that dies stops renewing its leases; once one has
  lapsed, the call is taken back (``take_back``: rebuilt from its record, its inbox posted,
  its open commands settled without repeating a side effect) by the first daemon that has a
  reason to look at it: an event accepted for it, one of its timers coming due
  (``claim_timers``), or the sweep, which looks every ``ttl / 2`` seconds for calls with
  accepted events or open commands and no live lease.

Leases are renewed every ``ttl / 3`` seconds, all at once; a renewal refused means another
daemon runs the call now, and this one drops it (no CDR, no metrics of an ending). A call that
ended keeps its lease until it leaves memory (``keep_ended``), so the commands of its last
step are claimed under it; then the lease is released. A daemon that stops releases every
lease it holds, so the others take its calls at once instead of after ``ttl``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from ..runtime.engine import Engine
from ..runtime.ports import Clock, sleep_on
from ..runtime.session import Session
from ..store import CallRecord, Store, StoreError
from .metrics import Metrics
from .persistence import DurableTelephony, Persistence
from .restore import take_back

log = structlog.get_logger("flowengine.daemon.ownership")

WAKE_WAIT = 1.0
"""Seconds one wait for wake-ups may last (the loop notices a stop within it)."""

Tracker = Callable[[Session], None]
Dropper = Callable[[str], None]
VersionLoader = Callable[[CallRecord], Awaitable[object]]


class Ownership:
    """Leases of the calls this daemon runs, and the loops that keep and take them.

    Args:
        store: the shared store.
        engine, persistence, telephony: the daemon's (``persistence.fences`` holds the tokens).
        owner: this daemon's owner id (``settings.default_owner()``).
        ttl: the lease time in seconds.
        clock: the daemon's clock (``now`` for timer claims).
        track: the call registry's ``track`` (a call taken over is indexed and counted).
        drop: the call registry's ``drop`` (a call lost to another daemon leaves memory).
        load_version: makes the flow versions a call is pinned to known to the engine before
            it is rebuilt (versions another daemon loaded, kept in the store); optional.
        metrics: counts calls taken over and lost, and the leases held; optional.
    """

    def __init__(
        self,
        store: Store,
        *,
        engine: Engine,
        persistence: Persistence,
        telephony: DurableTelephony,
        owner: str,
        ttl: float,
        clock: Clock,
        track: Tracker,
        drop: Dropper,
        load_version: VersionLoader | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"a lease TTL must be positive, not {ttl!r}")
        self.store = store
        self.engine = engine
        self.persistence = persistence
        self.telephony = telephony
        self.owner = owner
        self.ttl = ttl
        self.clock = clock
        self.track = track
        self.drop = drop
        self.load_version = load_version
        self.metrics = metrics
        self._taking: set[str] = set()
        self.taking = True
        """False once the daemon stops: it keeps renewing what it holds, and takes nothing."""
        self._tasks: list[asyncio.Task[None]] = []
        persistence.owner = owner
        persistence.on_lost = self.lost

    @property
    def held(self) -> dict[str, int]:
        """The calls whose lease this daemon holds, with their tokens."""
        return self.persistence.fences

    # -- leases ------------------------------------------------------------------------------

    async def lease(self, call_id: str) -> int | None:
        """Take (or extend) the call's lease; its token, or ``None`` if another daemon holds it."""
        token = await self.store.acquire_lease(call_id, self.owner, self.ttl)
        if token is not None:
            self.held[call_id] = token
        return token

    async def release(self, call_id: str) -> None:
        """Give a call's lease up (it ended and left memory, or the daemon stops)."""
        token = self.held.pop(call_id, None)
        if token is None:
            return
        try:
            await self.store.release_lease(call_id, self.owner, token)
        except StoreError as exc:
            log.warning("lease not released; it lapses by itself", call_id=call_id, reason=str(exc))

    def lost(self, call_id: str) -> None:
        """A write or a renewal of the call was refused: another daemon runs it now."""
        if self.held.pop(call_id, None) is None and self.engine.get(call_id) is None:
            return
        log.warning("call lost to another daemon", call_id=call_id, owner=self.owner)
        if self.metrics is not None:
            self.metrics.calls_handed.labels("lost").inc()
        self.drop(call_id)

    # -- taking calls ------------------------------------------------------------------------

    async def take_over(self, call_id: str) -> Session | None:
        """Run a call nobody runs (its lease lapsed or was released); ``None`` if not taken."""
        if not self.taking or self.engine.get(call_id) is not None or call_id in self._taking:
            return None
        self._taking.add(call_id)
        try:
            record = await self.store.load_call(call_id)
            if record is None:
                return None
            if self.load_version is not None:
                await self.load_version(record)
            session = await take_back(
                self.engine, self.persistence, self.telephony, record, self.track, self.lease
            )
            if session is None:
                if self.engine.get(call_id) is None:
                    await self.release(call_id)  # taken, but nothing to run
                return None
            if self.metrics is not None:
                self.metrics.calls_handed.labels("taken").inc()
            log.info("call taken over", call_id=call_id, state=session.state, owner=self.owner)
            # Events accepted while the call was being rebuilt (no wake-up: the lease was
            # already this daemon's) are in the inbox; post them.
            await self.persistence.post_inbox(call_id)
            return session
        except StoreError as exc:
            log.warning("call not taken over", call_id=call_id, reason=str(exc))
            return None
        finally:
            self._taking.discard(call_id)

    async def woken(self, call_id: str) -> None:
        """Another daemon accepted events for a call: post them, or take the call over."""
        if call_id in self.held and self.engine.get(call_id) is not None:
            await self.persistence.post_inbox(call_id)
        else:
            await self.take_over(call_id)

    # -- the loops ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start renewing, listening for wake-ups, and sweeping for calls nobody runs."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._every(self.ttl / 3, self.renew_all, "renew")),
            loop.create_task(self._wake_loop()),
            loop.create_task(self._every(self.ttl / 2, self.sweep, "sweep")),
        ]

    async def stop(self, *, release: bool = True) -> None:
        """Stop the loops and (by default) release every lease held.

        ``release=False`` leaves the leases to lapse, as a daemon that died would.
        """
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if release:
            await asyncio.gather(*(self.release(call_id) for call_id in list(self.held)))

    async def renew_all(self) -> None:
        """Renew every lease held; a refused renewal drops its call."""
        held = list(self.held.items())
        if self.metrics is not None:
            self.metrics.leases_held.set(len(held))
        answers = await asyncio.gather(
            *(self.store.renew_lease(cid, self.owner, token, self.ttl) for cid, token in held),
            return_exceptions=True,
        )
        for (call_id, token), answer in zip(held, answers, strict=True):
            if answer is False and self.held.get(call_id) == token:
                self.lost(call_id)
            elif isinstance(answer, BaseException):
                log.warning("lease not renewed", call_id=call_id, reason=str(answer))

    async def sweep(self) -> None:
        """Take the calls with work waiting and no live lease; post what owned calls missed."""
        now = self.clock.now()
        candidates: dict[str, None] = {}
        for entry in await self.store.inbox():
            candidates[entry.call_id] = None
        for command in await self.store.pending_commands():
            candidates[command.call_id] = None
        for timer in await self.store.claim_timers(now, hold=self.ttl):
            candidates[timer.call_id] = None
        for call_id in candidates:
            if call_id in self.held and self.engine.get(call_id) is not None:
                await self.persistence.post_inbox(call_id)  # a wake-up that never came
            else:
                lease = await self.store.lease(call_id)
                if lease is None:
                    await self.take_over(call_id)

    async def _wake_loop(self) -> None:
        while True:
            _stop_if_cancelled()
            try:
                for call_id in await self.store.wakeups(self.owner, wait=WAKE_WAIT):
                    await self.woken(call_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a store hiccup must not stop the loop
                _stop_if_cancelled()
                log.warning("wake-ups not read", reason=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(WAKE_WAIT)

    async def _every(self, interval: float, work: Callable[[], Awaitable[None]], name: str) -> None:
        while True:
            # On the daemon's clock, like the calls' timers: leases lapse by the store's
            # clock, which is the daemon's in tests that move time by hand.
            await sleep_on(self.clock, interval)
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a store hiccup must not stop the loop
                _stop_if_cancelled()
                log.warning(f"lease {name} failed", reason=f"{type(exc).__name__}: {exc}")


def _stop_if_cancelled() -> None:
    # The Redis client may swallow a cancellation in the middle of a blocking read (an
    # empty answer, or a connection error): the loop must still stop when asked to.
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
