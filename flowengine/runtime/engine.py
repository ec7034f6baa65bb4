"""The async shell around the core: queues, timers and command execution for many calls.

Per call: one ``asyncio.Queue`` and one consumer task, so a call's events are handled one at a
time and in order while calls run concurrently; one timer handle (for the call's earliest
deadline), whose firing is posted as an ordinary ``timer`` event. The core returns commands;
the shell keeps the internal ones (timers) and executes the rest through the Telephony port,
each call's commands in order in a background task so a slow request never delays the next
event (HTTP requests run on their own, out of that order). Results come back through the same
queue as ``command.ok`` / ``command.failed`` / ``play.done``. Nothing here raises for an event:
an unknown call's event is kept in ``unrouted``; an unhandled one is recorded in the call's
trace by the core.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any

from .. import model as m
from ..errors import FlowEngineError
from . import events
from .commands import Command, HttpRequest, Play, Say
from .compiler import FlowSet
from .core import Runtime
from .events import Event
from .ports import AsyncioClock, Clock, CommandResult, Telephony, TimerHandle
from .session import Session

Observer = Callable[[Session, list[Command]], None]
"""Called after each handled event with the call and the commands it produced (to persist)."""

Persist = Callable[[Session, Event, list[Command]], Awaitable[None] | None]
"""Called after each handled event, before any of its commands is executed. It must read the
session at once (the call moves on with its next event); the awaitable it returns gates the
step's commands: they are executed only once it has finished, and fail if it raised (the
daemon journals a step, outbox included, before acting on it)."""


class CallExistsError(FlowEngineError):
    """Raised when a call is started or restored under an id the engine already runs."""


class _Call:
    __slots__ = ("queue", "session", "tail", "task", "timer", "timer_id")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.timer: TimerHandle | None = None
        self.timer_id: str | None = None
        self.tail: asyncio.Task[None] | None = None


class Engine:
    """Runs calls: ``start_call``, then ``post`` events; ``idle()`` waits until all is done."""

    def __init__(
        self,
        flows: FlowSet | Iterable[m.Flow],
        telephony: Telephony,
        clock: Clock | None = None,
        *,
        room_sip_domain: str | None = None,
        strict: bool = False,
        observer: Observer | None = None,
        persist: Persist | None = None,
        keep_unrouted: int = 1000,
    ) -> None:
        self.runtime = Runtime(flows, room_sip_domain=room_sip_domain, strict=strict)
        self.telephony = telephony
        self.clock: Clock = clock or AsyncioClock()
        self.observer = observer
        self.persist = persist
        self.unrouted: deque[tuple[str, Event]] = deque(maxlen=keep_unrouted)
        """Events posted for calls the engine does not know (newest last)."""
        self.errors: list[BaseException] = []
        """Unexpected exceptions of the shell's own tasks (never of an event)."""
        self._calls: dict[str, _Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        settle = getattr(self.clock, "on_settle", None)
        if callable(settle):
            settle(self.idle)
        bind = getattr(telephony, "bind", None)
        if callable(bind):
            bind(self.post)

    # -- calls -------------------------------------------------------------------------------

    def start_call(
        self,
        call_id: str,
        flow: str,
        *,
        call: Mapping[str, Any] | None = None,
        variables: Mapping[str, Any] | None = None,
        start: bool = True,
    ) -> Session:
        """Create a call on the current version of ``flow`` and (by default) post ``start``.

        Raises:
            CallExistsError: the id is taken.
            UnknownFlowError: no flow of that name.
        """
        if call_id in self._calls:
            raise CallExistsError(f"call {call_id!r} already exists")
        session = self.runtime.new_session(
            call_id, flow, call=call, variables=variables, now=self.clock.now()
        )
        self._register(session)
        if start:
            self.post(call_id, events.start())
        return session

    def restore(self, record: str | bytes | Session) -> Session:
        """Take over a persisted call: its timers are re-armed from their deadlines.

        Raises:
            RestoreError: the record names an unknown flow version or state.
            CallExistsError: the id is taken.
        """
        session = (
            record if isinstance(record, Session) else Session.from_json(record, self.runtime.flows)
        )
        if session.call_id in self._calls:
            raise CallExistsError(f"call {session.call_id!r} already exists")
        self._arm(self._register(session))
        return session

    def get(self, call_id: str) -> Session | None:
        """A call's session (ended calls stay until ``remove``)."""
        call = self._calls.get(call_id)
        return call.session if call else None

    @property
    def calls(self) -> dict[str, Session]:
        """Every call the engine holds, by id."""
        return {cid: c.session for cid, c in self._calls.items()}

    def remove(self, call_id: str) -> Session | None:
        """Forget a call (normally an ended one); its timer and consumer stop."""
        call = self._calls.pop(call_id, None)
        if call is None:
            return None
        self._disarm(call)
        if call.task is not None:
            call.task.cancel()
            for _ in range(call.queue.qsize()):  # queued events will not be handled now
                self._settled()
        return call.session

    def post(self, call_id: str, event: Event) -> bool:
        """Queue an event for a call; False (and kept in ``unrouted``) for an unknown call."""
        call = self._calls.get(call_id)
        if call is None:
            self.unrouted.append((call_id, event))
            return False
        if call.task is None:  # an ended call: the core records the event as ignored
            self._process(call, event)
            return True
        self._busy()
        call.queue.put_nowait(event)
        return True

    async def idle(self) -> None:
        """Wait until every queued event is handled and every command has its result."""
        while self._pending:
            await self._idle.wait()

    async def aclose(self) -> None:
        """Stop every call's task and timer (their sessions stay readable)."""
        for call in self._calls.values():
            self._disarm(call)
            for _ in range(call.queue.qsize()):
                self._settled()
        tasks = [*self._tasks, *(c.task for c in self._calls.values() if c.task)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- inside ------------------------------------------------------------------------------

    def _register(self, session: Session) -> _Call:
        call = _Call(session)
        self._calls[session.call_id] = call
        if not session.ended:
            call.task = asyncio.get_running_loop().create_task(self._consume(call))
        return call

    async def _consume(self, call: _Call) -> None:
        queue = call.queue
        while True:
            event = await queue.get()
            try:
                self._process(call, event)
            finally:
                self._settled()
            if call.session.ended and queue.empty():
                call.task = None  # later events are handled inline, without a task
                return

    def _process(self, call: _Call, event: Event) -> None:
        session = call.session
        commands = self.runtime.handle(session, event, self.clock.now())
        self._arm(call)
        gate: asyncio.Task[None] | None = None
        if self.persist is not None:
            pending = self.persist(session, event, commands)
            if pending is not None:
                gate = self._spawn(_wait(pending))
        outgoing = [c for c in commands if not c.internal]
        if outgoing:
            ordered = []
            for command in outgoing:
                if isinstance(command, HttpRequest):
                    self._spawn(self._execute([command], None, gate))
                else:
                    ordered.append(command)
            if ordered:
                call.tail = self._spawn(self._execute(ordered, call.tail, gate))
        if self.observer is not None:
            self.observer(session, commands)

    async def _execute(
        self,
        commands: list[Command],
        after: asyncio.Task[None] | None,
        gate: asyncio.Task[None] | None = None,
    ) -> None:
        if after is not None and not after.done():
            await asyncio.wait([after])
        if gate is not None:
            if not gate.done():
                await asyncio.wait([gate])
            if gate.cancelled() or gate.exception() is not None:
                # Not journaled, so not done: acting now could repeat after a restart.
                for command in commands:
                    self._deliver(command, CommandResult.failure("the step was not persisted"))
                return
        for command in commands:
            try:
                result = await self.telephony.execute(command)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                result = CommandResult.failure(f"{type(exc).__name__}: {exc}")
            self._deliver(command, result)

    def _deliver(self, command: Command, result: CommandResult) -> None:
        if result.silent:
            return
        leg = getattr(command, "leg", None)
        if result.ok and result.finished and isinstance(command, (Play, Say)):
            event = events.play_done(command.key)
        elif result.ok:
            event = events.command_ok(command.key, command.kind, result.data, leg=leg)
        else:
            error = result.error or "failed"
            event = events.command_failed(command.key, command.kind, error, result.data, leg=leg)
        self.post(command.call_id, event)
        for follow in result.follow:
            self.post(command.call_id, follow)

    def _arm(self, call: _Call) -> None:
        """Keep one clock handle per call, for its earliest pending timer."""
        timers = call.session.timers
        if call.session.ended or not timers:
            self._disarm(call)
            return
        first = min(timers.values(), key=lambda t: t.deadline)
        if call.timer_id == first.id:
            return
        self._disarm(call)
        call.timer_id = first.id
        delay = first.deadline - self.clock.now()
        call.timer = self.clock.call_later(delay, self._fire, call.session.call_id, first.id)

    def _disarm(self, call: _Call) -> None:
        if call.timer is not None:
            call.timer.cancel()
        call.timer = call.timer_id = None

    def _fire(self, call_id: str, timer_id: str) -> None:
        call = self._calls.get(call_id)
        if call is None or call.timer_id != timer_id:
            return
        call.timer = None  # timer_id stays: the timer is in flight until its event is handled
        timer = call.session.timers.get(timer_id)
        if timer is not None:
            self.post(call_id, events.timer(timer_id, timer.purpose))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        self._busy()
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._settled()
        if not task.cancelled() and task.exception() is not None:
            self.errors.append(task.exception())  # type: ignore[arg-type]

    def _busy(self) -> None:
        self._pending += 1
        self._idle.clear()

    def _settled(self) -> None:
        self._pending -= 1
        if self._pending <= 0:
            self._pending = 0
            self._idle.set()


async def _wait(pending: Awaitable[None]) -> None:
    await pending
