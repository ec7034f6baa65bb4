"""Time in the emulator: what happens later, in a fixed order, and the outbox that sends it.

Far ends act after delays (a callee answers after 2 s, a caller presses 1 at 3 s) and webhooks
go out after them. Everything scheduled lands on one ``Timeline``: a heap ordered by due time,
then by the order it was scheduled, so two things due at the same instant always happen in the
order they were caused, whatever the clock. The clock only provides ``now()`` and wake-ups
(``call_later``); it is the runtime's ``Clock`` port, so ``AsyncioClock`` serves the emulator
in real time and ``VirtualClock`` lets a test drive the emulator and the engine on one virtual
time, instantly.

Timeline actions are plain functions that change state; anything that needs I/O (a webhook
POST) is put on the ``Outbox``, a single worker task that sends in order (or, when asked,
several, each room's jobs still in order). ``Outbox.idle()`` waits until everything due has
been sent, which tests await after each step.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import zlib
from collections.abc import Awaitable, Callable

import structlog

from flowengine.runtime.ports import Clock

log = structlog.get_logger(__name__)

Action = Callable[[], None]
Job = Callable[[], Awaitable[None]]


class Timeline:
    """Actions to run at a time, in (due time, order scheduled) order."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[tuple[float, int, Action]] = []
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def at(self, due: float, action: Action) -> None:
        """Run ``action`` at the clock time ``due`` (at once if that has passed)."""
        entry = (due, next(self._order), action)
        heapq.heappush(self._heap, entry)
        # One wake-up per entry; when it fires, it runs every entry ordered up to its own, so
        # the order holds even when the clock's own timers would fire ties in another order.
        self.clock.call_later(max(0.0, due - self.clock.now()), self._wake, entry[:2])

    def later(self, delay: float, action: Action) -> None:
        """Run ``action`` ``delay`` seconds from now."""
        self.at(self.clock.now() + max(0.0, delay), action)

    def run_due(self) -> int:
        """Run every action due by now; how many ran."""
        return self._run_until((self.clock.now(), -1), inclusive_time=True)

    def next_due(self) -> float | None:
        """When the earliest pending action is due."""
        return self._heap[0][0] if self._heap else None

    def _wake(self, key: tuple[float, int]) -> None:
        self._run_until(key, inclusive_time=False)

    def _run_until(self, key: tuple[float, int], *, inclusive_time: bool) -> int:
        ran = 0
        while self._heap:
            due, order, action = self._heap[0]
            if inclusive_time:
                if due > key[0]:
                    break
            elif (due, order) > key:
                break
            heapq.heappop(self._heap)
            ran += 1
            try:
                action()
            except Exception:  # one broken action must not stop the emulator's clock
                log.exception("emulator_action_failed")
        return ran


class Outbox:
    """Sends jobs in the order they were put, on background tasks.

    With one worker (the default) every job waits for the one before it. With ``workers`` >
    1, jobs are spread over that many workers by their ``key``: jobs of one key (a room) keep
    their order, and jobs of different keys go out side by side, as Daily delivers the
    webhooks of different calls independently. A job without a key goes to the first worker.
    """

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError("an outbox needs at least one worker")
        self.workers = workers
        self._queues: list[asyncio.Queue[Job]] = []
        self._tasks: list[asyncio.Task[None] | None] = []
        self._closed = False

    def put(self, job: Job, key: str | None = None) -> None:
        """Queue ``job``; the worker starts on first use (there must be a running loop)."""
        if self._closed:
            return
        if not self._queues:
            self._queues = [asyncio.Queue() for _ in range(self.workers)]
            self._tasks = [None] * self.workers
        index = 0 if key is None or self.workers == 1 else zlib.crc32(key.encode()) % self.workers
        task = self._tasks[index]
        if task is None or task.done():
            loop = asyncio.get_running_loop()
            self._tasks[index] = loop.create_task(self._work(self._queues[index]))
        self._queues[index].put_nowait(job)

    @property
    def pending(self) -> int:
        """Jobs queued or running."""
        return sum(queue.qsize() for queue in self._queues)

    async def idle(self) -> None:
        """Return once every queued job has finished."""
        for queue, task in zip(self._queues, self._tasks, strict=True):
            if task is not None and not task.done():
                await queue.join()

    async def aclose(self) -> None:
        """Stop the workers; queued jobs are dropped."""
        self._closed = True
        for i, task in enumerate(self._tasks):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                self._tasks[i] = None

    @staticmethod
    async def _work(queue: asyncio.Queue[Job]) -> None:
        while True:
            job = await queue.get()
            try:
                await job()
            except Exception:  # a failed send is recorded by the job; keep the worker alive
                log.exception("emulator_job_failed")
            finally:
                queue.task_done()
