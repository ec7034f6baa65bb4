"""The SQLite store's statements: each write as a job for the writer, each read as a query.

A write job runs on the writer's connection inside its own savepoint (``batching``), so it may
raise at any point after it has written something: the savepoint takes all of it back. That is
what makes an ``append`` atomic here, where ``memory.py`` has to check everything first. These
functions let the database's own errors through; ``sqlite.py`` turns them into the store's.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from .base import (
    CallRecord,
    CallStatus,
    CommandState,
    DueTimer,
    EntryKind,
    JournalEntry,
    OutboxEntry,
    check_transition,
)
from .errors import CallNotFoundError, StoreConflictError, StoreError
from .flow_versions import FlowVersion

_SWEEP_BATCH = 4
"""Expired webhook ids deleted by each claim."""

_CALL = "call_id, flow, flow_hash, snapshot, version, status, created_at, updated_at"
_ENTRY = "call_id, seq, kind, payload, at, applied"
_OUTBOX = "key, call_id, command, state, attempts, updated_at"


@dataclass(slots=True)
class Step:
    """What one ``create_call`` or ``append`` writes, checked and copied off the caller."""

    call_id: str
    snapshot: str | None = None
    journal: list[tuple[EntryKind, str]] = field(default_factory=list)
    outbox_new: dict[str, str] = field(default_factory=dict)
    settle: list[tuple[str, CommandState]] = field(default_factory=list)
    timers_set: dict[str, float] = field(default_factory=dict)
    timers_cleared: list[str] = field(default_factory=list)
    applied: list[int] = field(default_factory=list)
    end: bool = False


# -- writes (the writer thread, inside a savepoint) --------------------------------------------


def create(
    conn: sqlite3.Connection, step: Step, flow: str, flow_hash: str, now: float
) -> CallRecord:
    """Insert a call at version 1 with its first entries."""
    assert step.snapshot is not None
    cur = conn.execute(
        "INSERT INTO calls (call_id, flow, flow_hash, snapshot, version, status, journal_len,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, 1, 'live', ?, ?, ?)"
        " ON CONFLICT (call_id) DO NOTHING",
        (step.call_id, flow, flow_hash, step.snapshot, len(step.journal), now, now),
    )
    if cur.rowcount == 0:
        raise StoreConflictError(step.call_id, 0, _version(conn, step.call_id)[0])
    _write_step(conn, step, 0, now)
    return CallRecord(step.call_id, flow, flow_hash, step.snapshot, 1, CallStatus.LIVE, now, now)


def append(conn: sqlite3.Connection, step: Step, expected: int, now: float) -> int:
    """One step of a call, under compare-and-set on its version."""
    cid = step.call_id
    # The compare-and-set and the call's row in one statement; the rest follows only if won.
    cur = conn.execute(
        "UPDATE calls SET snapshot = coalesce(?, snapshot), version = version + 1,"
        " journal_len = journal_len + ?, status = CASE WHEN ? THEN 'ended' ELSE status END,"
        " updated_at = ? WHERE call_id = ? AND version = ?",
        (step.snapshot, len(step.journal), step.end, now, cid, expected),
    )
    if cur.rowcount != 1:
        _version(conn, cid, expected)  # raises: no such call, or another version
    _write_step(conn, step, None, now)
    for key, state in step.settle:
        _settle(conn, cid, key, state, now)
    for seq in step.applied:
        cur = conn.execute(
            "UPDATE journal SET applied = 1"
            " WHERE call_id = ? AND seq = ? AND applied = 0 AND kind = 'event'",
            (cid, seq),
        )
        if cur.rowcount != 1:
            raise StoreError(f"call {cid!r} has no accepted event {seq} to apply")
    if step.timers_cleared:
        conn.executemany(
            "DELETE FROM timers WHERE call_id = ? AND timer_id = ?",
            [(cid, t) for t in step.timers_cleared],
        )
    if step.end:
        conn.execute("DELETE FROM timers WHERE call_id = ?", (cid,))
    return expected + 1


def accept(
    conn: sqlite3.Connection,
    call_id: str,
    event: str,
    webhook_id: str | None,
    ttl: float,
    now: float,
) -> JournalEntry | None:
    """Claim the webhook id (if any) and put the event in the call's inbox."""
    _, journal_len = _version(conn, call_id)
    if webhook_id is not None and not claim_webhook(conn, webhook_id, ttl, now):
        return None
    seq = journal_len + 1
    conn.execute(
        "INSERT INTO journal (call_id, seq, kind, payload, at, applied)"
        " VALUES (?, ?, 'event', ?, ?, 0)",
        (call_id, seq, event, now),
    )
    conn.execute("UPDATE calls SET journal_len = ? WHERE call_id = ?", (seq, call_id))
    return JournalEntry(call_id, seq, EntryKind.EVENT, event, now, False)


def end_call(conn: sqlite3.Connection, call_id: str, expected: int | None, now: float) -> int:
    """Mark the call ended and clear its timers."""
    version, _ = _version(conn, call_id, expected)
    conn.execute("DELETE FROM timers WHERE call_id = ?", (call_id,))
    conn.execute(
        "UPDATE calls SET version = ?, status = 'ended', updated_at = ? WHERE call_id = ?",
        (version + 1, now, call_id),
    )
    return version + 1


