"""Persist, then act: how the daemon keeps every call durable.

Where it sits: between the engine and the store. Three rules make the project's promises hold:

1. **Accepted means journaled.** An incoming event (a webhook, an in-room event, a command's
   result) goes into the call's inbox with ``store.accept`` *before* it is posted to the
   engine, and before the webhook is answered 200.
2. **A step is written before it acts.** The engine calls ``persist`` after each handled event;
   it writes the snapshot, the event (or marks the accepted one applied), the step's commands
   into the outbox, the timers set and cleared, and the ending in *one* ``store.append``. The
   engine executes the step's commands only once that append has returned. Appends of one
   call are chained, so versions follow one another (compare-and-set never loses).
3. **A command is claimed right before it is sent.** ``DurableTelephony`` claims it
   (``begin_command``: ``pending`` -> ``unknown``) through the send gate of
   ``flowengine.daily.gate``: the inner telephony asks the gate at the moment its request
   goes out, after the pacing slot of a paced Daily request, so a command still waiting for
   its slot stays ``pending`` (a restart sends it). Then the result is journaled in the
   inbox, and the command marked ``done`` or ``failed``. A command whose claim fails (it is no
   longer ``pending``) is never sent; one that acted on nothing is claimed before it is
   settled; an inner telephony that does not ask the gate has the command claimed first.

With several daemons (``ownership.py``) every write of a call and every claim of its commands
carries the token of this daemon's lease on it (``fences``); a refused one means another
daemon runs the call now (``on_lost``). An event accepted here for a call another daemon runs
wakes that daemon (``owner``). Taking calls back (a restart, another daemon's calls):
``restore.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from ..daily.errors import DailyAPIError, DailyError, DailyOutcomeUnknownError
from ..daily.gate import DailyNotSentError, send_gate
from ..runtime import events as ev
from ..runtime.commands import Command, Play, Say, SendDtmf
from ..runtime.engine import Engine
from ..runtime.events import Event
from ..runtime.ports import CommandResult, Telephony
from ..runtime.session import Session
from ..store import CommandState, EntryKind, LeaseLostError, Store

log = structlog.get_logger("flowengine.daemon.persistence")

RESULT_STATE = {
    ev.COMMAND_OK: CommandState.DONE,
    ev.PLAY_DONE: CommandState.DONE,
    ev.COMMAND_FAILED: CommandState.FAILED,
}
"""What each result event makes of its command in the outbox."""

StepHook = Callable[[Session, Event], None]


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Persistence:
    """The engine's ``persist`` hook, the ingress's ``accept`` and the call registry's writes."""

    def __init__(
        self,
        store: Store,
        *,
        on_step: StepHook | None = None,
        owner: str | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.on_step = on_step
        self.owner = owner
        """This daemon's owner id: events it accepts wake the call's owner if that is another."""
        self.on_lost = on_lost
        """Called with a call's id when a write of it was refused: its lease moved on."""
        self.fences: dict[str, int] = {}
        """The fencing token of each call this daemon holds the lease of."""
        self.engine: Engine | None = None
        self._accepted: dict[int, tuple[Event, int]] = {}
        self._posted: dict[str, set[int]] = {}
        self._versions: dict[str, int] = {}
        self._timers: dict[str, dict[str, float]] = {}
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._ended: set[str] = set()
        self.background: set[asyncio.Task[None]] = set()
        """Resends started by a restore (a shutdown waits for them)."""

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background, kept until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def bind(self, engine: Engine) -> None:
        """The engine to post accepted events to."""
        self.engine = engine

    # -- calls ------------------------------------------------------------------------------

    def fence(self, call_id: str) -> int | None:
        """The token of this daemon's lease on the call (``None``: not held)."""
        return self.fences.get(call_id)

    async def create(self, session: Session, *, fence: int | None = None) -> None:
        """Store a new call (before its ``start`` is posted), under its lease's ``fence``."""
        record = await self.store.create_call(
            session.call_id,
            flow=session.flow,
            flow_hash=session.flow_hash,
            snapshot=session.to_json(),
            timers_set={t.id: t.deadline for t in session.timers.values()},
            fence=fence,
        )
        if fence is not None:
            self.fences[session.call_id] = fence
        self._versions[session.call_id] = record.version
        self._timers[session.call_id] = {t.id: t.deadline for t in session.timers.values()}

    def adopt(self, session: Session, version: int) -> None:
        """Take over a restored call at its stored version."""
        self._versions[session.call_id] = version
        self._timers[session.call_id] = {t.id: t.deadline for t in session.timers.values()}
        if session.ended:
            self._ended.add(session.call_id)  # its end is written: never write it again

    def forget(self, call_id: str) -> None:
        """Drop what is kept about an ended call."""
        self._versions.pop(call_id, None)
        self._timers.pop(call_id, None)
        self._tails.pop(call_id, None)
        self._ended.discard(call_id)
        self._posted.pop(call_id, None)
        self.fences.pop(call_id, None)

    # -- incoming events ---------------------------------------------------------------------

    async def accept(self, call_id: str, event: Event, *, webhook_id: str | None = None) -> bool:
        """Journal an event in the call's inbox, then post it; False for a redelivery."""
        entry = await self.store.accept(
            call_id, dumps(event.to_dict()), webhook_id=webhook_id, by=self.owner
        )
        if entry is None:
            return False
        if call_id in self._versions:
            self.post(call_id, event, entry.seq)
        return True

    def post(self, call_id: str, event: Event, seq: int) -> None:
        """Post an event already in the inbox under journal number ``seq``, once."""
        posted = self._posted.setdefault(call_id, set())
        if seq in posted:
            return  # read from the inbox by a wake-up while its accept was returning
        posted.add(seq)
        self._accepted[id(event)] = (event, seq)
        if self.engine is None or not self.engine.post(call_id, event):
            self._accepted.pop(id(event), None)

    # -- the engine's hook --------------------------------------------------------------------

    def persist(self, session: Session, event: Event, commands: list[Command]) -> Awaitable[None]:
        """Read the step now; return the append (chained after the call's previous one)."""
        cid = session.call_id
        accepted = self._accepted.pop(id(event), None)
        if self.on_step is not None:
            try:
                self.on_step(session, event)
            except Exception:  # metrics and logs must never stop a call
                log.exception("step hook failed", call_id=cid)
        if cid not in self._versions:
            return _done()  # not a stored call (or forgotten after it ended)
        current = {t.id: t.deadline for t in session.timers.values()}
        before = self._timers.get(cid, {})
        self._timers[cid] = current
        kind = EntryKind.RESULT if event.name in RESULT_STATE else EntryKind.EVENT
        args: dict[str, Any] = {
            "snapshot": session.to_json(),
            "journal_entries": [] if accepted else [(kind, dumps(event.to_dict()))],
            "outbox_new": {c.key: dumps(c.to_dict()) for c in commands if not c.internal},
            "timers_set": {k: v for k, v in current.items() if before.get(k) != v},
            "timers_cleared": [k for k in before if k not in current],
            "applied": [accepted[1]] if accepted else [],
            "end": session.ended and cid not in self._ended,
        }
        if session.ended:
            self._ended.add(cid)  # events after the end are still journaled and applied
        previous = self._tails.get(cid)
        task = asyncio.get_running_loop().create_task(self._append(cid, previous, args))
        self._tails[cid] = task
        return task

    async def post_inbox(self, call_id: str) -> int:
        """Post the call's accepted events this daemon has not posted yet (another daemon
        accepted them); how many."""
        if call_id not in self._versions:
            return 0
        posted = self._posted.get(call_id, set())
        fresh = [e for e in await self.store.inbox(call_id) if e.seq not in posted]
        for entry in fresh:
            self.post(call_id, Event.from_dict(json.loads(entry.payload)), entry.seq)
        return len(fresh)

    async def _append(
        self, call_id: str, previous: asyncio.Task[None] | None, args: dict[str, Any]
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        if call_id not in self._versions:
            raise LeaseLostError(call_id, 0, None)  # dropped meanwhile: write nothing more
        version = self._versions[call_id]
        fence = self.fences.get(call_id)
        try:
            self._versions[call_id] = await self.store.append(
                call_id, expected_version=version, fence=fence, **args
            )
        except LeaseLostError:
            log.warning("call lost to another daemon; not written", call_id=call_id)
            if self.on_lost is not None:
                self.on_lost(call_id)
            raise

    async def drain(self) -> None:
        """Wait until every queued append has been written."""
        tails = [t for t in (*self._tails.values(), *self.background) if not t.done()]
        if tails:
            await asyncio.wait(tails)


async def _none() -> None:
    return None


def _done() -> Awaitable[None]:
    return _none()


class _Claim:
    """One command's send gate: claims it in the outbox when first asked, then answers alike.

    A command may make more than one request (a transfer to a room looks the room up first):
    the first request that acts claims it; any later one is sent only if that claim held.
    """

    def __init__(self, persistence: Persistence, command: Command) -> None:
        self.persistence = persistence
        self.command = command
        self.asked = False
        self.granted = False
        self.error: BaseException | None = None

    async def __call__(self) -> bool:
        if not self.asked:
            self.asked = True
            persistence, command = self.persistence, self.command
            try:
                claimed = await persistence.store.begin_command(
                    command.key, fence=persistence.fence(command.call_id)
                )
            except LeaseLostError:
                # Another daemon runs the call now: it settles the command, this one sends
                # nothing more of the call.
                log.warning("call lost to another daemon; not sent", call_id=command.call_id)
                if persistence.on_lost is not None:
                    persistence.on_lost(command.call_id)
                return False
            except Exception as exc:
                self.error = exc  # the store failed: raised from ``execute`` as it is
                raise
            self.granted = claimed is not None
        return self.granted


class DurableTelephony:
    """Claims each command in the outbox as it is sent, journals its result, then marks it.

    The claim (``begin_command``) is made by the send gate the inner telephony asks right
    before its request goes out (after the pacing slot of a paced Daily request), so a command
    waiting for its slot is still ``pending``. An inner telephony that does not declare
    ``gates_sends`` has each command claimed before it is called. Results are not returned to
    the engine (the answer is ``silent``): they are journaled in the call's inbox and posted
    like any accepted event, so a result received just before a crash is not lost.
    """

    def __init__(self, inner: Telephony, persistence: Persistence) -> None:
        self.inner = inner
        self.persistence = persistence
        self.probes: set[str] = set()
        """Keys of commands sent again whose first sending may have taken effect (an
        ``answer`` after a restart): a refusal by Daily means the first one was taken."""

    async def execute(self, command: Command) -> CommandResult:
        """Send ``command`` once; its result is posted to the engine through the inbox."""
        claim = _Claim(self.persistence, command)
        if not getattr(self.inner, "gates_sends", False) and not await claim():
            return CommandResult(silent=True)  # already handed out or settled: never twice
        try:
            with send_gate(claim):
                result = await self.inner.execute(command)
        except DailyNotSentError:
            return CommandResult(silent=True)  # the claim failed: nothing was sent
        except DailyOutcomeUnknownError as exc:
            if isinstance(command, SendDtmf):
                # No event would tell; a repeat could press keys twice in a remote IVR.
                result = CommandResult.success({"outcome": "unknown"})
            else:
                log.warning(
                    "command outcome unknown; waiting for Daily's events",
                    call_id=command.call_id,
                    command=command.kind,
                    key=command.key,
                    reason=exc.reason,
                )
                return CommandResult(silent=True)  # stays `unknown` in the outbox
        except DailyAPIError as exc:
            if command.key in self.probes and 400 <= exc.status < 500:
                # The first sending had been taken (Daily refuses to route a call twice):
                # its webhooks tell the call what happened, as for an unknown outcome.
                log.info(
                    "command sent again after a restart was refused; the first was taken",
                    call_id=command.call_id,
                    command=command.kind,
                    key=command.key,
                    status=exc.status,
                )
                await self.persistence.store.mark_command(command.key, CommandState.FAILED)
                return CommandResult(silent=True)
            result = CommandResult.failure(str(exc))
        except DailyError as exc:
            result = CommandResult.failure(str(exc))
        except Exception as exc:
            if exc is claim.error:
                raise
            result = CommandResult.failure(f"{type(exc).__name__}: {exc}")
        if not await claim():  # acted on nothing, so never asked: claimed before it is settled
            return CommandResult(silent=True)
        await self.settle(command, result)
        return CommandResult(silent=True)

    async def settle(self, command: Command, result: CommandResult) -> None:
        """Journal the result's events in the inbox, mark the command, then post them."""
        store = self.persistence.store
        posted: list[tuple[Event, int]] = []
        for event in result_events(command, result):
            entry = await store.accept(
                command.call_id, dumps(event.to_dict()), by=self.persistence.owner
            )
            if entry is not None:
                posted.append((event, entry.seq))
        state = CommandState.DONE if result.ok else CommandState.FAILED
        await store.mark_command(command.key, state)
        for event, seq in posted:
            self.persistence.post(command.call_id, event, seq)


def result_events(command: Command, result: CommandResult) -> list[Event]:
    """The events the engine would make of a result (``Engine._deliver``'s rule)."""
    if result.silent:
        return []
    leg = getattr(command, "leg", None)
    if result.ok and result.finished and isinstance(command, (Play, Say)):
        first = ev.play_done(command.key)
    elif result.ok:
        first = ev.command_ok(command.key, command.kind, result.data, leg=leg)
    else:
        error = result.error or "failed"
        first = ev.command_failed(command.key, command.kind, error, result.data, leg=leg)
    return [first, *result.follow]
