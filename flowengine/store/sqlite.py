"""The SQLite store: the daemon's default, embedded, one file, nothing to set up.

Writes go through one writer thread with its own connection (``batching.GroupCommitter``):
concurrent writes of many calls share one transaction and one fsync. Reads use a second
connection on a reader thread; in WAL mode they never wait for the writer. The file is in WAL
mode with ``synchronous=FULL`` (see ``_WRITER_PRAGMAS`` for why), its schema is migrated by
``user_version`` when it is opened, and a lock file keeps a second daemon off it (the URL, the
lock file, the transaction verbs and the error mapping are in ``sqlite_conn.py``). Every error
of ``sqlite3`` becomes a ``StoreError`` (``sqlite_conn.guard``, ``_connect``). Leases, timer
claims and wake-ups live in the process (``local_leases.LocalLeases``): the lock file already
makes this process the file's only writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from . import sqlite_ops as ops
from .base import (
    DEFAULT_WEBHOOK_TTL,
    CallRecord,
    CommandState,
    DueTimer,
    JournalEntry,
    JournalItem,
    OutboxEntry,
    check_ttl,
    entry_kind,
)
from .batching import CommitStats, GroupCommitter
from .errors import StoreError, StoreUnavailableError
from .flow_versions import FlowVersion, check_flow_version
from .local_leases import LocalLeaseMethods, LocalLeases
from .sqlite_conn import MEMORY, Transactions, guard, lock_file, sqlite_path
from .sqlite_schema import migrate

T = TypeVar("T")

# Durability. WAL: readers never block the writer, and a commit appends to one file instead of
# rewriting pages in place. synchronous=FULL: every commit fsyncs the WAL before it returns, so
# a write that was acknowledged (a webhook answered 200) survives a power cut or an OS crash.
# NORMAL with WAL fsyncs only at checkpoints: it survives the process being killed but may
# lose the last commits to a power cut, which is the promise itself; it is not used. The cost
# of FULL (one fsync per transaction) is what group commit shares among many writes.
_WRITER_PRAGMAS = ("PRAGMA synchronous = FULL",)


class SQLiteStore(LocalLeaseMethods):
    """A ``Store`` in one SQLite file; open it with ``await SQLiteStore.open(path)``.

    Args:
        path: A file path or a ``sqlite:`` URL (``sqlite_path``); ``:memory:`` for tests.
        clock: Wall-clock seconds, for TTLs and record times (wall clock, not monotonic:
            expiries outlive the process).
        group_commit: Batch concurrent writes into one transaction (False: one transaction
            per write, for comparison).
        max_batch: The most writes in one transaction.
        exclusive: Hold a lock file next to the database so a second process cannot open it
            (two daemons on one file would both run its calls).
        busy_timeout: Seconds to wait for another connection's lock before giving up.
        on_commit: Called in the writer thread after each commit with the batch's size.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        group_commit: bool = True,
        max_batch: int = 256,
        exclusive: bool = True,
        busy_timeout: float = 5.0,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self.path = sqlite_path(path)
        self.memory = self.path == MEMORY
        self._clock = clock
        self._exclusive = exclusive and not self.memory
        self._busy_timeout = busy_timeout
        self._lock_fd: int | None = None
        self._write: sqlite3.Connection | None = None
        self._read: sqlite3.Connection | None = None
        # One connection serves both threads for :memory: (each connection would be its own
        # database); this lock keeps a read out of the middle of a batch.
        self._shared = threading.Lock() if self.memory else None
        self._writer = GroupCommitter(
            Transactions(lambda: self._write),
            max_batch=max_batch if group_commit else 1,
            lock=self._shared,
            on_commit=on_commit,
        )
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="flowengine-store-reader")
        self._leases = LocalLeases()
        self._open = False

    @classmethod
    async def open(cls, path: str | os.PathLike[str], **options: Any) -> SQLiteStore:
        """Open (creating or migrating) the database and start the writer.

        Raises:
            StoreConfigError: an unusable path.
            StoreUnavailableError: the file is locked by another process, unreadable, or
                from a newer flowengine.
        """
        store = cls(path, **options)
        await asyncio.to_thread(store._connect)
        store._writer.start()
        store._open = True
        return store

    async def __aenter__(self) -> SQLiteStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def stats(self) -> CommitStats:
        """Commits and jobs of the writer so far."""
        return self._writer.stats

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
        step = ops.Step(
            call_id,
            snapshot=snapshot,
            journal=[(entry_kind(k), p) for k, p in journal_entries],
            outbox_new=dict(outbox_new or {}),
            timers_set=dict(timers_set or {}),
        )
        return await self._fenced(call_id, fence, ops.create, step, flow, flow_hash, self._clock())

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
        settle = [(k, CommandState.DONE) for k in outbox_done]
        settle += [(k, CommandState.FAILED) for k in outbox_failed]
        if len({k for k, _ in settle}) != len(settle):
            raise StoreError(f"call {call_id!r}: a command is settled twice in one append")
        step = ops.Step(
            call_id,
            snapshot=snapshot,
            journal=[(entry_kind(k), p) for k, p in journal_entries],
            outbox_new=dict(outbox_new or {}),
            settle=settle,
            timers_set=dict(timers_set or {}),
            timers_cleared=list(timers_cleared),
            applied=list(applied),
            end=end,
        )
        return await self._fenced(call_id, fence, ops.append, step, expected_version, self._clock())

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
        check_ttl(ttl)
        now = self._clock()
        entry = await self._submit(ops.accept, call_id, event, webhook_id, ttl, now)
        if entry is not None:
            self._leases.wake(call_id, by, now)
        return entry

    async def end_call(
        self, call_id: str, *, expected_version: int | None = None, fence: int | None = None
    ) -> int:
        """See ``Store.end_call``."""
        return await self._fenced(
            call_id, fence, ops.end_call, call_id, expected_version, self._clock()
        )

    async def begin_command(self, key: str, *, fence: int | None = None) -> OutboxEntry | None:
        """See ``Store.begin_command``."""
        if fence is None:
            return await self._submit(ops.begin_command, key, self._clock())

        def fenced(conn: sqlite3.Connection, now: float) -> OutboxEntry | None:
            entry = ops.command(conn, key)
            if entry is not None:
                self._leases.check(entry.call_id, fence, now)
            return ops.begin_command(conn, key, now)

        return await self._submit(fenced, self._clock())

    async def mark_command(self, key: str, state: CommandState) -> OutboxEntry:
        """See ``Store.mark_command``."""
        return await self._submit(ops.mark_command, key, CommandState(state), self._clock())

    async def claim_webhook(self, webhook_id: str, ttl: float = DEFAULT_WEBHOOK_TTL) -> bool:
        """See ``Store.claim_webhook``."""
        check_ttl(ttl)
        return await self._submit(ops.claim_webhook, webhook_id, ttl, self._clock())

    async def purge_ended(self, before: float) -> int:
        """See ``Store.purge_ended``."""
        return await self._submit(ops.purge_ended, before)

    async def save_flow_version(self, flow_hash: str, *, name: str, source: str) -> bool:
        """See ``Store.save_flow_version``."""
        check_flow_version(flow_hash, name)
        return await self._submit(ops.save_flow_version, flow_hash, name, source, self._clock())

    async def flow_version(self, flow_hash: str) -> FlowVersion | None:
        """See ``Store.flow_version``."""
        return await self._query(ops.flow_version, flow_hash)

    async def close(self) -> None:
        """Commit what is queued, stop both threads, checkpoint the WAL, release the file."""
        if not self._open:
            return
        self._open = False
        await self._writer.stop()
        await asyncio.to_thread(self._reader.shutdown)
        await asyncio.to_thread(self._disconnect)

    @property
    def local_leases(self) -> LocalLeases:
        """The leases, timer claims and wake-ups (``LocalLeaseMethods`` serves them)."""
        return self._leases

    # -- reads -------------------------------------------------------------------------------

    async def load_call(self, call_id: str) -> CallRecord | None:
        """See ``Store.load_call``."""
        return await self._query(ops.load_call, call_id)

    async def live_calls(self) -> list[CallRecord]:
        """See ``Store.live_calls``."""
        return await self._query(ops.live_calls)

    async def journal(self, call_id: str, *, after: int = 0) -> list[JournalEntry]:
        """See ``Store.journal``."""
        return await self._query(ops.journal, call_id, after)

    async def inbox(self, call_id: str | None = None) -> list[JournalEntry]:
        """See ``Store.inbox``."""
        return await self._query(ops.inbox, call_id)

    async def pending_commands(self, call_id: str | None = None) -> list[OutboxEntry]:
        """See ``Store.pending_commands``."""
        return await self._query(ops.pending_commands, call_id)

    async def command(self, key: str) -> OutboxEntry | None:
        """See ``Store.command``."""
        return await self._query(ops.command, key)

    async def due_timers(self, now: float, *, limit: int | None = None) -> list[DueTimer]:
        """See ``Store.due_timers``."""
        return await self._query(ops.due_timers, now, limit)

    # -- inside ------------------------------------------------------------------------------

    async def _submit(self, job: Callable[..., T], *args: Any) -> T:
        if not self._open:
            raise StoreUnavailableError("the store is closed")
        conn = self._write
        assert conn is not None
        return await self._writer.submit(lambda: guard(job, conn, *args))

    async def _fenced(
        self, call_id: str, fence: int | None, job: Callable[..., T], *args: Any
    ) -> T:
        if fence is None:
            return await self._submit(job, *args)

        # The check runs in the writer thread, in the job's savepoint: a lease lost while the
        # job waited in the queue still refuses it.
        def fenced(conn: sqlite3.Connection, *rest: Any) -> T:
            self._leases.check(call_id, fence, self._clock())
            return job(conn, *rest)

        return await self._submit(fenced, *args)

    def _check_open(self) -> None:
        if not self._open:
            raise StoreUnavailableError("the store is closed")

    async def _query(self, query: Callable[..., T], *args: Any) -> T:
        if not self._open:
            raise StoreUnavailableError("the store is closed")
        conn = self._read
        assert conn is not None

        def run() -> T:
            if self._shared is None:
                return guard(query, conn, *args)
            with self._shared:
                return guard(query, conn, *args)

        return await asyncio.get_running_loop().run_in_executor(self._reader, run)

    def _connect(self) -> None:
        try:
            if self._exclusive:
                self._lock_fd = lock_file(self.path)
            self._write = self._connection()
            mode = self._write.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if not self.memory and str(mode).lower() != "wal":
                raise StoreUnavailableError(f"{self.path}: WAL mode refused (got {mode!r})")
            for pragma in _WRITER_PRAGMAS:
                self._write.execute(pragma)
            migrate(self._write, self.path)
            if self.memory:
                self._read = self._write
            else:
                self._read = self._connection()
                self._read.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            self._disconnect()
            raise StoreUnavailableError(f"cannot open {self.path}: {exc}") from exc
        except StoreError:
            self._disconnect()
            raise

    def _connection(self) -> sqlite3.Connection:
        # isolation_level=None: the module's implicit transactions are off; the writer says
        # BEGIN and COMMIT itself. check_same_thread=False: each connection is used by one
        # thread at a time (its own), or under self._shared, but not the thread that opened it.
        return sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )

    def _disconnect(self) -> None:
        if self._write is not None and not self.memory:
            # Fold the WAL into the database so the file stands alone when copied. Only an
            # optimisation: a WAL left behind is replayed on the next open.
            with contextlib.suppress(sqlite3.Error):
                self._write.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        for conn in {id(c): c for c in (self._read, self._write) if c is not None}.values():
            conn.close()
        self._read = self._write = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
