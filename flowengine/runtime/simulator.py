"""A call on a flow, offline and deterministic: the engine with a virtual clock and a fake Daily.

``Simulator`` is synchronous (it runs its own event loop), so the CLI's ``simulate`` and
``test`` commands and plain tests can drive it directly::

    sim = Simulator(flow)                  # the call starts: state, commands...
    sim.dtmf("1234#")                      # one dtmf event per key, 100 ms apart
    sim.send("dialout.answered", leg="agent")
    sim.advance(30)                        # due timers fire in order, instantly
    sim.state, sim.vars, sim.ended, sim.outcome, sim.path, sim.trace

After each call the engine has run until the call waits for something (a key, a timer, an
event): every command has been answered by the fake and every consequence handled. Nothing
depends on the wall clock or the network, so the same script gives the same trace every time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from .. import model as m
from . import events
from .commands import Command
from .compiler import FlowSet
from .engine import Engine
from .events import Event
from .fake import FakeTelephony, caller_session_id
from .ports import DEFAULT_EPOCH, VirtualClock
from .session import Session, TraceEntry

SIMULATOR_SIP_DOMAIN = "example.sip.daily.co"
"""The SIP host the simulator gives rooms: a transfer to room R goes to ``sip:R@<this>``."""

DEFAULT_CALL = {"from": "+15550100001", "to": "+15550100002", "direction": "inbound"}

T = TypeVar("T")


def _epoch(at: float | datetime | None) -> float:
    if at is None:
        return DEFAULT_EPOCH
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("the start time needs a UTC offset (e.g. 2026-11-23T10:00:00-08:00)")
        return at.timestamp()
    return float(at)


class Simulator:
    """One simulated call. Use it as a context manager, or call ``close()``."""

    def __init__(
        self,
        flows: m.Flow | Iterable[m.Flow] | FlowSet,
        flow: str | None = None,
        *,
        telephony: FakeTelephony | None = None,
        at: float | datetime | None = None,
        call: Mapping[str, Any] | None = None,
        variables: Mapping[str, Any] | None = None,
        call_id: str = "sim-1",
        room_sip_domain: str | None = SIMULATOR_SIP_DOMAIN,
        start: bool = True,
        strict: bool = False,
        _record: str | None = None,
    ) -> None:
        flowset = _flowset(flows)
        if flow is None:
            if isinstance(flows, m.Flow):
                flow = flows.name
            elif len(flowset.names) == 1:
                flow = flowset.names[0]
            elif _record is None:
                raise ValueError(f"name the flow to run: one of {', '.join(flowset.names)}")
        self.call_id = call_id
        self._closed = False
        self.clock = VirtualClock(_epoch(at))
        self.telephony = telephony or FakeTelephony()
        self._runner = asyncio.Runner()
        self.engine: Engine = self._run(
            self._make(flowset, room_sip_domain=room_sip_domain, strict=strict)
        )
        if _record is not None:
            self._run(self._restore(_record))
            return
        info = DEFAULT_CALL | {"session_id": caller_session_id(call_id)} | dict(call or {})
        assert flow is not None
        self._run(self._start(flow, info, variables))
        if start:
            self.send(events.start())

    @classmethod
    def restore(
        cls,
        flows: m.Flow | Iterable[m.Flow] | FlowSet,
        record: str,
        *,
        at: float | datetime,
        telephony: FakeTelephony | None = None,
        room_sip_domain: str | None = SIMULATOR_SIP_DOMAIN,
        strict: bool = False,
    ) -> Simulator:
        """Continue a call from ``snapshot()`` output, with the clock at ``at``.

        Raises:
            RestoreError: the record does not fit the flows.
        """
        call_id = str(Session.from_json(record, _flowset(flows)).call_id)
        return cls(
            flows,
            telephony=telephony,
            at=at,
            call_id=call_id,
            room_sip_domain=room_sip_domain,
            strict=strict,
            _record=record,
        )

    async def _make(self, flows: FlowSet, **options: Any) -> Engine:
        return Engine(flows, self.telephony, self.clock, **options)

    async def _start(
        self, flow: str, info: Mapping[str, Any], variables: Mapping[str, Any] | None
    ) -> None:
        self.engine.start_call(self.call_id, flow, call=info, variables=variables, start=False)

    async def _restore(self, record: str) -> None:
        self.engine.restore(record)
        await self.clock.advance(0)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    # -- driving the call --------------------------------------------------------------------

    def send(self, event: str | Event, *, leg: str | None = None, **payload: Any) -> list[Command]:
        """Deliver an event and run to quiescence; returns the commands Daily was sent."""
        if isinstance(event, str):
            event = Event(event, payload, leg)
        before = len(self.telephony.commands)
        self._run(self._post(event))
        return self.telephony.commands[before:]

    async def _post(self, event: Event) -> None:
        self.engine.post(self.call_id, event)
        await self.clock.advance(0)

    def dtmf(self, keys: str, gap: float = 0.1) -> list[Command]:
        """The caller presses ``keys``, one ``dtmf`` event each, ``gap`` seconds apart."""
        before = len(self.telephony.commands)
        for i, key in enumerate(keys):
            if i:
                self.advance(gap)
            self.send(events.dtmf(key))
        return self.telephony.commands[before:]

    def hangup(self) -> list[Command]:
        """The caller hangs up."""
        return self.send(events.hangup())

    def advance(self, seconds: float) -> list[Command]:
        """Let time pass: due timers fire in order, each one's effects complete before the next."""
        before = len(self.telephony.commands)
        self._run(self.clock.advance(seconds))
        return self.telephony.commands[before:]

    def snapshot(self) -> str:
        """The call's persisted form (``Session.to_json``)."""
        return self.session.to_json()

    def close(self) -> None:
        """Stop the engine and the event loop (a second call does nothing)."""
        if self._closed:
            return
        self._closed = True
        self._run(self.engine.aclose())
        self._runner.close()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- reading the call --------------------------------------------------------------------

    @property
    def session(self) -> Session:
        """The call's session."""
        session = self.engine.get(self.call_id)
        assert session is not None
        return session

    @property
    def state(self) -> str:
        """The current state (``_ended`` when the call ended outside a final state)."""
        return self.session.state

    @property
    def flow(self) -> str:
        """The flow the call is in (a sub-flow's name while one runs)."""
        return self.session.flow

    @property
    def vars(self) -> dict[str, Any]:
        """The current flow's variables."""
        return self.session.vars

    @property
    def commands(self) -> list[Command]:
        """Every command the fake Daily received, in order."""
        return self.telephony.commands

    @property
    def issued(self) -> list[Command]:
        """Every command the runtime produced, timers included, from the trace."""
        return [c for entry in self.trace for c in entry.commands]

    @property
    def trace(self) -> list[TraceEntry]:
        """The call's trace."""
        return self.session.trace

    @property
    def path(self) -> list[str]:
        """The states entered so far, in order."""
        return [name for entry in self.trace for name in entry.entered]

    @property
    def ended(self) -> bool:
        """True once the call has ended."""
        return self.session.ended

    @property
    def outcome(self) -> str | None:
        """How the call ended: hangup, caller_hangup, end, limit, error."""
        return self.session.outcome

    @property
    def now(self) -> float:
        """The virtual time."""
        return self.clock.now()


def _flowset(flows: m.Flow | Iterable[m.Flow] | FlowSet) -> FlowSet:
    if isinstance(flows, FlowSet):
        return flows
    return FlowSet([flows] if isinstance(flows, m.Flow) else flows)
