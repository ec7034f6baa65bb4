"""Calls of the daemon: starting them (pinless dial-in, the API), routing events to them.

Where it sits: used by the ingress and the API, over the engine, the persistence layer and
Daily's client. A call's id is also its room's name (``in-<Daily's callId>`` for a dial-in,
``out-<random>`` for an API call), so a webhook finds its call by its ``room``; events without
a room are found by the Daily session id of one of the call's legs.

Starting a call: the session is created, stored (``create_call``), the room is created, and
only then is ``start`` posted, so no event can reach a call the store does not know. A
pinless request repeated by Daily (same ``callId``) finds the call and is answered 200 again.
Every handled event passes through ``on_step``: metrics, the session-id index, and on the
call's end its CDR line (and its room agent, if any, leaves: ``rooms.py``); ended calls
leave the engine after ``keep_ended`` seconds (their record stays in the store).
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

import structlog

from .. import model as m
from ..daily import DailyClient, PinlessCall, RoomSpec, SipConfig
from ..runtime import events as ev
from ..runtime.engine import Engine
from ..runtime.events import Event
from ..runtime.ports import Clock
from ..runtime.session import RestoreError, Session
from .flows import FlowCatalog
from .logs import call_fields, log_cdr
from .metrics import Metrics
from .persistence import Persistence
from .restore import LeaseTaker

if TYPE_CHECKING:
    from .rooms import RoomAgents

log = structlog.get_logger("flowengine.daemon.calls")

ROOM_GRACE = 600
"""Seconds a room outlives its flow's ``max_duration`` before Daily closes it."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class CallStartError(Exception):
    """Raised when a call cannot be started: ``status`` is the HTTP answer to give."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def inbound_id(daily_call_id: str) -> str:
    """The call id (and room name) of a pinless call: stable across Daily's retries."""
    return ("in-" + _UNSAFE.sub("-", daily_call_id))[:128]


