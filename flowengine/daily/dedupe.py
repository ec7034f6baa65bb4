"""Dropping webhook deliveries already seen, by the envelope ``id``.

Daily may deliver an event more than once (its retries after a slow answer; its
``exponential`` policy retries each message up to five times), so the ingress claims each
event id before acting on it. ``Deduplicator`` is the interface the daemon uses; the durable
store will implement it later (a Redis ``SET NX EX`` fits). ``MemoryDeduplicator`` serves a
single process and the tests.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

DEFAULT_TTL = 3600.0
"""Seconds an id is remembered: longer than Daily's retries of one message take."""
DEFAULT_MAX_ENTRIES = 100_000


class Deduplicator(Protocol):
    """Remembers which event ids have been claimed, for a while."""

    async def claim(self, event_id: str) -> bool:
        """True the first time ``event_id`` is claimed within the TTL, then False."""
        ...

    async def release(self, event_id: str) -> None:
        """Forget a claim, so a redelivery is processed (call it when handling failed)."""
        ...


class MemoryDeduplicator:
    """An in-process ``Deduplicator`` with a TTL and a bound on memory.

    Ids are kept in claim order; since every id lives for the same TTL, expired ids are always
    at the front. When ``max_entries`` is reached the oldest id is forgotten early, so a flood
    of distinct ids cannot grow memory without limit.
    """

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0 or max_entries < 1:
            raise ValueError("a deduplicator needs ttl > 0 and max_entries >= 1")
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def _expire(self, now: float) -> None:
        while self._expiry:
            oldest, expiry = next(iter(self._expiry.items()))
            if expiry > now:
                break
            del self._expiry[oldest]

    async def claim(self, event_id: str) -> bool:
        """True the first time ``event_id`` is claimed within the TTL, then False."""
        now = self._clock()
        self._expire(now)
        if event_id in self._expiry:
            return False
        self._expiry[event_id] = now + self.ttl
        if len(self._expiry) > self.max_entries:
            self._expiry.popitem(last=False)
        return True

    async def release(self, event_id: str) -> None:
        """Forget a claim, so a redelivery of the event is processed."""
        self._expiry.pop(event_id, None)
