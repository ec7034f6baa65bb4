"""The Redis store's plumbing: its URL, its connection, and the writer that orders its scripts.

``redis_url`` splits a ``--store`` URL into what redis-py takes and the store's key prefix.
``connect`` opens a client that never retries by itself: redis-py would send a write again
after a lost connection, and a write that had reached Redis would then run twice (an event
journaled twice). ``ScriptWriter`` sends every write script of a store on one queue: in the
order they were called (so concurrent writes are answered as the reference store answers
them), many per round trip (a pipeline), as SQLite's group commit shares a transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from . import redis_scripts as lua
from .errors import StoreConfigError, StoreError, StoreUnavailableError

DEFAULT_PREFIX = "flowengine"
"""The key prefix when the URL gives none: every key of the store starts with ``<prefix>:``."""

SOURCES: dict[str, str] = {
    name: lua.PRELUDE + body
    for name, body in {
        "create": lua.CREATE,
        "append": lua.APPEND,
        "accept": lua.ACCEPT,
        "end_call": lua.END_CALL,
        "begin_command": lua.BEGIN_COMMAND,
        "mark_command": lua.MARK_COMMAND,
        "claim_webhook": lua.CLAIM_WEBHOOK,
        "purge": lua.PURGE,
        "save_flow": lua.SAVE_FLOW,
        "acquire": lua.ACQUIRE,
        "renew": lua.RENEW,
        "release": lua.RELEASE,
        "claim_timers": lua.CLAIM_TIMERS,
        "inbox": lua.INBOX,
        "pending": lua.PENDING,
    }.items()
}
"""Each script by name, with the prelude (``redis_scripts``)."""

SHAS: dict[str, str] = {
    name: hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
    for name, source in SOURCES.items()
}
"""What ``EVALSHA`` names each script by (Redis's own SHA1 of the source)."""

_PREFIX = re.compile(r"[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-]+)*")
SCHEMES = ("redis://", "rediss://", "unix://")


def redis_url(url: str) -> tuple[str, str]:
    """The client's URL and the key prefix named by ``redis://host:port/db?prefix=name``.

    ``prefix`` is the store's own query parameter; the rest (database number, password,
    ``rediss://`` for TLS, ``unix://`` sockets, redis-py's options) goes to redis-py as is.

    Raises:
        StoreConfigError: not a Redis URL, or an unusable prefix or database number.
    """
    if not url.startswith(SCHEMES):
        raise StoreConfigError("store", f"{redact(url)} is not a redis:// URL")
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in query if name == "prefix"]
    prefix = prefixes[-1] if prefixes else DEFAULT_PREFIX
    if not _PREFIX.fullmatch(prefix):
        raise StoreConfigError(
            "store", f"key prefix {prefix!r}: use letters, digits, '_', '.', '-', ':'"
        )
    database = parts.path.strip("/") if parts.scheme != "unix" else ""
    if database and not database.isdigit():
        raise StoreConfigError("store", f"{redact(url)}: the path must be a database number")
    rest = urlencode([(name, value) for name, value in query if name != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def connect(url: str, *, connect_timeout: float = 5.0) -> Redis:
    """A client for ``url`` (no prefix in it) that answers text and never retries by itself."""
    return Redis.from_url(
        url,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
        socket_connect_timeout=connect_timeout,
    )


def unavailable(exc: BaseException) -> StoreUnavailableError:
    """The store's error for a failure of Redis or of the connection to it."""
    return StoreUnavailableError(f"Redis failed: {exc}")


async def load_scripts(client: Redis) -> None:
    """Put every script in Redis's script cache (``EVALSHA`` names them by their SHA1)."""
    for name, source in SOURCES.items():
        sha = await client.script_load(source)
        if sha != SHAS[name]:  # pragma: no cover - Redis hashes the same bytes
            raise StoreUnavailableError(f"Redis named script {name} {sha}, not {SHAS[name]}")


async def run_script(client: Redis, name: str, args: Sequence[str]) -> Any:
    """Run one script outside the writer (the reads), loading the scripts again if needed.

    Raises:
        StoreUnavailableError: Redis failed.
    """
    try:
        try:
            return await client.evalsha(SHAS[name], 0, *args)
        except NoScriptError:  # Redis restarted, or SCRIPT FLUSH: its cache is empty
            await load_scripts(client)
            return await client.evalsha(SHAS[name], 0, *args)
    except RedisError as exc:
        raise unavailable(exc) from exc


_Job = tuple[str, Sequence[str], "asyncio.Future[Any]"]


class ScriptWriter:
    """Runs write scripts in the order they were submitted, up to ``max_batch`` per round trip.

    One task serves the queue: it takes every job waiting, sends them in one pipeline (not a
    transaction: each script is atomic by itself, and one refusal must not undo the others),
    and answers each job with its own reply. While a batch is on the wire the next gathers,
    so batches follow the load with no timer. A batch whose connection fails fails whole,
    with ``StoreUnavailableError``: whether Redis ran some of it is unknown (the replies were
    lost), which the version's compare-and-set makes safe to retry.
    """

    def __init__(self, client: Redis, *, max_batch: int = 256) -> None:
        self._client = client
        self._max_batch = max_batch
        self._queue: deque[_Job] = deque()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.batches = 0
        """Pipelines sent so far (tests and the benchmark look at batch sizes)."""
        self.jobs = 0

    def start(self) -> None:
        """Start serving the queue (on the running loop)."""
        self._task = asyncio.get_running_loop().create_task(self._serve())

    def submit(self, name: str, args: Sequence[str]) -> asyncio.Future[Any]:
        """Queue one script; its reply (or error) comes through the future.

        Synchronous on purpose: jobs queue in the order their callers ran, with no ``await``
        that could let another caller in between.
        """
        if self._task is None or self._task.done() or self._stopping:
            raise StoreUnavailableError("the store's writer is not running")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((name, args, future))
        self._ready.set()
        return future

    async def stop(self) -> None:
        """Send what is queued, then stop."""
        self._stopping = True
        self._ready.set()
        if self._task is not None:
            await self._task

    async def _serve(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._queue:
                size = min(len(self._queue), self._max_batch)
                await self._send([self._queue.popleft() for _ in range(size)])
            if self._stopping:
                return

    async def _send(self, batch: list[_Job]) -> None:
        self.batches += 1
        self.jobs += len(batch)
        try:
            replies = await self._pipeline(batch)
            again = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if again:
                # The cache was emptied (Redis restarted, SCRIPT FLUSH): those scripts were
                # refused before they ran. Load the scripts and send only those again.
                await load_scripts(self._client)
                resent = await self._pipeline([batch[i] for i in again])
                for i, reply in zip(again, resent, strict=True):
                    replies[i] = reply
        except Exception as exc:  # the connection failed: the whole batch did
            replies = [unavailable(exc)] * len(batch)
        except BaseException as exc:  # cancelled while sending: nobody must wait forever
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(unavailable(exc))
            raise
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, BaseException):
                future.set_exception(reply if isinstance(reply, StoreError) else unavailable(reply))
            else:
                future.set_result(reply)

    async def _pipeline(self, batch: list[_Job]) -> list[Any]:
        async with self._client.pipeline(transaction=False) as pipe:
            for name, args, _ in batch:
                pipe.evalsha(SHAS[name], 0, *args)
            return await pipe.execute(raise_on_error=False)


async def persistence(client: Redis) -> str:
    """What the server keeps on disk, in words (from ``CONFIG GET``), for a log line."""
    try:
        config = await client.config_get("appendonly")
        config |= await client.config_get("appendfsync")
        config |= await client.config_get("save")
    except RedisError:  # CONFIG is often disabled on managed Redis
        return "unknown (CONFIG GET refused)"
    if config.get("appendonly") == "yes":
        return f"append-only file, appendfsync {config.get('appendfsync')}"
    if config.get("save"):
        return f"snapshots only (save {config['save']}): the last writes may be lost"
    return "none: everything is lost if Redis stops"
