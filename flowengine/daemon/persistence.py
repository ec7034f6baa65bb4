"""Persist, then act: how the daemon keeps every call durable, and how it takes calls back.

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

Restore (``restore_calls``), for every live call of the store: rebuild the session
(``Engine.restore``: timers re-armed from their deadlines, one already due fires at once), post
its inbox again in order, then settle its open commands:

- ``pending`` (never sent): sent now, under the same idempotency key.
- ``unknown`` with a result in the inbox: marked by that result (it was received, then the
  daemon died before marking it).
- ``unknown`` without a result, for a command that is harmless to repeat (``stop_dial_out``,
  ``hangup``, ``play``, ``say``, ``stop_play``): sent again.
- ``unknown`` otherwise (``start_dial_out``, ``send_dtmf``, ``sip_call_transfer``,
  ``sip_refer``, ``answer``, ``http_request``): **never sent again**, marked ``failed`` in the
  outbox, and no result is posted: the call waits for Daily's webhook that tells what happened
  (``dialout.*``, ``calltransfer.*``, ``dialin.connected``), and the state's own timer bounds
  the wait (a ``dial_out`` rings out to ``no_answer``, a ``transfer`` fails, an ``http`` state
  retries under its own policy).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import structlog

from ..daily.errors import DailyError, DailyOutcomeUnknownError
from ..daily.gate import DailyNotSentError, send_gate
from ..runtime import events as ev
from ..runtime.commands import Command, Play, Say, SendDtmf, command_from_dict
from ..runtime.compiler import INIT
from ..runtime.engine import Engine
from ..runtime.events import Event
from ..runtime.ports import CommandResult, Telephony
from ..runtime.session import RestoreError, Session
from ..store import CallRecord, CommandState, EntryKind, Store

log = structlog.get_logger("flowengine.daemon.persistence")

REPEATABLE = frozenset({"stop_dial_out", "hangup", "play", "say", "stop_play"})
"""Commands that do no harm when sent twice: an unknown outcome is settled by sending again."""

_RESULT_STATE = {
    ev.COMMAND_OK: CommandState.DONE,
    ev.PLAY_DONE: CommandState.DONE,
    ev.COMMAND_FAILED: CommandState.FAILED,
}

StepHook = Callable[[Session, Event], None]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Persistence:
    """The engine's ``persist`` hook, the ingress's ``accept`` and the call registry's writes."""

    def __init__(self, store: Store, *, on_step: StepHook | None = None) -> None:
        self.store = store
        self.on_step = on_step
        self.engine: Engine | None = None
        self._accepted: dict[int, tuple[Event, int]] = {}
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

    async def create(self, session: Session) -> None:
        """Store a new call (before its ``start`` is posted)."""
        record = await self.store.create_call(
            session.call_id,
            flow=session.flow,
            flow_hash=session.flow_hash,
            snapshot=session.to_json(),
            timers_set={t.id: t.deadline for t in session.timers.values()},
        )
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

    # -- incoming events ---------------------------------------------------------------------

    async def accept(self, call_id: str, event: Event, *, webhook_id: str | None = None) -> bool:
        """Journal an event in the call's inbox, then post it; False for a redelivery."""
        entry = await self.store.accept(call_id, _dumps(event.to_dict()), webhook_id=webhook_id)
        if entry is None:
            return False
        self.post(call_id, event, entry.seq)
        return True

    def post(self, call_id: str, event: Event, seq: int) -> None:
        """Post an event already in the inbox under journal number ``seq``."""
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
        kind = EntryKind.RESULT if event.name in _RESULT_STATE else EntryKind.EVENT
        args: dict[str, Any] = {
            "snapshot": session.to_json(),
            "journal_entries": [] if accepted else [(kind, _dumps(event.to_dict()))],
            "outbox_new": {c.key: _dumps(c.to_dict()) for c in commands if not c.internal},
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

    async def _append(
        self, call_id: str, previous: asyncio.Task[None] | None, args: dict[str, Any]
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        version = self._versions[call_id]
        self._versions[call_id] = await self.store.append(call_id, expected_version=version, **args)

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

    def __init__(self, store: Store, key: str) -> None:
        self.store = store
        self.key = key
        self.asked = False
        self.granted = False
        self.error: BaseException | None = None

    async def __call__(self) -> bool:
        if not self.asked:
            self.asked = True
            try:
                self.granted = await self.store.begin_command(self.key) is not None
            except Exception as exc:
                self.error = exc  # the store failed: raised from ``execute`` as it is
                raise
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

    async def execute(self, command: Command) -> CommandResult:
        """Send ``command`` once; its result is posted to the engine through the inbox."""
        claim = _Claim(self.persistence.store, command.key)
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
            entry = await store.accept(command.call_id, _dumps(event.to_dict()))
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


async def restore_calls(
    engine: Engine,
    persistence: Persistence,
    telephony: DurableTelephony,
    *,
    track: Callable[[Session], None] | None = None,
) -> list[Session]:
    """Take back every live call of the store (see the module's docstring for the rules).

    A call whose last step ended it (a hang-up) is no longer live, but that step's commands
    (deleting the room) may not have been sent when the daemon died: such a call is taken
    back too, ended, so its open commands are settled by the same rules. ``track`` is called
    with each session as soon as it is restored, before its inbox is posted: a call that ends
    on an event of its inbox must already be known to the daemon's bookkeeping (its CDR).
    """
    store = persistence.store
    restored: list[Session] = []
    live = await store.live_calls()
    for record in live:
        session = await _take_back(engine, persistence, telephony, record, track)
        if session is not None:
            restored.append(session)
    seen = {record.call_id for record in live}
    for call_id in dict.fromkeys(e.call_id for e in await store.pending_commands()):
        ended = None if call_id in seen else await store.load_call(call_id)
        if ended is not None and not ended.live:
            session = await _take_back(engine, persistence, telephony, ended, track)
            if session is not None:
                restored.append(session)
    return restored


async def _take_back(
    engine: Engine,
    persistence: Persistence,
    telephony: DurableTelephony,
    record: CallRecord,
    track: Callable[[Session], None] | None,
) -> Session | None:
    store = persistence.store
    try:
        session = engine.restore(record.snapshot)
    except RestoreError as exc:
        # Kept in the store: it is restored once its flow version is loaded again.
        log.error("call not restored", call_id=record.call_id, reason=str(exc))
        return None
    persistence.adopt(session, record.version)
    if track is not None:
        track(session)
    inbox = await store.inbox(record.call_id)
    events = [(Event.from_dict(json.loads(e.payload)), e.seq) for e in inbox]
    results = {
        str(event.payload.get("key")): _RESULT_STATE[event.name]
        for event, _ in events
        if event.name in _RESULT_STATE and event.payload.get("key")
    }
    resend: list[Command] = []
    for entry in await store.pending_commands(record.call_id):
        command = command_from_dict(json.loads(entry.command))
        if entry.state is CommandState.PENDING:
            resend.append(command)
        elif entry.key in results:
            await store.mark_command(entry.key, results[entry.key])
        elif command.kind in REPEATABLE:
            await store.mark_command(entry.key, CommandState.PENDING)
            resend.append(command)
        else:
            await store.mark_command(entry.key, CommandState.FAILED)
            log.warning(
                "command outcome unknown after restart; not repeated",
                call_id=record.call_id,
                command=command.kind,
                key=entry.key,
            )
    if session.state == INIT and not session.ended:
        engine.post(session.call_id, ev.start())  # created, but its start was not written
    for event, seq in events:
        persistence.post(record.call_id, event, seq)
    if resend:
        persistence.spawn(_resend(telephony, resend))
    log.info(
        "call restored",
        call_id=session.call_id,
        flow=session.flow,
        state=session.state,
        ended=session.ended,
        inbox=len(events),
        resent=len(resend),
    )
    return session


async def _resend(telephony: DurableTelephony, commands: list[Command]) -> None:
    for command in commands:
        await telephony.execute(command)