def begin_command(conn: sqlite3.Connection, key: str, now: float) -> OutboxEntry | None:
    """pending -> unknown, attempts + 1; ``None`` when the command is not pending."""
    _command(conn, key)
    cur = conn.execute(
        "UPDATE outbox SET state = 'unknown', attempts = attempts + 1, updated_at = ?"
        " WHERE key = ? AND state = 'pending'",
        (now, key),
    )
    return _command(conn, key) if cur.rowcount == 1 else None


def mark_command(
    conn: sqlite3.Connection, key: str, state: CommandState, now: float
) -> OutboxEntry:
    """Move a command to ``state`` (final states stay)."""
    entry = _command(conn, key)
    if not check_transition(key, entry.state, state):
        return entry
    conn.execute(
        "UPDATE outbox SET state = ?, updated_at = ? WHERE key = ?", (str(state), now, key)
    )
    return _command(conn, key)


def claim_webhook(conn: sqlite3.Connection, webhook_id: str, ttl: float, now: float) -> bool:
    """Insert the id, or take over an expired claim of it; False when a live claim exists."""
    # Each claim also deletes a few expired ids: more than it adds, so the table stays at
    # the ids of one TTL without a sweeper task, for the price of one index probe.
    conn.execute(
        "DELETE FROM webhooks WHERE id IN (SELECT id FROM webhooks WHERE expires_at <= ?"
        " ORDER BY expires_at LIMIT ?)",
        (now, _SWEEP_BATCH),
    )
    cur = conn.execute(
        "INSERT INTO webhooks (id, expires_at) VALUES (?, ?) ON CONFLICT (id) DO UPDATE"
        " SET expires_at = excluded.expires_at WHERE webhooks.expires_at <= ?",
        (webhook_id, now + ttl, now),
    )
    return cur.rowcount == 1


def purge_ended(conn: sqlite3.Connection, before: float) -> int:
    """Delete calls ended before ``before``, with their journal, outbox and timers."""
    gone = "SELECT call_id FROM calls WHERE status = 'ended' AND updated_at < ?"
    for table in ("journal", "outbox", "timers"):
        conn.execute(f"DELETE FROM {table} WHERE call_id IN ({gone})", (before,))
    cur = conn.execute("DELETE FROM calls WHERE status = 'ended' AND updated_at < ?", (before,))
    return cur.rowcount


def save_flow_version(
    conn: sqlite3.Connection, flow_hash: str, name: str, source: str, now: float
) -> bool:
    """Insert a flow version unless its hash is there; whether it was new."""
    cur = conn.execute(
        "INSERT INTO flow_versions (flow_hash, name, source, saved_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (flow_hash) DO NOTHING",
        (flow_hash, name, source, now),
    )
    return cur.rowcount == 1


def _write_step(conn: sqlite3.Connection, step: Step, journal_len: int | None, now: float) -> None:
    """The journal, new commands and timers of a step whose call row is already written.

    ``journal_len`` is the journal's length before the step; ``None`` when the call's row
    already counts the step's entries (``append``), which then number themselves from it.
    """
    cid = step.call_id
    if step.journal and journal_len is not None:
        conn.executemany(
            "INSERT INTO journal (call_id, seq, kind, payload, at) VALUES (?, ?, ?, ?, ?)",
            [(cid, journal_len + i, str(k), p, now) for i, (k, p) in enumerate(step.journal, 1)],
        )
    elif step.journal:
        last = len(step.journal)
        conn.executemany(
            "INSERT INTO journal (call_id, seq, kind, payload, at)"
            " SELECT call_id, journal_len - ?, ?, ?, ? FROM calls WHERE call_id = ?",
            [(last - i, str(k), p, now, cid) for i, (k, p) in enumerate(step.journal, 1)],
        )
    if step.outbox_new:
        # A key already there keeps its state: re-journaling must never resend a command.
        conn.executemany(
            "INSERT INTO outbox (key, call_id, command, state, attempts, updated_at)"
            " VALUES (?, ?, ?, 'pending', 0, ?) ON CONFLICT (key) DO NOTHING",
            [(key, cid, command, now) for key, command in step.outbox_new.items()],
        )
    if step.timers_set:
        conn.executemany(
            "INSERT INTO timers (call_id, timer_id, deadline) VALUES (?, ?, ?)"
            " ON CONFLICT (call_id, timer_id) DO UPDATE SET deadline = excluded.deadline",
            [(cid, timer, deadline) for timer, deadline in step.timers_set.items()],
        )


