"""Pacing for Daily's telephony tier, so callers queue here instead of earning 429s.

Daily allows about 1 request/s, or 5 per 5 s, for its "start recording, live streaming, PSTN,
or SIP" calls (https://docs.daily.co/docs/rest-api/authentication), far below the 20 req/s of
other endpoints. ``DailyClient`` sends every paced request through one shared limiter; the
limiter hands out send times in arrival order (FIFO), so a burst of calls wanting to transfer
at once is spread out rather than refused and retried.

Sits under ``client.py``; depends only on the standard library. The clock and the sleep are
injectable so tests drive time by hand and never sleep for real.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Daily states 1 request/s and 5 per 5 s; we stay 10% under both because Daily's window and
# ours do not start at the same instant, and network jitter can bunch requests on arrival.
TELEPHONY_CALLS = 5
TELEPHONY_PERIOD = 5.5
TELEPHONY_MIN_INTERVAL = 1.1


class Limiter(Protocol):
    """What the client needs from a limiter; a Redis-backed one can share it across hosts."""

    async def acquire(self) -> None:
        """Return when the caller may send one request."""
        ...


class RateLimiter:
    """At most ``calls`` sends per ``period`` seconds, ``min_interval`` apart, in FIFO order.

    Each caller reserves its send time on arrival (no ``await`` before the reservation), so
    callers are served strictly in the order they called ``acquire``. A caller cancelled while
    it waits leaves its slot unused: the queue only ever runs slower than the limit, never
    faster.
    """

    def __init__(
        self,
        calls: int = TELEPHONY_CALLS,
        period: float = TELEPHONY_PERIOD,
        *,
        min_interval: float = TELEPHONY_MIN_INTERVAL,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if calls < 1 or period <= 0 or min_interval < 0:
            raise ValueError("a rate limit needs calls >= 1, period > 0 and min_interval >= 0")
        self.calls = calls
        self.period = period
        self.min_interval = min_interval
        self._clock = clock
        self._sleep = sleep
        # The send times of the last `calls` reservations, oldest first; only those can
        # constrain the next one.
        self._slots: deque[float] = deque(maxlen=calls)
        self._waiting = 0

    def __repr__(self) -> str:
        return (
            f"RateLimiter(calls={self.calls}, period={self.period:g}, "
            f"min_interval={self.min_interval:g})"
        )

    def reserve(self) -> float:
        """Reserve the next free send time; return how many seconds to wait for it."""
        now = self._clock()
        at = now
        if self._slots:
            at = max(at, self._slots[-1] + self.min_interval)
        if len(self._slots) == self.calls:
            at = max(at, self._slots[0] + self.period)
        self._slots.append(at)
        return at - now

    @property
    def waiting(self) -> int:
        """How many callers are waiting for their turn now (a gauge for metrics)."""
        return self._waiting

    async def acquire(self) -> None:
        """Wait for this caller's turn; callers are served in the order they arrive."""
        wait = self.reserve()
        if wait <= 0:
            return
        log.debug("daily_request_paced", wait_s=round(wait, 3), waiting=self._waiting + 1)
        self._waiting += 1
        try:
            await self._sleep(wait)
        finally:
            self._waiting -= 1


def telephony_limiter(
    *, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
) -> RateLimiter:
    """A limiter set just below Daily's telephony tier (5 per 5.5 s, 1.1 s apart)."""
    return RateLimiter(
        TELEPHONY_CALLS,
        TELEPHONY_PERIOD,
        min_interval=TELEPHONY_MIN_INTERVAL,
        clock=clock,
        sleep=sleep,
    )
