"""Durable calls: the store contract and its implementations.

Where it sits: on top of the runtime, under the daemon. The daemon persists each call's
snapshot (``Session.to_json()``), journal, command outbox and timers through a ``Store``, and
restores every live call from it when it starts; the store also keeps the flow versions those
calls are pinned to. ``open_store(url)`` picks the implementation from the ``--store`` URL:

- a path or ``sqlite:///relative.db`` / ``sqlite:////abs.db``: ``SQLiteStore``, the default;
- ``memory://``: ``MemoryStore``, for tests only (``durable=False``);
- ``redis://host:port/db?prefix=name`` (or ``rediss://``, ``unix://``): ``RedisStore``, for
  several daemons sharing one set of calls.

docs/store.md describes the contract, the SQLite and Redis layouts and the durability choices.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

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
    Lease,
    LeaseLostError,
    OutboxEntry,
    Store,
)
from .batching import CommitStats
from .errors import (
    CallNotFoundError,
    StoreConfigError,
    StoreConflictError,
    StoreError,
    StoreUnavailableError,
)
from .flow_versions import FlowVersion
from .memory import MemoryData, MemoryStore
from .redis import RedisStore
from .sqlite import SQLiteStore
from .sqlite_conn import MEMORY, sqlite_path


async def open_store(
    url: str | os.PathLike[str],
    *,
    durable: bool = True,
    clock: Callable[[], float] = time.time,
    **options: Any,
) -> Store:
    """Open the store a ``--store`` URL names.

    Args:
        url: A SQLite path or URL, ``memory://``, or ``redis://...``.
        durable: Refuse stores that lose everything when the process ends (the daemon's
            setting: a call it accepted must outlive it). Tests pass False.
        clock: Wall-clock seconds, for TTLs and record times.
        **options: Passed to ``SQLiteStore`` (``group_commit``, ``max_batch``...) or to
            ``RedisStore.open`` (``max_batch``).

    Raises:
        StoreConfigError: the URL is unusable, or names a volatile store while ``durable``.
        StoreUnavailableError: the database cannot be opened.
    """
    text = os.fspath(url)
    if text in ("memory:", "memory://"):
        if durable:
            raise StoreConfigError("store", _VOLATILE.format(text))
        return MemoryStore(clock=clock)
    if text.startswith(("redis://", "rediss://", "unix://")):
        # Redis keeps the calls when a daemon dies: what ``durable`` asks for. Whether it
        # survives its own restart is the server's setting (RedisStore.persistence).
        return await RedisStore.open(text, clock=clock, **options)
    path = sqlite_path(text)
    if path == MEMORY and durable:
        raise StoreConfigError("store", _VOLATILE.format(text))
    return await SQLiteStore.open(path, clock=clock, **options)


_VOLATILE = (
    "{} keeps calls in memory only: a restart would lose every live call and every "
    "acknowledged webhook; give a file path"
)

__all__ = [
    "DEFAULT_WEBHOOK_TTL",
    "MEMORY",
    "OPEN_STATES",
    "CallNotFoundError",
    "CallRecord",
    "CallStatus",
    "CommandState",
    "CommitStats",
    "DueTimer",
    "EntryKind",
    "FlowVersion",
    "JournalEntry",
    "JournalItem",
    "Lease",
    "LeaseLostError",
    "MemoryData",
    "MemoryStore",
    "OutboxEntry",
    "RedisStore",
    "SQLiteStore",
    "Store",
    "StoreConfigError",
    "StoreConflictError",
    "StoreError",
    "StoreUnavailableError",
    "open_store",
    "sqlite_path",
]
