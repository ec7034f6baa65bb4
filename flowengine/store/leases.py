"""Several daemons, one store: leases with fencing, timer claims and wake-ups.

The part of the store contract (``base.Store`` extends ``Leases``) that lets several daemons
share one set of calls. A call is written by the holder of its *lease* only, and every write of
it may carry the lease's fencing token, refused with ``LeaseLostError`` once the lease has
moved on; *timer claims* (``claim_timers``) hand each due timer of a call nobody runs to one
daemon; *wake-ups* (``wakeups``) bring an event accepted by one daemon to the call's owner.
Redis keeps them in the server (``redis_lease.py``); the memory and SQLite stores, held by one
process, in the process (``local_leases.py``), with the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .errors import StoreError


class LeaseLostError(StoreError):
    """Raised when a write carries a fencing token that no longer holds the call's lease.

    The lease expired, was released, or another owner holds it (with a newer token): the
    writer must stop running the call (another daemon may be running it) and write nothing
    more of it. Nothing of the refused write was stored.
    """

    def __init__(self, call_id: str, token: int, current: int | None) -> None:
        self.call_id = call_id
        self.token = token
        self.current = current
        held = "no live lease" if current is None else f"the live lease has token {current}"
        super().__init__(f"call {call_id!r}: lease token {token} is not valid ({held})")


@dataclass(frozen=True, slots=True, order=True)
class DueTimer:
    """A timer of a live call; ordered by deadline, then call, then timer id."""

    deadline: float
    call_id: str
    timer_id: str


@dataclass(frozen=True, slots=True)
class Lease:
    """Who runs a call now: its lease's owner and the fencing token of the grant."""

    call_id: str
    owner: str
    """The daemon's owner id (unique per process: host, pid and a random part)."""
    token: int
    """Increases with every grant, across calls: a newer grant always has a larger token."""
    expires_at: float
    """Seconds since the epoch (the store's clock) the lease lapses at unless renewed."""


@runtime_checkable
class Leases(Protocol):
    """Leases, timer claims and wake-ups of a store several daemons share."""

    async def acquire_lease(self, call_id: str, owner: str, ttl: float) -> int | None:
        """Take the call's lease for ``ttl`` seconds; its fencing token, or ``None`` if held.

        A lease that lapsed (or was released) is granted with a new token, larger than any
        before. The owner that holds the live lease gets it extended, with the same token.
        The call need not exist yet (take the lease, then ``create_call``).

        Raises:
            StoreError: ``ttl`` is not positive, or ``owner`` is empty.
        """
        ...

    async def renew_lease(self, call_id: str, owner: str, token: int, ttl: float) -> bool:
        """Extend a live lease held with ``token`` to ``ttl`` seconds from now.

        ``False`` when the lease lapsed or moved on: the caller has lost the call.
        """
        ...

    async def release_lease(self, call_id: str, owner: str, token: int) -> bool:
        """Give the lease up (an ended call, a daemon shutting down); ``False`` if not held."""
        ...

    async def lease(self, call_id: str) -> Lease | None:
        """The call's live lease, or ``None`` when nobody holds it."""
        ...

    async def claim_timers(
        self, now: float, *, hold: float, limit: int | None = None
    ) -> list[DueTimer]:
        """Claim due timers of live calls, earliest first: each claim goes to one caller.

        A claimed timer is left out of other claims for ``hold`` seconds, or until it is set
        to another deadline: if its claimer dies before the timer is handled (cleared by the
        call's append), it is claimed again. ``due_timers`` still lists it.

        Raises:
            StoreError: ``hold`` is not positive.
        """
        ...

    async def wakeups(self, owner: str, *, wait: float) -> list[str]:
        """Calls whose inbox got events for ``owner`` to handle (see ``accept``), in order.

        Waits up to ``wait`` seconds for the first (0: do not wait); each call once. A
        wake-up is a hint: the inbox is what holds the events, and a new owner reads it
        when it takes the lease.
        """
        ...


def check_positive(what: str, value: float) -> None:
    """Refuse a lease TTL or a claim's hold that is not positive.

    Raises:
        StoreError: ``value`` is not positive.
    """
    if not value > 0:
        raise StoreError(f"a {what} must be positive, not {value!r}")
