"""Ports of the async shell: the Telephony it acts through and the Clock it reads.

Four Telephony adapters are meant to exist (the daemon's REST client, the in-room agent, the
local emulator, the offline fake); the engine knows only this Protocol. Two clocks exist: the
real one (wall-clock time, asyncio timers) and ``VirtualClock``, which tests and the simulator
advance by hand, firing due timers in order, instantly.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .commands import Command
from .events import Event

DEFAULT_EPOCH = 1_767_225_600.0
"""Where a ``VirtualClock`` starts by default: 2026-01-01T00:00:00Z, a Thursday."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What the far end said to a command."""

    ok: bool = True
    data: Mapping[str, Any] = field(default_factory=dict)
    """E.g. ``{"sessionId": ...}`` for a dial-out; ``{"status", "json", "text", "headers"}``
    for an HTTP request."""
    error: str | None = None
    """Why it failed; ``"timeout"`` for an HTTP request that timed out."""
    finished: bool = False
    """For ``Play``/``Say``: the prompt has finished playing (the engine then sends
    ``play.done``); an adapter that returns as soon as playback starts leaves it False and
    posts ``play.done`` itself when it ends."""
    follow: tuple[Event, ...] = ()
    """Events the adapter saw as a consequence, delivered after the result (the fake and the
    emulator use this to answer a dial-out with ``dialout.answered``)."""
    silent: bool = False
    """Nothing comes back, as if the answer were lost (the fake uses it to exercise the
    runtime's guard timers without leaving a task waiting forever)."""

    @classmethod
    def success(cls, data: Mapping[str, Any] | None = None, **kw: Any) -> CommandResult:
        """A successful result."""
        return cls(True, dict(data or {}), **kw)

    @classmethod
    def failure(cls, error: str, data: Mapping[str, Any] | None = None, **kw: Any) -> CommandResult:
        """A failed result."""
        return cls(False, dict(data or {}), error, **kw)


class Telephony(Protocol):
    """Carries out commands. May raise: the engine turns an exception into ``command.failed``."""

    async def execute(self, command: Command) -> CommandResult:
        """Perform one command (idempotently, by ``command.key``)."""
        ...


class TimerHandle(Protocol):
    """A scheduled callback that can be cancelled."""

    def cancel(self) -> None:
        """Do not run it."""


class Clock(Protocol):
    """Time for the engine: ``now`` in seconds since the epoch, and one-shot timers."""

    def now(self) -> float:
        """The current time."""
        ...

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` on the event loop after ``delay`` seconds."""
        ...


async def sleep_on(clock: Clock, seconds: float) -> None:
    """Sleep ``seconds`` on ``clock``: wall time on an ``AsyncioClock``, virtual time (woken
    when a test moves it) on a ``VirtualClock``."""
    woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    handle = clock.call_later(seconds, _wake, woken)
    try:
        await woken
    finally:
        handle.cancel()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class AsyncioClock:
    """Wall-clock time with the running loop's timers."""

    def now(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> TimerHandle:
        """``loop.call_later`` on the running loop."""
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback, *args)


class _VirtualHandle:
    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.when, self.callback, self.args, self.cancelled = when, callback, args, False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """A clock that moves only when told: ``await clock.advance(5)`` fires what falls due.

    After each timer it fires, it waits for whatever registered with ``on_settle`` (the engine
    registers its ``idle``), so the effects of one timer are complete before the next fires.
    """

    def __init__(self, start: float = DEFAULT_EPOCH) -> None:
        self._now = float(start)
        self._heap: list[tuple[float, int, _VirtualHandle]] = []
        self._order = itertools.count()
        self._settlers: list[Callable[[], Awaitable[None]]] = []
        self._advancing = False

    def now(self) -> float:
        """The virtual time."""
        return self._now

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> TimerHandle:
        """Schedule at ``now + delay``; a due timer fires at once (on the next loop turn)."""
        handle = _VirtualHandle(self._now + max(0.0, delay), callback, args)
        heapq.heappush(self._heap, (handle.when, next(self._order), handle))
        if delay <= 0 and not self._advancing:
            asyncio.get_running_loop().call_soon(self._fire_due)
        return handle

    def on_settle(self, settle: Callable[[], Awaitable[None]]) -> None:
        """Await ``settle()`` after each fired timer (and before the first)."""
        self._settlers.append(settle)

    @property
    def next_deadline(self) -> float | None:
        """When the earliest pending timer falls due."""
        self._drop_cancelled()
        return self._heap[0][0] if self._heap else None

    def pending(self) -> int:
        """How many timers are scheduled."""
        self._drop_cancelled()
        return sum(1 for *_, h in self._heap if not h.cancelled)

    async def advance(self, seconds: float) -> None:
        """Move time forward, firing due timers in deadline order (ties: in order armed)."""
        target = self._now + max(0.0, seconds)
        self._advancing = True
        try:
            await self._settle()
            while True:
                self._drop_cancelled()
                if not self._heap or self._heap[0][0] > target:
                    break
                when, _, handle = heapq.heappop(self._heap)
                self._now = max(self._now, when)
                handle.callback(*handle.args)
                await self._settle()
            self._now = target
        finally:
            self._advancing = False

    def _fire_due(self) -> None:
        while True:
            self._drop_cancelled()
            if not self._heap or self._heap[0][0] > self._now:
                return
            _, _, handle = heapq.heappop(self._heap)
            handle.callback(*handle.args)

    def _drop_cancelled(self) -> None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)

    async def _settle(self) -> None:
        await asyncio.sleep(0)
        for settle in self._settlers:
            await settle()
