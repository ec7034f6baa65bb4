"""The in-memory store: the reference implementation of the contract, for tests.

Nothing here survives the process, so the daemon refuses it. Each operation runs without an
``await`` inside, so it is atomic on the event loop; an ``append`` checks everything before it
changes anything, which is how it leaves nothing half-written. The data lives in a
``MemoryData`` that a second ``MemoryStore`` can be given, so tests can "reopen" a store.

Its leases, timer claims and wake-ups are a ``LocalLeases`` kept in the ``MemoryData``, as are
the flow versions (``flows``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from .base import (
    DEFAULT_WEBHOOK_TTL,
    OPEN_STATES,
    CallRecord,
    CallStatus,
    CommandState,
    DueTimer,
    EntryKind,
    JournalEntry,
    JournalItem,
    OutboxEntry,
    check_transition,
    check_ttl,
    entry_kind,
)
from .errors import CallNotFoundError, StoreConflictError, StoreError, StoreUnavailableError
from .flow_versions import FlowVersion, check_flow_version
from .local_leases import LocalLeaseMethods, LocalLeases

_SWEEP_EVERY = 1024
"""Claims between two sweeps of expired webhook ids (keeps the table from growing)."""


@dataclass(slots=True)
class _Call:
    record: CallRecord
    journal: list[JournalEntry] = field(default_factory=list)
    timers: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class MemoryData:
    """Everything a ``MemoryStore`` holds; share it to reopen a store over the same data."""

    calls: dict[str, _Call] = field(default_factory=dict)
    outbox: dict[str, OutboxEntry] = field(default_factory=dict)
    """By key, in insertion order (the order commands were produced)."""
    webhooks: dict[str, float] = field(default_factory=dict)
    """Webhook id -> when its claim expires."""
    claims: int = 0
    leases: LocalLeases = field(default_factory=LocalLeases)
    """Kept with the data, as Redis keeps them: a reopened store sees the leases still live."""
    flows: dict[str, FlowVersion] = field(default_factory=dict)
    """Flow versions by content hash."""


class MemoryStore(LocalLeaseMethods):
    """A ``Store`` in a dict. ``clock`` gives wall-clock seconds (TTLs, record times)."""

    def __init__(
        self, data: MemoryData | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.data = data if data is not None else MemoryData()
        self._clock = clock
        self._closed = False

    # -- writes ------------------------------------------------------------------------------

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
        """See ``Store.create_call``."""
        self._check_open()
        self.data.leases.check(call_id, fence, self._clock())
        existing = self.data.calls.get(call_id)
        if existing is not None:
            raise StoreConflictError(call_id, 0, existing.record.version)
        kinds = [entry_kind(kind) for kind, _ in journal_entries]
        now = self._clock()
        record = CallRecord(call_id, flow, flow_hash, snapshot, 1, CallStatus.LIVE, now, now)
        call = self.data.calls[call_id] = _Call(record)
        self._write_journal(call, kinds, journal_entries, now)
        self._write_outbox(call_id, outbox_new or {}, now)
        call.timers.update(timers_set or {})
        return record

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
        """See ``Store.append``."""
        self._check_open()
        self.data.leases.check(call_id, fence, self._clock())
        call = self._call(call_id, expected_version)
        # Everything is checked first: past this block nothing can fail.
        kinds = [entry_kind(kind) for kind, _ in journal_entries]
        new = outbox_new or {}
        settle = [(k, CommandState.DONE) for k in outbox_done]
        settle += [(k, CommandState.FAILED) for k in outbox_failed]
        if len({k for k, _ in settle}) != len(settle):
            raise StoreError(f"call {call_id!r}: a command is settled twice in one append")
        for key, state in settle:
            entry = self.data.outbox.get(key)
            if entry is None and key in new:
                continue
            if entry is None or entry.call_id != call_id:
                raise StoreError(f"call {call_id!r} has no command {key!r}")
            check_transition(key, entry.state, state)
        seen: set[int] = set()
        for seq in applied:
            if not 0 < seq <= len(call.journal) or call.journal[seq - 1].applied or seq in seen:
                raise StoreError(f"call {call_id!r} has no accepted event {seq} to apply")
            seen.add(seq)
        now = self._clock()
        self._write_journal(call, kinds, journal_entries, now)
        self._write_outbox(call_id, new, now)
        for key, state in settle:
            entry = self.data.outbox[key]
            if check_transition(key, entry.state, state):
                self.data.outbox[key] = replace(entry, state=state, updated_at=now)
        for seq in applied:
            call.journal[seq - 1] = replace(call.journal[seq - 1], applied=True)
        call.timers.update(timers_set or {})
        for timer_id in timers_cleared:
            call.timers.pop(timer_id, None)
        if end:
            call.timers.clear()
        call.record = replace(
            call.record,
            snapshot=call.record.snapshot if snapshot is None else snapshot,
            version=expected_version + 1,
            status=CallStatus.ENDED if end else call.record.status,
            updated_at=now,
        )
        return call.record.version

    async def accept(
        self,
        call_id: str,
        event: str,
        *,
        webhook_id: str | None = None,
        ttl: float = DEFAULT_WEBHOOK_TTL,
        by: str | None = None,
    ) -> JournalEntry | None:
        """See ``Store.accept``."""
        self._check_open()
        check_ttl(ttl)
        call = self._call(call_id, None)
        if webhook_id is not None and not self._claim(webhook_id, ttl):
            return None
        now = self._clock()
        entry = JournalEntry(call_id, len(call.journal) + 1, EntryKind.EVENT, event, now, False)
        call.journal.append(entry)
        self.data.leases.wake(call_id, by, now)
        return entry

    async def end_call(
        self, call_id: str, *, expected_version: int | None = None, fence: int | None = None
    ) -> int:
        """See ``Store.end_call``."""
        self._check_open()
        self.data.leases.check(call_id, fence, self._clock())
        call = self._call(call_id, expected_version)
        call.timers.clear()
        call.record = replace(
            call.record,
            version=call.record.version + 1,
            status=CallStatus.ENDED,
            updated_at=self._clock(),
        )
        return call.record.version

    async def begin_command(self, key: str, *, fence: int | None = None) -> OutboxEntry | None:
        """See ``Store.begin_command``."""
        entry = self._command(key)
        self.data.leases.check(entry.call_id, fence, self._clock())
        if entry.state is not CommandState.PENDING:
            return None
        entry = replace(
            entry, state=CommandState.UNKNOWN, attempts=entry.attempts + 1, updated_at=self._clock()
        )
        self.data.outbox[key] = entry
        return entry

    async def mark_command(self, key: str, state: CommandState) -> OutboxEntry:
        """See ``Store.mark_command``."""
        entry = self._command(key)
        state = CommandState(state)
        if check_transition(key, entry.state, state):
            entry = self.data.outbox[key] = replace(entry, state=state, updated_at=self._clock())
        return entry

    async def claim_webhook(self, webhook_id: str, ttl: float = DEFAULT_WEBHOOK_TTL) -> bool:
        """See ``Store.claim_webhook``."""
        self._check_open()
        check_ttl(ttl)
        return self._claim(webhook_id, ttl)

    async def purge_ended(self, before: float) -> int:
        """See ``Store.purge_ended``."""
        self._check_open()
        gone = [
            cid
            for cid, call in self.data.calls.items()
            if not call.record.live and call.record.updated_at < before
        ]
        for cid in gone:
            del self.data.calls[cid]
        dropped = set(gone)
        for key in [k for k, e in self.data.outbox.items() if e.call_id in dropped]:
            del self.data.outbox[key]
        return len(gone)

    async def close(self) -> None:
        """See ``Store.close``; the data stays in ``self.data``."""
        self._closed = True

    async def save_flow_version(self, flow_hash: str, *, name: str, source: str) -> bool:
        """See ``Store.save_flow_version``."""
        self._check_open()
        check_flow_version(flow_hash, name)
        if flow_hash in self.data.flows:
            return False
        self.data.flows[flow_hash] = FlowVersion(flow_hash, name, source, self._clock())
        return True

    async def flow_version(self, flow_hash: str) -> FlowVersion | None:
        """See ``Store.flow_version``."""
        self._check_open()
        return self.data.flows.get(flow_hash)

    @property
    def local_leases(self) -> LocalLeases:
        """The leases, timer claims and wake-ups (``LocalLeaseMethods`` serves them)."""
        return self.data.leases

    # -- reads -------------------------------------------------------------------------------

    async def load_call(self, call_id: str) -> CallRecord | None:
        """See ``Store.load_call``."""
        self._check_open()
        call = self.data.calls.get(call_id)
        return call.record if call else None

    async def live_calls(self) -> list[CallRecord]:
        """See ``Store.live_calls``."""
        self._check_open()
        live = [c.record for c in self.data.calls.values() if c.record.live]
        return sorted(live, key=lambda r: (r.created_at, r.call_id))

    async def journal(self, call_id: str, *, after: int = 0) -> list[JournalEntry]:
        """See ``Store.journal``."""
        self._check_open()
        call = self.data.calls.get(call_id)
        return call.journal[max(after, 0) :] if call else []

    async def inbox(self, call_id: str | None = None) -> list[JournalEntry]:
        """See ``Store.inbox``."""
        self._check_open()
        if call_id is None:
            calls = [self.data.calls[cid] for cid in sorted(self.data.calls)]
        else:
            calls = [self.data.calls[call_id]] if call_id in self.data.calls else []
        return [e for c in calls for e in c.journal if not e.applied]

    async def pending_commands(self, call_id: str | None = None) -> list[OutboxEntry]:
        """See ``Store.pending_commands``."""
        self._check_open()
        return [
            e
            for e in self.data.outbox.values()
            if e.state in OPEN_STATES and (call_id is None or e.call_id == call_id)
        ]

    async def command(self, key: str) -> OutboxEntry | None:
        """See ``Store.command``."""
        self._check_open()
        return self.data.outbox.get(key)

    async def due_timers(self, now: float, *, limit: int | None = None) -> list[DueTimer]:
        """See ``Store.due_timers``."""
        self._check_open()
        due = sorted(
            DueTimer(deadline, cid, tid)
            for cid, call in self.data.calls.items()
            if call.record.live
            for tid, deadline in call.timers.items()
            if deadline <= now
        )
        return due if limit is None else due[:limit]

    # -- inside ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailableError("the store is closed")

    def _call(self, call_id: str, expected_version: int | None) -> _Call:
        call = self.data.calls.get(call_id)
        if call is None:
            raise CallNotFoundError(call_id)
        if expected_version is not None and call.record.version != expected_version:
            raise StoreConflictError(call_id, expected_version, call.record.version)
        return call

    def _command(self, key: str) -> OutboxEntry:
        self._check_open()
        entry = self.data.outbox.get(key)
        if entry is None:
            raise StoreError(f"no command {key!r} in the outbox")
        return entry

    def _write_journal(
        self, call: _Call, kinds: list[EntryKind], items: Sequence[JournalItem], now: float
    ) -> None:
        cid = call.record.call_id
        for kind, (_, payload) in zip(kinds, items, strict=True):
            call.journal.append(JournalEntry(cid, len(call.journal) + 1, kind, payload, now))

    def _write_outbox(self, call_id: str, new: Mapping[str, str], now: float) -> None:
        for key, command in new.items():
            # A key already there keeps its state: re-journaling must never resend a command.
            if key not in self.data.outbox:
                self.data.outbox[key] = OutboxEntry(
                    key, call_id, command, CommandState.PENDING, 0, now
                )

    def _claim(self, webhook_id: str, ttl: float) -> bool:
        now = self._clock()
        hooks = self.data.webhooks
        self.data.claims += 1
        if self.data.claims % _SWEEP_EVERY == 0:
            for expired in [i for i, until in hooks.items() if until <= now]:
                del hooks[expired]
        until = hooks.get(webhook_id)
        if until is not None and until > now:
            return False
        hooks[webhook_id] = now + ttl
        return True