class Calls:
    """Starts calls and finds the call an event is for."""

    def __init__(
        self,
        engine: Engine,
        persistence: Persistence,
        catalog: FlowCatalog,
        daily: DailyClient,
        metrics: Metrics,
        clock: Clock,
        *,
        keep_ended: float = 300.0,
        agents: RoomAgents | None = None,
    ) -> None:
        self.engine = engine
        self.persistence = persistence
        self.catalog = catalog
        self.daily = daily
        self.metrics = metrics
        self.clock = clock
        self.keep_ended = keep_ended
        self.agents = agents
        """The calls' in-room participants (``rooms.py``), when room agents are on."""
        self._by_session: dict[str, str] = {}
        self._by_room: dict[str, str] = {}
        self._live: set[str] = set()
        self.lease: LeaseTaker | None = None
        """With several daemons: takes a new call's lease before it is stored."""
        self.release: Callable[[str], Coroutine[Any, Any, None]] | None = None
        """With several daemons: gives a call's lease up once it has left memory."""
        self._releases: set[asyncio.Task[None]] = set()

    # -- routing -----------------------------------------------------------------------------

    def find(self, room: str | None, session_id: str | None) -> str | None:
        """The call an event is for: by room, else by a leg's session id."""
        if room:
            return self._by_room.get(room)
        if session_id:
            return self._by_session.get(session_id)
        return None

    def track(self, session: Session) -> None:
        """Index a call (new or restored) and count it as active."""
        room = session.call.get("room")
        if isinstance(room, str):
            self._by_room[room] = session.call_id
        self._index_legs(session)
        if not session.ended and session.call_id not in self._live:
            self._live.add(session.call_id)
            self.metrics.calls_active.labels(session.root_flow).inc()
        elif session.ended and session.call_id not in self._live:
            # An ended call taken back at a restart to settle its last commands: it leaves
            # memory like any ended call.
            self.clock.call_later(self.keep_ended, self._forget, session.call_id)

    def _index_legs(self, session: Session) -> None:
        for sid in (*session.legs.values(), session.call.get("session_id")):
            if isinstance(sid, str) and sid not in self._by_session:
                self._by_session[sid] = session.call_id

    def on_step(self, session: Session, event: Event) -> None:
        """After each handled event: metrics, the leg index, and the end of a call."""
        self.metrics.event(event.name)
        self._index_legs(session)
        log.debug("event handled", handled=event.name, **call_fields(session))
        if session.ended and session.call_id in self._live:
            self._live.discard(session.call_id)
            flow = session.root_flow
            self.metrics.calls_active.labels(flow).dec()
            self.metrics.calls_ended.labels(flow, session.outcome or "unknown").inc()
            log_cdr(session, self.clock.now())
            if self.agents is not None:
                self.agents.close(session.call_id)
            self.clock.call_later(self.keep_ended, self._forget, session.call_id)

    async def stored(self, room: str) -> str | None:
        """The live call of another daemon an event for ``room`` is for (a call's id is its
        room's name), or ``None``."""
        record = await self.persistence.store.load_call(room)
        return room if record is not None and record.live else None

    def drop(self, call_id: str) -> None:
        """Stop running a call another daemon runs now: it leaves memory, not ended."""
        if call_id in self._live:
            self._live.discard(call_id)
            session = self.engine.get(call_id)
            if session is not None:
                self.metrics.calls_active.labels(session.root_flow).dec()
        self._forget(call_id)

    def _forget(self, call_id: str) -> None:
        if self.agents is not None:
            self.agents.close(call_id)
        session = self.engine.remove(call_id)
        fenced = self.persistence.fence(call_id) is not None
        self.persistence.forget(call_id)
        if fenced and self.release is not None:
            task = asyncio.get_running_loop().create_task(self.release(call_id))
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)
        if session is not None:
            self._by_room.pop(str(session.call.get("room")), None)
            for sid in (*session.legs.values(), session.call.get("session_id")):
                if isinstance(sid, str) and self._by_session.get(sid) == call_id:
                    del self._by_session[sid]

    # -- starting ----------------------------------------------------------------------------

    async def start_inbound(self, pinless: PinlessCall) -> Session:
        """Start the flow that matches a pinless dial-in; idempotent by Daily's ``callId``.

        Raises:
            CallStartError: no flow matches (404), or Daily refused the room (502).
        """
        call_id = inbound_id(pinless.call_id)
        existing = self.engine.get(call_id)
        if existing is not None:
            return existing
        record = await self.persistence.store.load_call(call_id)
        if record is not None:  # Daily asked again, and another daemon took the first ask
            try:
                return Session.from_json(record.snapshot, self.catalog.flows)
            except RestoreError:
                raise CallStartError(409, f"call {call_id} exists on another daemon") from None
        flow = self.catalog.route(pinless.to, pinless.sip_headers)
        if flow is None:
            self.metrics.webhook_rejects.labels("no_flow").inc()
            raise CallStartError(404, f"no flow matches a call to {pinless.to}")
        info = {
            "from": pinless.from_,
            "to": pinless.to,
            "direction": "inbound",
            "sip_headers": dict(pinless.sip_headers),
            "room": call_id,
            "dialin_call_id": pinless.call_id,
            "call_domain": pinless.call_domain,
        }
        room = RoomSpec(
            name=call_id,
            exp=int(self.clock.now() + flow.limits.max_duration + ROOM_GRACE),
            eject_at_room_exp=True,
            enable_dialout=True,
            sip=SipConfig(display_name=_display(pinless.from_)),
        )
        return await self._start(call_id, flow, info, {}, room)

    async def start_outbound(
        self, flow_name: str, to: str, *, from_: str | None, variables: Mapping[str, Any]
    ) -> Session:
        """Start a flow on request: its room is made for dial-out; ``to`` is ``call.to``.

        Raises:
            CallStartError: no such flow (404), or Daily refused the room (502).
        """
        flow = self.catalog.flows.get(flow_name)
        if flow is None:
            raise CallStartError(404, f"no flow named {flow_name!r}")
        call_id = "out-" + secrets.token_hex(10)
        info = {"from": from_, "to": to, "direction": "outbound", "room": call_id}
        room = RoomSpec(
            name=call_id,
            exp=int(self.clock.now() + flow.limits.max_duration + ROOM_GRACE),
            eject_at_room_exp=True,
            enable_dialout=True,
        )
        return await self._start(call_id, flow, info, variables, room)

    async def _start(
        self,
        call_id: str,
        flow: m.Flow,
        info: dict[str, Any],
        variables: Mapping[str, Any],
        room: RoomSpec,
    ) -> Session:
        fence = None
        if self.lease is not None:
            fence = await self.lease(call_id)
            if fence is None:
                raise CallStartError(409, f"call {call_id} is being started by another daemon")
        session = self.engine.start_call(
            call_id, flow.name, call=info, variables=variables, start=False
        )
        try:
            await self.persistence.create(session, fence=fence)
        except Exception:
            self.engine.remove(call_id)
            self.persistence.forget(call_id)
            raise
        self.track(session)
        self.metrics.calls_started.labels(flow.name, str(info["direction"])).inc()
        bound = log.bind(**call_fields(session), version=flow.content_hash[:12])
        try:
            created = await self.daily.create_room(room)
        except Exception as exc:
            bound.error("room not created; the call is dropped", reason=str(exc))
            # Posting a hang-up ends the call through the flow's own path, persisted as usual.
            self.engine.post(call_id, ev.hangup())
            raise CallStartError(502, "Daily did not create the call's room") from exc
        self.engine.post(call_id, ev.start())
        if self.agents is not None:
            self.agents.open(session, created.url)  # joins the room in the background
        bound.info("call started", direction=info["direction"], to=info["to"])
        return session


def _display(caller: str | None) -> str:
    text = (caller or "caller").strip() or "caller"
    return text[:64]
