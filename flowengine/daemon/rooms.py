"""Room agents: one in-room participant per live call, so the daemon hears keys and plays prompts.

Where it sits: beside ``calls.py``, over ``flowengine.daily.participant``. Caller key presses
(``dtmf-event``) and prompt audio exist only inside a call's Daily room; no webhook carries
them. With room agents on (``--room-agent``), ``RoomAgents`` runs one ``RoomParticipant`` per
live call:

- **Joining.** When a call's room has been created (``Calls``), and for each live call taken
  back at startup, it asks Daily for an owner meeting token of the room (expiring with the
  room: the flow's ``max_duration`` and ``ROOM_GRACE``), builds the participant with the room's
  URL (from the room Daily created; a restored call's room is looked up) and joins in the
  background. A join that fails is logged with the call id and the call goes on over REST.
- **Commands.** The engine's telephony is ``DurableTelephony(router)``, ``router`` being a
  ``ParticipantRouter`` whose fallback is the REST adapter. A participant is attached to it
  once it has joined, so a call's play, say, stop_play, dtmf, dial-out and transfers go
  in-room while its participant is in the room, and over REST otherwise.
- **Events.** What the participant hears is journaled before the engine sees it, like every
  accepted event: its poster goes through ``Persistence.accept``, one event at a time per call
  (in the order heard), each under an id of its own so a retry after a store error is
  deduplicated. Only what no webhook carries is forwarded (``FORWARDED``): keys, app
  messages, and the end or failure of a prompt the participant played. ``dialin.*``,
  ``dialout.*`` and ``participant.*`` come from Daily's webhooks; taking them from the room
  too would hand the call each of them twice.
- **Leaving.** When a call ends (or leaves memory) its participant is detached and leaves;
  ``aclose`` (the daemon's stop) makes every participant leave.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import secrets
from collections.abc import Coroutine, Iterable
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from .. import model as m
from ..daily import DailyClient, MeetingTokenSpec
from ..daily.participant import ParticipantRouter, RoomParticipant
from ..daily.participant_audio import TextToSpeech
from ..daily.participant_client import AudioFactory, ClientFactory
from ..runtime.compiler import FlowSet
from ..runtime.events import Event
from ..runtime.ports import Clock, Telephony
from ..runtime.session import Session
from ..store.errors import StoreUnavailableError
from .calls import ROOM_GRACE
from .persistence import Persistence

log = structlog.get_logger("flowengine.daemon.rooms")

FORWARDED = frozenset({"dtmf", "app-message", "play.done", "command.failed"})
"""Events a participant hears that reach the call: those no webhook carries."""
KEY_STATES = frozenset({"collect", "menu"})
"""State kinds that wait for the caller's keys."""
USER_NAME = "flowengine"
"""The participant's name in the room."""
ACCEPT_ATTEMPTS = 3
"""Tries to journal an event while the store is unavailable, before it is dropped (logged)."""


def daily_python_installed() -> bool:
    """Whether daily-python can be imported (and ``daily`` is daily-python, not another one)."""
    try:
        module = importlib.import_module("daily")
    except ImportError:
        return False
    return hasattr(module, "CallClient")


def warn_keys_without_agent(flows: Iterable[m.Flow]) -> None:
    """Log, once, the flows that wait for keys when no room agent can hear them."""
    names = sorted(f.name for f in flows if any(s.kind in KEY_STATES for s in f.states.values()))
    if names:
        log.warning(
            "room agents are off: keys reach these flows only through POST /v1/calls/{id}/events",
            flows=names,
        )


