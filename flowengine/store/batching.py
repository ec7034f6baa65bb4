"""Group commit: one writer thread runs many callers' writes in one transaction.

A durable commit costs an fsync, and an fsync costs the same for one write as for a hundred.
So every write of a store is a *job* put on a queue; a single thread takes every job waiting,
runs each inside its own savepoint of one transaction, commits once, and only then answers each
caller (an asyncio future, resolved on the caller's loop). While one batch is being committed
the next one gathers, so the batch size follows the load with no timer and no added latency
when idle. A job that fails (a lost compare-and-set, a bad argument) is rolled back to its
savepoint and fails alone; a commit that fails fails the whole batch, and nothing of it stays.
The database is behind the ``Backend`` Protocol, so this module knows no database library.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .errors import StoreError, StoreUnavailableError

T = TypeVar("T")


class Backend(Protocol):
    """The transaction verbs of one write connection; each raises only ``StoreError``s."""

    def begin(self) -> None:
        """Open the batch's transaction (and take the database's write lock)."""

    def savepoint(self) -> None:
        """Mark the start of one job."""

    def release(self) -> None:
        """Keep the job's writes (they commit with the batch)."""

    def rollback_to(self) -> None:
        """Undo the job's writes, keep the batch's transaction open."""

    def commit(self) -> None:
        """Make the batch durable."""

    def rollback(self) -> None:
        """Undo the whole batch."""


@dataclass(slots=True)
class CommitStats:
    """What the writer did; read by tests and benchmarks (written by the writer thread only)."""

    commits: int = 0
    """Transactions committed: with ``synchronous=FULL`` in WAL mode, one fsync of the WAL each."""
    jobs: int = 0
    """Jobs run (failed jobs included)."""
    largest_batch: int = 0
    failed_commits: int = 0


@dataclass(slots=True)
class _Job:
    run: Callable[[], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


_STOP = object()


class GroupCommitter:
    """The single writer. ``submit`` from the event loop; ``stop`` drains and ends the thread.

    Args:
        backend: The write connection's transaction verbs.
        max_batch: The most jobs in one transaction (1: a transaction per write).
        lock: Held around each batch, for a connection that readers share (``:memory:``).
        on_commit: Called in the writer thread after each commit with the batch's size,
            before any caller of the batch is answered (tests count commits with it).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        max_batch: int = 256,
        lock: threading.Lock | None = None,
        on_commit: Callable[[int], None] | None = None,
        name: str = "flowengine-store-writer",
    ) -> None:
        if max_batch < 1:
            raise StoreError(f"max_batch must be at least 1, not {max_batch}")
        self.stats = CommitStats()
        self._backend = backend
        self._max_batch = max_batch
        self._lock = lock if lock is not None else contextlib.nullcontext()
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[_Job | object] = queue.SimpleQueue()
        self._closing = False
        # A daemon thread: a process that exits without close() loses only unacknowledged
        # writes, which the database rolls back on the next open.
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def submit(self, run: Callable[[], T]) -> asyncio.Future[T]:
        """Queue a job; the future resolves once its batch is committed (or the job failed).

        Raises:
            StoreUnavailableError: the store is closed.
        """
        if self._closing:
            raise StoreUnavailableError("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(run, future, loop))
        return future

    async def stop(self) -> None:
        """Refuse new jobs, let the queued ones commit, and end the thread."""
        if self._closing:
            return
        self._closing = True
        self._queue.put(_STOP)
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join)

    # -- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            item = self._queue.get()
            if item is _STOP:
                break
            batch = [item]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._execute([j for j in batch if isinstance(j, _Job)])
        # Nothing is queued after _STOP by submit(); this is a guard, not a path.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Job):
                _answer([(item, False, StoreUnavailableError("the store is closed"))])

    def _execute(self, batch: list[_Job]) -> None:
        outcomes: list[tuple[_Job, bool, Any]] = []
        with self._lock:
            try:
                self._backend.begin()
            except StoreError as exc:
                _answer([(job, False, exc) for job in batch])
                return
            broken: StoreError | None = None
            for job in batch:
                if broken is not None:
                    outcomes.append((job, False, broken))
                    continue
                outcome, broken = self._run_one(job)
                outcomes.append(outcome)
            self.stats.jobs += len(batch)
            failure = self._finish(broken)
            if failure is not None:
                lost = StoreUnavailableError(f"the batch was not committed: {failure}")
                outcomes = [(j, False, v if not ok else lost) for j, ok, v in outcomes]
            else:
                self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        if failure is None and self._on_commit is not None:
            self._on_commit(len(batch))
        _answer(outcomes)

    def _run_one(self, job: _Job) -> tuple[tuple[_Job, bool, Any], StoreError | None]:
        """One job in its savepoint; the second value is set if the transaction broke."""
        try:
            self._backend.savepoint()
            result = job.run()
            self._backend.release()
        except Exception as exc:
            return (job, False, exc), self._undo()
        return (job, True, result), None

    def _undo(self) -> StoreError | None:
        try:
            self._backend.rollback_to()
        except StoreError as undo:
            # The transaction itself is unusable: nothing of the batch may commit.
            return undo
        return None

    def _finish(self, broken: StoreError | None) -> StoreError | None:
        """Commit the batch, or roll it all back; returns why it was not committed."""
        failure = broken
        if failure is None:
            try:
                self._backend.commit()
            except StoreError as exc:
                failure = exc
            else:
                self.stats.commits += 1
                return None
        self.stats.failed_commits += 1
        with contextlib.suppress(StoreError):
            self._backend.rollback()
        return failure


def _answer(outcomes: list[tuple[_Job, bool, Any]]) -> None:
    """Resolve each caller's future on its own loop: one hop per loop, not one per job."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, bool, Any]]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, items in by_loop.items():
        # A loop closed meanwhile has nobody left to answer.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, items)


def _settle(items: list[tuple[_Job, bool, Any]]) -> None:
    for job, ok, value in items:
        if job.future.done():  # the caller was cancelled; the write stands regardless
            continue
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)
