"""The store contract: the records a daemon persists per call, and the ``Store`` Protocol.

Per call the store keeps a *snapshot* (the ``Session``'s JSON, with a version bumped on every
write), a *journal* (events, commands and results, numbered from 1), an *outbox* of commands
keyed by their idempotency key, and the call's *due timers*. ``append`` writes all of it in one
transaction, under a compare-and-set on the version. Webhook deliveries are deduplicated by
their envelope id with a TTL. Implementations: ``memory.MemoryStore`` (the reference, for tests),
``sqlite.SQLiteStore`` (the default) and ``redis.RedisStore`` (several daemons, one set of calls).

For several daemons the contract adds *leases*, *timer claims* and *wake-ups*: the
``leases.Leases`` part of the Protocol.

The store also keeps the *flow versions* calls are pinned to (``save_flow_version``,
``flow_version``: the ``flow_versions.FlowVersions`` part of the Protocol), so a call can be
restored on its version after the flow file changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from .errors import StoreError
from .flow_versions import FlowVersions
from .leases import DueTimer, Lease, LeaseLostError, Leases, check_positive

DEFAULT_WEBHOOK_TTL = 3600.0
"""Seconds a webhook id is remembered: longer than Daily's retries of one delivery take."""


class CallStatus(StrEnum):
    """Whether a call still runs: ``live`` calls are restored when a daemon starts."""

    LIVE = "live"
    ENDED = "ended"


class EntryKind(StrEnum):
    """What a journal entry records."""

    EVENT = "event"
    COMMAND = "command"
    RESULT = "result"


class CommandState(StrEnum):
    """Where a command of the outbox stands.

    ``pending``: not sent (safe to send). ``unknown``: handed to the far end, no answer recorded
    (a daemon that died meanwhile cannot know whether it took effect, so it must settle it, not
    resend it blindly). ``done`` and ``failed`` are final: a final command never changes again.
    """

    PENDING = "pending"
    UNKNOWN = "unknown"
    DONE = "done"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        """True for ``done`` and ``failed``."""
        return self in (CommandState.DONE, CommandState.FAILED)


OPEN_STATES = (CommandState.PENDING, CommandState.UNKNOWN)
"""States of commands that still need the daemon's attention."""

JournalItem = tuple[EntryKind | str, str]
"""What ``append`` is given for one journal entry: its kind and its JSON payload."""


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call as stored: its snapshot and what the store knows around it."""

    call_id: str
    flow: str
    """The name of the flow the call started on."""
    flow_hash: str
    """The content hash of that flow's version: the call stays pinned to it."""
    snapshot: str
    """The ``Session`` as JSON (``Session.to_json()``); ``Engine.restore`` takes it as is."""
    version: int
    """1 when created, bumped by every write of the call; the compare-and-set token."""
    status: CallStatus
    created_at: float
    updated_at: float

    @property
    def live(self) -> bool:
        """True while the call has not ended."""
        return self.status is CallStatus.LIVE


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One entry of a call's journal, numbered from 1 without gaps."""

    call_id: str
    seq: int
    kind: EntryKind
    payload: str
    """JSON text, stored as given."""
    at: float
    applied: bool = True
    """False for an event accepted by ``accept`` that no snapshot includes yet (the inbox)."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A command to perform once, by its idempotency key (``<call>:<seq>:<index>``)."""

    key: str
    call_id: str
    command: str
    """The command's JSON (``Command.to_dict()`` serialised)."""
    state: CommandState
    attempts: int
    """How many times ``begin_command`` handed it out."""
    updated_at: float


