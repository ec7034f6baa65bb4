"""The Redis store: several daemons, one set of calls.

Every write is one Lua script (``redis_scripts``), so it is atomic and its compare-and-set on
the call's version, its fencing check and its writes happen at one moment for every daemon.
The store's writes go through one queue (``redis_io.ScriptWriter``): in the order they were
called, many per round trip. Reads are plain commands, a ``MULTI`` or a read-only script. Every
key starts with the URL's ``prefix``; the layout and the scripts' contracts are in
docs/store.md. Every error of redis-py is caught in this module and ``redis_io`` and becomes
a ``StoreError``.

Durability is Redis's: the store is as durable as the server's persistence (``appendonly yes``
with ``appendfsync always`` keeps every acknowledged write); ``RedisStore.persistence`` says
what the server does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from .base import (
    DEFAULT_WEBHOOK_TTL,
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
    check_ttl,
)
from .errors import (
    StoreConfigError,
    StoreError,
    StoreUnavailableError,
)
from .flow_versions import FlowVersion, check_flow_version
from .redis_codec import (
    call_record,
    due_timer,
    fence_arg,
    journal_arg,
    journal_entry,
    millis,
    outbox_entry,
    packed,
    pairs_arg,
    raise_refusal,
    seconds,
    token_of,
)
from .redis_io import (
    ScriptWriter,
    connect,
    load_scripts,
    persistence,
    redact,
    redis_url,
    run_script,
    unavailable,
)
from .redis_lease import RedisLeases

_PURGE_BATCH = 200
"""Ended calls deleted per script: a long purge must not stall Redis for everyone."""

_CHUNK = 500
"""Calls read per pipeline by ``live_calls``."""


class RedisStore(RedisLeases):
    """A ``Store`` in Redis; open it with ``await RedisStore.open("redis://host:6379/0")``.

    Args:
        client: A redis-py asyncio client answering text (``decode_responses=True``).
        prefix: The first part of every key of the store.
        clock: Wall-clock seconds, for record times and expiries, as in the other stores.
        max_batch: The most write scripts sent in one round trip.
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str,
        clock: Callable[[], float] = time.time,
        max_batch: int = 256,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self._clock = clock
        self._writer = ScriptWriter(client, max_batch=max_batch)
        self._open = False
        self.persistence = "unknown"
        """What the server keeps on disk, as found when opened (log it at start)."""

    @classmethod
    async def open(
        cls, url: str, *, clock: Callable[[], float] = time.time, max_batch: int = 256
    ) -> RedisStore:
        """Connect, load the scripts, start the writer.

        Raises:
            StoreConfigError: an unusable URL.
            StoreUnavailableError: Redis cannot be reached or refuses the connection.
        """
        address, prefix = redis_url(url)
        try:
            client = connect(address)
        except ValueError as exc:
            raise StoreConfigError("store", f"{redact(url)}: {exc}") from exc
        store = cls(client, prefix=prefix, clock=clock, max_batch=max_batch)
        try:
            await client.ping()
            await load_scripts(client)
            store.persistence = await persistence(client)
        except (TypeError, ValueError) as exc:  # redis-py refused an option of the URL
            await client.aclose()
            raise StoreConfigError("store", f"{redact(url)}: {exc}") from exc
        except RedisError as exc:
            await client.aclose()
            raise StoreUnavailableError(f"cannot use Redis at {redact(url)}: {exc}") from exc
        store._writer.start()
        store._open = True
        return store

    async def __aenter__(self) -> RedisStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def batches(self) -> tuple[int, int]:
        """Write round trips and write scripts sent so far."""
        return self._writer.batches, self._writer.jobs

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
        now = self._clock()
        args = [call_id, seconds(now), fence_arg(fence), flow, flow_hash, snapshot]
        args += journal_arg(journal_entries)
        args += pairs_arg((outbox_new or {}).items())
        args += pairs_arg((tid, seconds(dl)) for tid, dl in (timers_set or {}).items())
        reply = await self._write("create", args)
        raise_refusal(reply, call_id, 0, fence)
        return CallRecord(call_id, flow, flow_hash, snapshot, 1, CallStatus.LIVE, now, now)

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
        settle = [(k, str(CommandState.DONE)) for k in outbox_done]
        settle += [(k, str(CommandState.FAILED)) for k in outbox_failed]
        if len({k for k, _ in settle}) != len(settle):
            raise StoreError(f"call {call_id!r}: a command is settled twice in one append")
        args = [call_id, seconds(self._clock()), fence_arg(fence), str(int(expected_version))]
        args += ["0" if snapshot is None else "1", snapshot or "", "1" if end else "0"]
        args += journal_arg(journal_entries)
        args += pairs_arg((outbox_new or {}).items())
        args += pairs_arg(settle)
        args += pairs_arg((tid, seconds(dl)) for tid, dl in (timers_set or {}).items())
        args += [str(len(timers_cleared)), *timers_cleared]
        args += [str(len(applied)), *(str(int(seq)) for seq in applied)]
        reply = await self._write("append", args)
        raise_refusal(reply, call_id, expected_version, fence)
        return int(reply[1])

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
        hook = ["0", ""] if webhook_id is None else ["1", webhook_id]
        args = [call_id, seconds(now), event, *hook, seconds(now + ttl), millis(ttl), by or ""]
        reply = await self._write("accept", args)
        if reply[0] == "duplicate":
            return None
        raise_refusal(reply, call_id, None, None)
        return JournalEntry(call_id, int(reply[1]), EntryKind.EVENT, event, now, False)

    async def end_call(
        self, call_id: str, *, expected_version: int | None = None, fence: int | None = None
    ) -> int:
        """See ``Store.end_call``."""
        expected = "" if expected_version is None else str(int(expected_version))
        args = [call_id, seconds(self._clock()), fence_arg(fence), expected]
        reply = await self._write("end_call", args)
        raise_refusal(reply, call_id, expected_version, fence)
        return int(reply[1])

    async def begin_command(self, key: str, *, fence: int | None = None) -> OutboxEntry | None:
        """See ``Store.begin_command``."""
        now = self._clock()
        reply = await self._write("begin_command", [key, seconds(now), fence_arg(fence)])
        if reply[0] == "nocommand":
            raise StoreError(f"no command {key!r} in the outbox")
        if reply[0] == "lease":
            raise LeaseLostError(str(reply[2]), int(fence or 0), token_of(reply[1]))
        if reply[0] == "none":
            return None
        _, call_id, command, attempts = reply
        return OutboxEntry(key, call_id, command, CommandState.UNKNOWN, int(attempts), now)

    async def mark_command(self, key: str, state: CommandState) -> OutboxEntry:
        """See ``Store.mark_command``."""
        state = CommandState(state)
        reply = await self._write("mark_command", [key, seconds(self._clock()), str(state)])
        if reply[0] == "nocommand":
            raise StoreError(f"no command {key!r} in the outbox")
        if reply[0] == "final":
            check_transition(key, CommandState(reply[1]), state)
        return outbox_entry([key, *reply[1:]])

    async def claim_webhook(self, webhook_id: str, ttl: float = DEFAULT_WEBHOOK_TTL) -> bool:
        """See ``Store.claim_webhook``."""
        check_ttl(ttl)
        now = self._clock()
        reply = await self._write(
            "claim_webhook", [webhook_id, seconds(now), seconds(now + ttl), millis(ttl)]
        )
        return bool(reply)

    async def purge_ended(self, before: float) -> int:
        """See ``Store.purge_ended``."""
        total = 0
        while True:
            gone = int(await self._write("purge", [seconds(before), str(_PURGE_BATCH)]))
            total += gone
            if gone < _PURGE_BATCH:
                return total

    async def save_flow_version(self, flow_hash: str, *, name: str, source: str) -> bool:
        """See ``Store.save_flow_version``: the hash ``<prefix>:flow:<hash>``, set once."""
        check_flow_version(flow_hash, name)
        args = [flow_hash, name, source, seconds(self._clock())]
        return bool(await self._write("save_flow", args))

    async def flow_version(self, flow_hash: str) -> FlowVersion | None:
        """See ``Store.flow_version``."""
        fields = ["name", "source", "saved_at"]
        row = await self._read(self.client.hmget(self._key("flow", flow_hash), fields))
        return None if row[0] is None else FlowVersion(flow_hash, row[0], row[1], float(row[2]))

    async def close(self) -> None:
        """Send the queued writes, then disconnect; the data stays in Redis."""
        if not self._open:
            return
        self._open = False
        try:
            await self._writer.stop()
        finally:
            await self.client.aclose()

    # -- reads -------------------------------------------------------------------------------

    async def load_call(self, call_id: str) -> CallRecord | None:
        """See ``Store.load_call``."""
        fields = await self._read(self.client.hgetall(self._key("call", call_id)))
        return call_record(call_id, fields) if fields else None

    async def live_calls(self) -> list[CallRecord]:
        """See ``Store.live_calls``: the ``live`` index, then the calls, a pipeline at a time."""
        ids: list[str] = await self._read(self.client.zrange(f"{self.prefix}:live", 0, -1))
        records: list[CallRecord] = []
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            async with self.client.pipeline(transaction=False) as pipe:
                for cid in chunk:
                    pipe.hgetall(self._key("call", cid))
                rows = await self._read(pipe.execute())
            records += [
                call_record(cid, fields)
                for cid, fields in zip(chunk, rows, strict=True)
                if fields and fields["status"] == CallStatus.LIVE
            ]
        return sorted(records, key=lambda r: (r.created_at, r.call_id))

    async def journal(self, call_id: str, *, after: int = 0) -> list[JournalEntry]:
        """See ``Store.journal``: the list and the inbox's numbers in one ``MULTI``."""
        start = max(after, 0)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.lrange(self._key("journal", call_id), start, -1)
            pipe.zrange(self._key("inbox", call_id), 0, -1)
            raw, waiting = await self._read(pipe.execute())
        unapplied = {int(seq) for seq in waiting}
        return [
            journal_entry(call_id, seq, text, seq not in unapplied)
            for seq, text in enumerate(raw, start + 1)
        ]

    async def inbox(self, call_id: str | None = None) -> list[JournalEntry]:
        """See ``Store.inbox``."""
        flat = await self._script("inbox", [call_id or ""])
        entries = [
            journal_entry(flat[i], int(flat[i + 1]), flat[i + 2], False)
            for i in range(0, len(flat), 3)
        ]
        return sorted(entries, key=lambda e: (e.call_id, e.seq))

    async def pending_commands(self, call_id: str | None = None) -> list[OutboxEntry]:
        """See ``Store.pending_commands``."""
        return [outbox_entry(row) for row in await self._script("pending", [call_id or ""])]

    async def command(self, key: str) -> OutboxEntry | None:
        """See ``Store.command``."""
        fields = ["call_id", "command", "state", "attempts", "updated_at"]
        row = await self._read(self.client.hmget(self._key("cmd", key), fields))
        return None if row[0] is None else outbox_entry([key, *row])

    async def due_timers(self, now: float, *, limit: int | None = None) -> list[DueTimer]:
        """See ``Store.due_timers``: the ``due`` sorted set (live calls' timers only)."""
        if limit is not None and limit <= 0:
            return []
        rows = await self._read(
            self.client.zrange(
                f"{self.prefix}:due",
                "-inf",
                seconds(now),
                byscore=True,
                withscores=True,
                score_cast_func=float,
                offset=None if limit is None else 0,
                num=limit,
            )
        )
        return [due_timer(member, score) for member, score in rows]

    # -- inside ------------------------------------------------------------------------------

    def _key(self, kind: str, ident: str) -> str:
        return f"{self.prefix}:{kind}:{ident}"

    def _check_open(self) -> None:
        if not self._open:
            raise StoreUnavailableError("the store is closed")

    async def _write(self, script: str, args: list[str]) -> Any:
        self._check_open()
        return await self._writer.submit(script, [self.prefix, packed(args)])

    async def _script(self, script: str, args: list[str]) -> Any:
        self._check_open()
        return await run_script(self.client, script, [self.prefix, packed(args)])

    async def _read(self, pending: Any) -> Any:
        try:
            self._check_open()
            return await pending
        except RedisError as exc:
            raise unavailable(exc) from exc
        finally:
            # A refused read never awaited its coroutine: close it so nothing warns.
            close = getattr(pending, "close", None)
            if close is not None:
                close()
