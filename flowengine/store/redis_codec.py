"""How the Redis store's values travel: the scripts' arguments, and their replies decoded.

Everything goes to Redis as text, a script's arguments as one JSON array of strings: times as
Python's ``repr`` of a float (exact, where Lua's printing would round), lists as a count then
their items. A journal entry is stored as one
string, ``"<kind> <at> <payload>"``: neither the kind nor the time holds a space, so the
payload is the rest, as given. A timer is the member ``"<call>\\0<timer>"`` of the ``due``
sorted set (ids hold no NUL), so equal deadlines sort by call then timer, as ``DueTimer`` does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from .base import (
    CallRecord,
    CallStatus,
    CommandState,
    DueTimer,
    EntryKind,
    JournalEntry,
    JournalItem,
    LeaseLostError,
    OutboxEntry,
    check_transition,
    entry_kind,
)
from .errors import CallNotFoundError, StoreConflictError, StoreError


def packed(args: list[str]) -> str:
    """A script's arguments as the one JSON array it decodes."""
    return json.dumps(args, ensure_ascii=False, separators=(",", ":"))


def seconds(value: float) -> str:
    """A time or a deadline for a script: ``repr`` gives back the very same float."""
    return repr(float(value))


def millis(value: float) -> str:
    """A TTL for Redis's ``PX``: whole milliseconds, rounded up, at least one."""
    return str(max(1, math.ceil(value * 1000)))


def fence_arg(fence: int | None) -> str:
    """A fencing token for a script; empty for none (no check)."""
    return "" if fence is None else str(int(fence))


def token_of(value: Any) -> int | None:
    """A token a script answered (``None`` when there is no live lease)."""
    return None if value is None else int(value)


def check_owner(owner: str) -> None:
    """Refuse an empty owner: the scripts use the empty string for "nobody".

    Raises:
        StoreError: ``owner`` is empty.
    """
    if not owner:
        raise StoreError("a lease owner must not be empty")


def pairs_arg(items: Any) -> list[str]:
    """Pairs for a script: their count, then each pair's two items."""
    flat = [str(x) for pair in items for x in pair]
    return [str(len(flat) // 2), *flat]


def journal_arg(items: Sequence[JournalItem]) -> list[str]:
    """Journal items for a script, their kinds checked.

    Raises:
        StoreError: an unknown kind.
    """
    return pairs_arg((str(entry_kind(kind)), payload) for kind, payload in items)


def raise_refusal(reply: Any, call_id: str, expected: int | None, fence: int | None) -> None:
    """Raise the store's error for a script's refusal; nothing for ``ok``."""
    status = reply[0]
    if status == "ok":
        return
    if status == "lease":
        raise LeaseLostError(call_id, int(fence or 0), token_of(reply[1]))
    if status == "notfound":
        raise CallNotFoundError(call_id)
    if status == "conflict":
        raise StoreConflictError(call_id, int(expected or 0), int(reply[1]))
    if status == "nocommand":
        raise StoreError(f"call {call_id!r} has no command {reply[1]!r}")
    if status == "final":
        check_transition(reply[1], CommandState(reply[2]), CommandState(reply[3]))
    if status == "noevent":
        raise StoreError(f"call {call_id!r} has no accepted event {reply[1]} to apply")
    raise StoreError(f"the Redis store answered {reply!r}")  # pragma: no cover - a bug


def call_record(call_id: str, f: dict[str, str]) -> CallRecord:
    """A call from its hash."""
    return CallRecord(
        call_id,
        f["flow"],
        f["flow_hash"],
        f["snapshot"],
        int(f["version"]),
        CallStatus(f["status"]),
        float(f["created_at"]),
        float(f["updated_at"]),
    )


def journal_entry(call_id: str, seq: int, text: str, applied: bool) -> JournalEntry:
    """A journal entry from its stored text."""
    kind, at, payload = text.split(" ", 2)
    return JournalEntry(call_id, seq, EntryKind(kind), payload, float(at), applied)


def outbox_entry(row: Sequence[Any]) -> OutboxEntry:
    """A command from its key and its hash's fields, in ``OutboxEntry``'s order."""
    key, call_id, command, state, attempts, updated = row
    return OutboxEntry(key, call_id, command, CommandState(state), int(attempts), float(updated))


def due_timer(member: str, deadline: str | float) -> DueTimer:
    """A timer from its member of the ``due`` set and its score."""
    call_id, timer_id = member.split("\0", 1)
    return DueTimer(float(deadline), call_id, timer_id)