@runtime_checkable
class Store(FlowVersions, Leases, Protocol):
    """Durable calls: what the daemon needs to answer 200, survive a crash and never repeat.

    Every method is a coroutine. Every write is durable when it returns (its transaction is
    committed), and a write that raises left nothing behind. Reads see every write that has
    returned. Ids, keys and payloads are opaque text to the store. The flow versions calls
    are pinned to (``save_flow_version``, ``flow_version``) are in ``FlowVersions``.
    """

    async def create_call(
        self,
        call_id: str,
        *,
        flow: str,
        flow_hash: str,
        snapshot: str,
        journal_entries: Sequence[JournalItem] = (),
        outbox_new: Mapping[str, str] | None = None,
        timers_set: Mapping[str, float] | None = None,
        fence: int | None = None,
    ) -> CallRecord:
        """Store a new live call at version 1, with its first entries, in one transaction.

        ``fence``: a lease token for ``call_id`` (see ``append``).

        Raises:
            StoreConflictError: a call with that id exists (``expected`` 0).
            LeaseLostError: ``fence`` is not the call's live lease.
        """
        ...

    async def append(
        self,
        call_id: str,
        *,
        expected_version: int,
        snapshot: str | None = None,
        journal_entries: Sequence[JournalItem] = (),
        outbox_new: Mapping[str, str] | None = None,
        outbox_done: Sequence[str] = (),
        outbox_failed: Sequence[str] = (),
        timers_set: Mapping[str, float] | None = None,
        timers_cleared: Sequence[str] = (),
        applied: Sequence[int] = (),
        end: bool = False,
        fence: int | None = None,
    ) -> int:
        """Write one step of a call atomically, if it is still at ``expected_version``.

        Args:
            call_id: The call.
            expected_version: The version the caller read or last wrote.
            snapshot: The new snapshot; ``None`` keeps the stored one.
            journal_entries: ``(kind, payload)`` pairs, appended in order.
            outbox_new: Commands to perform, idempotency key -> command JSON. A key already
                in the outbox is left as it is (never reset: a done command stays done).
            outbox_done: Keys of this call's commands that succeeded.
            outbox_failed: Keys of this call's commands that failed.
            timers_set: Timer id -> deadline (seconds since the epoch); replaces a timer.
            timers_cleared: Timer ids no longer wanted (unknown ids are ignored).
            applied: Journal numbers of accepted events (``accept``) the snapshot includes.
            end: The call has ended: status ``ended``, every timer of it cleared.
            fence: The token of the caller's lease on the call (``acquire_lease``); the
                write is refused unless that lease is live. ``None``: no check (one daemon).

        Returns:
            The new version (``expected_version + 1``).

        Raises:
            LeaseLostError: ``fence`` is not the call's live lease (checked first).
            CallNotFoundError: no such call.
            StoreConflictError: the call is not at ``expected_version``.
            StoreError: a key or journal number given does not belong to this call's open
                commands or inbox (the whole append is refused).
        """
        ...

    async def accept(
        self,
        call_id: str,
        event: str,
        *,
        webhook_id: str | None = None,
        ttl: float = DEFAULT_WEBHOOK_TTL,
        by: str | None = None,
    ) -> JournalEntry | None:
        """Journal an incoming event before it is handled: the ingress answers 200 after this.

        With ``webhook_id`` the claim of the id and the entry are one transaction, so a
        redelivery is refused exactly when the first delivery is stored. The entry stays in
        the call's inbox (``applied`` False) until an ``append`` lists it in ``applied``. The
        call's version does not move: accepting never conflicts with the call's writer. Anyone
        may accept (no lease needed): if another owner than ``by`` holds the call's lease, it
        is woken (``wakeups``) in the same transaction.

        Returns:
            The entry, or ``None`` when ``webhook_id`` was claimed within its TTL.

        Raises:
            CallNotFoundError: no such call.
        """
        ...

    async def end_call(
        self, call_id: str, *, expected_version: int | None = None, fence: int | None = None
    ) -> int:
        """Mark a call ended (its timers cleared); returns the new version.

        Raises:
            LeaseLostError: ``fence`` is given and is not the call's live lease.
            CallNotFoundError: no such call.
            StoreConflictError: ``expected_version`` is given and not current.
        """
        ...

    async def load_call(self, call_id: str) -> CallRecord | None:
        """The call, or ``None``."""
        ...

    async def live_calls(self) -> list[CallRecord]:
        """Every call not ended, oldest first: what a daemon restores when it starts."""
        ...

    async def journal(self, call_id: str, *, after: int = 0) -> list[JournalEntry]:
        """The call's journal entries numbered above ``after``, in order."""
        ...

    async def inbox(self, call_id: str | None = None) -> list[JournalEntry]:
        """Accepted events not yet applied, of one call or of all (by call id), in order."""
        ...

    async def pending_commands(self, call_id: str | None = None) -> list[OutboxEntry]:
        """Commands still ``pending`` or ``unknown`` (of one call, or of all), oldest first."""
        ...

    async def command(self, key: str) -> OutboxEntry | None:
        """One outbox entry by its idempotency key, or ``None``."""
        ...

    async def begin_command(self, key: str, *, fence: int | None = None) -> OutboxEntry | None:
        """Claim a ``pending`` command for sending: it becomes ``unknown``, attempts + 1.

        Call it right before the request goes out. ``None`` when the command is not pending
        (already handed out, or settled): do not send it. With ``fence``, only the holder of
        the command's call's lease may claim it: a daemon that lost the call sends nothing.

        Raises:
            StoreError: no command with that key.
            LeaseLostError: ``fence`` is given and is not the call's live lease.
        """
        ...

    async def mark_command(self, key: str, state: CommandState) -> OutboxEntry:
        """Record where a command stands (``pending`` again to resend it after a safe error).

        Marking a final command with the state it has is a no-op.

        Raises:
            StoreError: no command with that key, or it is final with another state.
        """
        ...

    async def claim_webhook(self, webhook_id: str, ttl: float = DEFAULT_WEBHOOK_TTL) -> bool:
        """True the first time ``webhook_id`` is claimed within ``ttl`` seconds, then False."""
        ...

    async def due_timers(self, now: float, *, limit: int | None = None) -> list[DueTimer]:
        """Timers of live calls with ``deadline <= now``, earliest first."""
        ...

    async def purge_ended(self, before: float) -> int:
        """Delete calls that ended before ``before`` (with their journal and outbox)."""
        ...

    async def close(self) -> None:
        """Finish pending writes and release the store; later calls raise."""
        ...


def check_ttl(ttl: float) -> None:
    """Refuse a TTL that would make a claim meaningless.

    Raises:
        StoreError: ``ttl`` is not positive.
    """
    if not ttl > 0:
        raise StoreError(f"a webhook TTL must be positive, not {ttl!r}")


def entry_kind(kind: EntryKind | str) -> EntryKind:
    """The kind of a journal item, checked.

    Raises:
        StoreError: not one of ``event``, ``command``, ``result``.
    """
    try:
        return EntryKind(kind)
    except ValueError:
        raise StoreError(f"unknown journal entry kind {kind!r}") from None


def check_transition(key: str, current: CommandState, new: CommandState) -> bool:
    """Whether moving a command from ``current`` to ``new`` changes it.

    Raises:
        StoreError: the command is final and ``new`` is another state.
    """
    if current.final:
        if new is not current:
            raise StoreError(f"command {key!r} is already {current}; it cannot become {new}")
        return False
    return new is not current


__all__ = [
    "DEFAULT_WEBHOOK_TTL",
    "CallRecord",
    "CallStatus",
    "CommandState",
    "DueTimer",
    "EntryKind",
    "JournalEntry",
    "JournalItem",
    "Lease",
    "LeaseLostError",
    "OPEN_STATES",
    "OutboxEntry",
    "Store",
    "check_positive",
    "check_transition",
    "check_ttl",
    "entry_kind",
]