def _settle(
    conn: sqlite3.Connection, call_id: str, key: str, state: CommandState, now: float
) -> None:
    # The usual case in one statement: an open command of this call.
    cur = conn.execute(
        "UPDATE outbox SET state = ?, updated_at = ?"
        " WHERE key = ? AND call_id = ? AND state IN ('pending', 'unknown')",
        (str(state), now, key, call_id),
    )
    if cur.rowcount == 1:
        return
    row = conn.execute("SELECT call_id, state FROM outbox WHERE key = ?", (key,)).fetchone()
    if row is None or row[0] != call_id:
        raise StoreError(f"call {call_id!r} has no command {key!r}")
    check_transition(key, CommandState(row[1]), state)  # final: same state is a no-op


def _version(
    conn: sqlite3.Connection, call_id: str, expected: int | None = None
) -> tuple[int, int]:
    row = conn.execute(
        "SELECT version, journal_len FROM calls WHERE call_id = ?", (call_id,)
    ).fetchone()
    if row is None:
        raise CallNotFoundError(call_id)
    if expected is not None and row[0] != expected:
        raise StoreConflictError(call_id, expected, row[0])
    return int(row[0]), int(row[1])


def _command(conn: sqlite3.Connection, key: str) -> OutboxEntry:
    entry = command(conn, key)
    if entry is None:
        raise StoreError(f"no command {key!r} in the outbox")
    return entry


# -- reads (the reader thread) ----------------------------------------------------------------


def load_call(conn: sqlite3.Connection, call_id: str) -> CallRecord | None:
    """One call."""
    row = conn.execute(f"SELECT {_CALL} FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    return _record(row) if row else None


def live_calls(conn: sqlite3.Connection) -> list[CallRecord]:
    """Live calls, oldest first (through the ``calls_live`` index)."""
    rows = conn.execute(
        f"SELECT {_CALL} FROM calls WHERE status = 'live' ORDER BY created_at, call_id"
    )
    return [_record(row) for row in rows]


def journal(conn: sqlite3.Connection, call_id: str, after: int) -> list[JournalEntry]:
    """A call's entries numbered above ``after``."""
    rows = conn.execute(
        f"SELECT {_ENTRY} FROM journal WHERE call_id = ? AND seq > ? ORDER BY seq",
        (call_id, after),
    )
    return [_entry(row) for row in rows]


def inbox(conn: sqlite3.Connection, call_id: str | None) -> list[JournalEntry]:
    """Accepted events not applied yet."""
    if call_id is None:
        rows = conn.execute(f"SELECT {_ENTRY} FROM journal WHERE applied = 0 ORDER BY call_id, seq")
    else:
        rows = conn.execute(
            f"SELECT {_ENTRY} FROM journal WHERE applied = 0 AND call_id = ? ORDER BY seq",
            (call_id,),
        )
    return [_entry(row) for row in rows]


def pending_commands(conn: sqlite3.Connection, call_id: str | None) -> list[OutboxEntry]:
    """Open commands in the order they were produced."""
    where = "state IN ('pending', 'unknown')"
    if call_id is None:
        rows = conn.execute(f"SELECT {_OUTBOX} FROM outbox WHERE {where} ORDER BY id")
    else:
        rows = conn.execute(
            f"SELECT {_OUTBOX} FROM outbox WHERE call_id = ? AND {where} ORDER BY id", (call_id,)
        )
    return [_outbox(row) for row in rows]


def command(conn: sqlite3.Connection, key: str) -> OutboxEntry | None:
    """One outbox entry."""
    row = conn.execute(f"SELECT {_OUTBOX} FROM outbox WHERE key = ?", (key,)).fetchone()
    return _outbox(row) if row else None


def due_timers(conn: sqlite3.Connection, now: float, limit: int | None) -> list[DueTimer]:
    """Timers of live calls due by ``now``, earliest first.

    Ending a call clears its timers, but an ended call may still be appended to (an event
    recorded as ignored), with timers: the join keeps those out.
    """
    rows = conn.execute(
        "SELECT t.deadline, t.call_id, t.timer_id FROM timers AS t JOIN calls AS c"
        " ON c.call_id = t.call_id WHERE t.deadline <= ? AND c.status = 'live'"
        " ORDER BY t.deadline, t.call_id, t.timer_id LIMIT ?",
        (now, -1 if limit is None else limit),
    )
    return [DueTimer(float(d), c, t) for d, c, t in rows]


def flow_version(conn: sqlite3.Connection, flow_hash: str) -> FlowVersion | None:
    """One flow version by its hash."""
    row = conn.execute(
        "SELECT flow_hash, name, source, saved_at FROM flow_versions WHERE flow_hash = ?",
        (flow_hash,),
    ).fetchone()
    return None if row is None else FlowVersion(row[0], row[1], row[2], row[3])


def _record(row: Any) -> CallRecord:
    cid, flow, flow_hash, snapshot, version, status, created, updated = row
    return CallRecord(
        cid, flow, flow_hash, snapshot, int(version), CallStatus(status), created, updated
    )


def _entry(row: Any) -> JournalEntry:
    cid, seq, kind, payload, at, applied = row
    return JournalEntry(cid, int(seq), EntryKind(kind), payload, at, bool(applied))


def _outbox(row: Any) -> OutboxEntry:
    key, cid, command_, state, attempts, updated = row
    return OutboxEntry(key, cid, command_, CommandState(state), int(attempts), updated)
