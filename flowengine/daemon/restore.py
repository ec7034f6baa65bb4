"""Taking calls back: after a restart, and from a daemon that died or lost its lease.

Where it sits: over ``persistence.py`` (the same store, the same rules). ``restore_calls``
runs at startup for every live call of the store; ``take_back`` runs one call, and is what
``ownership.py`` uses for a call another daemon ran. With several daemons, a call is taken
back only once its lease is taken (``lease``), so one daemon at a time runs it.

Restore (``restore_calls``), for every live call of the store: rebuild the session
(``Engine.restore``: timers re-armed from their deadlines, one already due fires at once), post
its inbox again in order, then settle its open commands:

- ``pending`` (never sent): sent now, under the same idempotency key.
- ``unknown`` with a result in the inbox: marked by that result (it was received, then the
  daemon died before marking it).
- ``unknown`` without a result, for a command that is harmless to repeat (``stop_dial_out``,
  ``hangup``, ``play``, ``say``, ``stop_play``): sent again.
- ``unknown`` ``answer`` (routing a held pinless call to the room): sent again, because Daily
  routes a held call once and refuses a second routing; a refusal (4xx) means the first one
  was taken, and the command is marked ``failed`` with no result posted: Daily's
  ``dialin.connected`` moves the call on (``DurableTelephony.probes``).
- ``unknown`` otherwise (``start_dial_out``, ``send_dtmf``, ``sip_call_transfer``,
  ``sip_refer``, ``http_request``): **never sent again**, marked ``failed`` in the
  outbox, and no result is posted: the call waits for Daily's webhook that tells what happened
  (``dialout.*``, ``calltransfer.*``), and the state's own timer bounds
  the wait (a ``dial_out`` rings out to ``no_answer``, a ``transfer`` fails, an ``http`` state
  retries under its own policy).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import structlog

from ..runtime import events as ev
from ..runtime.commands import Command, command_from_dict
from ..runtime.compiler import INIT
from ..runtime.engine import Engine
from ..runtime.events import Event
from ..runtime.session import RestoreError, Session
from ..store import CallRecord, CommandState
from .persistence import RESULT_STATE, DurableTelephony, Persistence

log = structlog.get_logger("flowengine.daemon.restore")

REPEATABLE = frozenset({"stop_dial_out", "hangup", "play", "say", "stop_play"})
"""Commands that do no harm when sent twice: an unknown outcome is settled by sending again."""
PROBED = frozenset({"answer"})
"""Commands Daily refuses to repeat (a held call is routed to a room once): an unknown outcome
is settled by sending again, and a refusal means the first sending was taken."""

LeaseTaker = Callable[[str], Awaitable[int | None]]
"""Takes a call's lease for this daemon: its fencing token, or ``None`` when another holds it."""


async def restore_calls(
    engine: Engine,
    persistence: Persistence,
    telephony: DurableTelephony,
    *,
    track: Callable[[Session], None] | None = None,
    lease: LeaseTaker | None = None,
) -> list[Session]:
    """Take back every live call of the store (see the module's docstring for the rules).

    A call whose last step ended it (a hang-up) is no longer live, but that step's commands
    (deleting the room) may not have been sent when the daemon died: such a call is taken
    back too, ended, so its open commands are settled by the same rules. ``track`` is called
    with each session as soon as it is restored, before its inbox is posted: a call that ends
    on an event of its inbox must already be known to the daemon's bookkeeping (its CDR).
    With ``lease``, a call is taken back only once its lease is taken: one that another live
    daemon runs is left to it.
    """
    store = persistence.store
    restored: list[Session] = []
    live = await store.live_calls()
    for record in live:
        session = await take_back(engine, persistence, telephony, record, track, lease)
        if session is not None:
            restored.append(session)
    seen = {record.call_id for record in live}
    for call_id in dict.fromkeys(e.call_id for e in await store.pending_commands()):
        ended = None if call_id in seen else await store.load_call(call_id)
        if ended is not None and not ended.live:
            session = await take_back(engine, persistence, telephony, ended, track, lease)
            if session is not None:
                restored.append(session)
    return restored


async def take_back(
    engine: Engine,
    persistence: Persistence,
    telephony: DurableTelephony,
    record: CallRecord,
    track: Callable[[Session], None] | None = None,
    lease: LeaseTaker | None = None,
) -> Session | None:
    """Run a stored call here from where its record stands; ``None`` if it is not taken.

    With ``lease``, the lease is taken first and the record read again under it (the call
    may have moved on, or ended with nothing left to settle, since ``record`` was read).
    Everything is read from the store before the session is rebuilt, and the inbox is posted
    in the same step as the rebuild: a timer that came due while nobody ran the call fires
    after the events that were accepted before it.
    """
    store = persistence.store
    call_id = record.call_id
    if engine.get(call_id) is not None:
        return None
    fence: int | None = None
    if lease is not None:
        fence = await lease(call_id)
        if fence is None:
            return None  # another daemon runs it
        fresh = await store.load_call(call_id)
        if fresh is None:
            return None
        record = fresh
    try:
        session = Session.from_json(record.snapshot, engine.runtime.flows)
    except RestoreError as exc:
        # Kept in the store: it is restored once its flow version is loaded again.
        log.error("call not restored", call_id=call_id, reason=str(exc))
        return None
    inbox = await store.inbox(call_id)
    events = [(Event.from_dict(json.loads(e.payload)), e.seq) for e in inbox]
    results = {
        str(event.payload.get("key")): RESULT_STATE[event.name]
        for event, _ in events
        if event.name in RESULT_STATE and event.payload.get("key")
    }
    open_commands = await store.pending_commands(call_id)
    if not record.live and not open_commands and not events:
        return None  # ended, nothing left to settle
    resend: list[Command] = []
    for entry in open_commands:
        command = command_from_dict(json.loads(entry.command))
        if entry.state is CommandState.PENDING:
            resend.append(command)
        elif entry.key in results:
            await store.mark_command(entry.key, results[entry.key])
        elif command.kind in REPEATABLE or command.kind in PROBED:
            await store.mark_command(entry.key, CommandState.PENDING)
            if command.kind in PROBED:
                telephony.probes.add(entry.key)
            resend.append(command)
        else:
            await store.mark_command(entry.key, CommandState.FAILED)
            log.warning(
                "command outcome unknown after restart; not repeated",
                call_id=call_id,
                command=command.kind,
                key=entry.key,
            )
    if engine.get(call_id) is not None:
        return None  # taken back meanwhile by another path of this daemon
    # From here to the posts nothing awaits: the rebuilt call's due timers fire after them.
    if fence is not None:
        persistence.fences[call_id] = fence
    session = engine.restore(session)
    persistence.adopt(session, record.version)
    if track is not None:
        track(session)
    if session.state == INIT and not session.ended:
        engine.post(session.call_id, ev.start())  # created, but its start was not written
    for event, seq in events:
        persistence.post(call_id, event, seq)
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