class RoomAgents:
    """One ``RoomParticipant`` per live call, attached to ``router`` once in the room."""

    def __init__(
        self,
        daily: DailyClient,
        persistence: Persistence,
        *,
        fallback: Telephony,
        flows: FlowSet,
        clock: Clock,
        prompts_dir: Path,
        client_factory: ClientFactory | None = None,
        audio_factory: AudioFactory | None = None,
        tts: TextToSpeech | None = None,
        join_timeout: float = 30.0,
    ) -> None:
        self.daily = daily
        self.persistence = persistence
        self.router = ParticipantRouter(fallback=fallback)
        """The engine's telephony under ``DurableTelephony``: in-room, else ``fallback``."""
        self.flows = flows
        self.clock = clock
        self.prompts_dir = prompts_dir
        self.client_factory = client_factory
        self.audio_factory = audio_factory
        self.tts = tts
        self.join_timeout = join_timeout
        self._wanted: set[str] = set()
        self._joins: dict[str, asyncio.Task[None]] = {}
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._leaving: set[asyncio.Task[None]] = set()
        self._prefix = secrets.token_hex(4)
        self._seq = itertools.count(1)

    # -- calls in and out --------------------------------------------------------------------

    def open(self, session: Session, room_url: str | None = None) -> None:
        """Join the call's room in the background (its URL is looked up when not given)."""
        call_id, room = session.call_id, session.call.get("room")
        if session.ended or call_id in self._wanted or not isinstance(room, str):
            return
        self._wanted.add(call_id)
        task = asyncio.get_running_loop().create_task(self._join(session, room, room_url))
        self._joins[call_id] = task
        task.add_done_callback(partial(self._forget_task, self._joins, call_id))

    def reopen(self, sessions: Iterable[Session]) -> None:
        """Join the rooms of calls taken back at startup (ended ones are skipped)."""
        for session in sessions:
            self.open(session)

    def close(self, call_id: str) -> None:
        """The call ended: detach its participant and make it leave (a join in flight, too)."""
        self._wanted.discard(call_id)
        participant = self.router.detach(call_id)
        if participant is not None:
            self._spawn(self._leave(participant))

    async def aclose(self) -> None:
        """Make every participant leave, and wait for the events already heard."""
        self._wanted.clear()
        joins = list(self._joins.values())
        for task in joins:
            task.cancel()
        await asyncio.gather(*joins, return_exceptions=True)
        for call_id in list(self.router.participants):
            self.close(call_id)
        await self.settled()

    async def settled(self) -> None:
        """Wait for the joins, leaves and event postings under way."""
        while True:
            tasks = [*self._joins.values(), *self._leaving, *self._tails.values()]
            pending = [t for t in tasks if not t.done()]
            if not pending:
                return
            await asyncio.wait(pending)

    # -- joining -----------------------------------------------------------------------------

    async def _join(self, session: Session, room: str, room_url: str | None) -> None:
        call_id = session.call_id
        bound = log.bind(call_id=call_id, room=room)
        root = session.frames[0].flow_hash if session.frames else session.flow_hash
        flow = self.flows.version(root)
        max_duration = (flow.limits if flow else m.Limits()).max_duration
        try:
            spec = MeetingTokenSpec(
                room_name=room,
                is_owner=True,
                exp=int(self.clock.now() + max_duration + ROOM_GRACE),
                user_name=USER_NAME,
            )
            participant = RoomParticipant(
                call_id,
                room_url or (await self.daily.get_room(room)).url,
                await self.daily.create_meeting_token(spec),  # kept as a Secret from here on
                post=self._post,
                fallback=self.router.fallback,
                client_factory=self.client_factory,
                audio_factory=self.audio_factory,
                prompts_dir=self.prompts_dir,
                tts=self.tts,
                user_name=USER_NAME,
                join_timeout=self.join_timeout,
            )
            await participant.join()
        except Exception as exc:
            bound.warning("room agent not joined; the call goes on over REST", reason=str(exc))
            return
        if call_id not in self._wanted:  # the call ended while the participant was joining
            await self._leave(participant)
            return
        self.router.attach(participant)
        bound.info("room agent joined")

    async def _leave(self, participant: RoomParticipant) -> None:
        try:
            await participant.leave()
        except Exception as exc:
            log.warning(
                "room agent did not leave cleanly", call_id=participant.call_id, reason=str(exc)
            )

    # -- events ------------------------------------------------------------------------------

    def _post(self, call_id: str, event: Event) -> bool:
        """The participants' poster (on the loop): queue the event to be journaled, in order."""
        if event.name not in FORWARDED:
            log.debug("in-room event left to the webhooks", call_id=call_id, heard=event.name)
            return False
        event_id = f"in-room:{call_id}:agent-{self._prefix}-{next(self._seq)}"
        previous = self._tails.get(call_id)
        task = asyncio.get_running_loop().create_task(
            self._accept(call_id, event, event_id, previous)
        )
        self._tails[call_id] = task
        task.add_done_callback(partial(self._forget_task, self._tails, call_id))
        return True

    async def _accept(
        self, call_id: str, event: Event, event_id: str, previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        engine = self.persistence.engine
        session = engine.get(call_id) if engine is not None else None
        if session is None or session.ended:
            log.debug("in-room event after the call's end", call_id=call_id, heard=event.name)
            return
        for attempt in range(1, ACCEPT_ATTEMPTS + 1):
            try:
                await self.persistence.accept(call_id, event, webhook_id=event_id)
                return
            except StoreUnavailableError as exc:
                if attempt == ACCEPT_ATTEMPTS:
                    log.error(
                        "in-room event lost: the store is unavailable",
                        call_id=call_id,
                        heard=event.name,
                        reason=str(exc),
                    )
                    return
                await asyncio.sleep(0.2 * 2**attempt)
            except Exception as exc:
                log.error(
                    "in-room event not journaled",
                    call_id=call_id,
                    heard=event.name,
                    reason=str(exc),
                )
                return

    # -- bookkeeping -------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._leaving.add(task)
        task.add_done_callback(self._leaving.discard)

    @staticmethod
    def _forget_task(
        tasks: dict[str, asyncio.Task[None]], call_id: str, task: asyncio.Task[None]
    ) -> None:
        if tasks.get(call_id) is task:
            del tasks[call_id]
