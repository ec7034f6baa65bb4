"""The Redis store's leases, timer claims and wake-ups: what several daemons share.

``RedisLeases`` is the base class of ``RedisStore`` holding the operations several daemons need
(the contract is in ``base.Store``). A lease is a hash ``<prefix>:lease:<call>`` (``owner``,
``token``, ``until``) that Redis also expires (``PX``); tokens come from one counter, so every
grant's token is larger than any before, across calls. A timer claim is a member of the sorted
set ``<prefix>:claims``, scored by when it lapses. Wake-ups are a list per owner,
``<prefix>:wake:<owner>``, filled by ``accept`` (in its script) and emptied here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from .base import DueTimer, Lease, check_positive
from .redis_codec import check_owner, due_timer, millis, seconds

_WAKE_BATCH = 1024
"""Wake-ups popped at once."""


class RedisLeases:
    """Leases, timer claims and wake-ups over the plumbing ``RedisStore`` provides."""

    client: Redis
    _clock: Callable[[], float]

    def _key(self, kind: str, ident: str) -> str:
        raise NotImplementedError

    async def _write(self, script: str, args: list[str]) -> Any:
        raise NotImplementedError

    async def _read(self, pending: Any) -> Any:
        raise NotImplementedError

    async def acquire_lease(self, call_id: str, owner: str, ttl: float) -> int | None:
        """See ``Store.acquire_lease``."""
        check_positive("lease TTL", ttl)
        check_owner(owner)
        now = self._clock()
        reply = await self._write(
            "acquire", [call_id, owner, seconds(now), seconds(now + ttl), millis(ttl)]
        )
        return None if reply is None else int(reply)

    async def renew_lease(self, call_id: str, owner: str, token: int, ttl: float) -> bool:
        """See ``Store.renew_lease``."""
        check_positive("lease TTL", ttl)
        now = self._clock()
        args = [call_id, owner, str(int(token)), seconds(now), seconds(now + ttl), millis(ttl)]
        return bool(await self._write("renew", args))

    async def release_lease(self, call_id: str, owner: str, token: int) -> bool:
        """See ``Store.release_lease``."""
        args = [call_id, owner, str(int(token)), seconds(self._clock())]
        return bool(await self._write("release", args))

    async def lease(self, call_id: str) -> Lease | None:
        """See ``Store.lease``."""
        owner, token, until = await self._read(
            self.client.hmget(self._key("lease", call_id), ["owner", "token", "until"])
        )
        if owner is None or float(until) <= self._clock():
            return None
        return Lease(call_id, owner, int(token), float(until))

    async def claim_timers(
        self, now: float, *, hold: float, limit: int | None = None
    ) -> list[DueTimer]:
        """See ``Store.claim_timers``."""
        check_positive("claim hold", hold)
        if limit is not None and limit <= 0:
            return []
        args = [seconds(now), seconds(now + hold), str(0 if limit is None else int(limit))]
        flat = await self._write("claim_timers", args)
        return [due_timer(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]

    async def wakeups(self, owner: str, *, wait: float) -> list[str]:
        """See ``Store.wakeups``: a list per owner, popped (``BLPOP`` waits for the first)."""
        key = self._key("wake", owner)
        first: list[str] = []
        if wait > 0:
            popped = await self._read(self.client.blpop([key], timeout=wait))
            if popped is None:
                return []
            first = [popped[1]]
        rest = await self._read(self.client.lpop(key, _WAKE_BATCH))
        return list(dict.fromkeys(first + list(rest or [])))
