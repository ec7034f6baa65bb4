"""The pure, synchronous core: ``Runtime.handle(session, event, now) -> commands``.

No I/O, no clock, no asyncio: the caller passes the time, and gets back the commands to carry
out. One event may move the call through several states (``set`` -> ``choose`` -> ``play``);
each move fires a trigger of the flow's compiled machine, whose callback runs the entered
state's action (``actions/``). Where an outcome goes:

- a route of the state (or an implicit edge of the compiled flow) -> that state;
- ``max_visits`` not routed -> ``limit``; ``limit`` not routed -> the call ends (``limit``); the
  limit handler takes over once: a limit exceeded again after that (steps beyond a grace of
  ``limit_grace_steps``, time beyond ``limit_grace_seconds``, or any ``max_visits``) ends the call;
- ``hangup`` not routed -> the call ends (``caller_hangup``); ``error`` not routed -> the call
  ends (``error``); in a sub-flow these three first return to the calling ``call`` state and
  are resolved there;
- any other outcome not routed (an unrouted failure) -> ``error``.

The core never raises for an event: a bug in an action ends that call with outcome ``error``
(``strict=True``, for tests, re-raises instead).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfoNotFoundError

from .. import model as m
from ..errors import FlowEngineError, TemplateError
from .actions import KINDS
from .commands import Command, Hangup, StopDialOut
from .compiler import END, ENDED, INIT, START, FlowSet
from .events import CALLER_GONE, COMMAND_OK, FAULT, TIMER, Event
from .session import Frame, Session, TraceEntry
from .step import ERROR, GONE, HANGUP, LIMIT, LIMIT_END, MAX_VISITS, STAY, Step, json_safe

_EXPECTED = (TemplateError, re.error, ZoneInfoNotFoundError)
"""What may go wrong inside a state because of the flow or the call's data: the error path."""

_ENDINGS = {HANGUP: "caller_hangup", ERROR: "error", LIMIT: "limit"}
MAX_MOVES_PER_EVENT = 10_000
"""A guard against a bug looping inside one event; limits normally stop loops long before."""


class UnknownFlowError(FlowEngineError):
    """Raised when a call is started on a flow name the runtime was not given."""


class Runtime:
    """Runs calls on a set of flows. Shared by all calls; holds no per-call state."""

    def __init__(
        self,
        flows: FlowSet | Iterable[m.Flow],
        *,
        room_sip_domain: str | None = None,
        limit_grace_steps: int = 100,
        limit_grace_seconds: float = 60.0,
        strict: bool = False,
    ) -> None:
        self.flows = flows if isinstance(flows, FlowSet) else FlowSet(flows)
        self.room_sip_domain = room_sip_domain
        """SIP host of the domain's rooms: a transfer to room R goes to ``sip:R@<this>``."""
        self.limit_grace_steps = limit_grace_steps
        self.limit_grace_seconds = limit_grace_seconds
        self.strict = strict

    # -- calls -------------------------------------------------------------------------------

    def new_session(
        self,
        call_id: str,
        flow: str,
        *,
        call: Mapping[str, Any] | None = None,
        variables: Mapping[str, Any] | None = None,
        now: float = 0.0,
    ) -> Session:
        """A call on the current version of ``flow``, before its ``start`` event.

        Raises:
            UnknownFlowError: no flow of that name was given.
        """
        found = self.flows.get(flow)
        if found is None:
            raise UnknownFlowError(
                f"no flow named {flow!r} (loaded: {', '.join(self.flows.names)})"
            )
        return Session(
            call_id=call_id,
            flow=found.name,
            flow_hash=found.content_hash,
            vars=initial_vars(found, variables or {}),
            call=json_safe(dict(call or {})),
            started_at=now,
        )

    def handle(self, session: Session, event: Event, now: float) -> list[Command]:
        """Apply one event to a call; return the commands it produced (also in the trace)."""
        step = Step(self, session, event, now)
        source = session.state
        if session.ended:
            step.note("the call has ended")
        else:
            session.seq += 1
            try:
                self._dispatch(step)
            except Exception as exc:
                if self.strict:
                    raise
                self._crash(step, exc)
        self._record(step, source)
        return step.outbox

    # -- one event ---------------------------------------------------------------------------

    def _dispatch(self, step: Step) -> None:
        session, event = step.session, step.event
        self._observe(step)
        if event.name == START:
            if session.state != INIT:
                step.note("the call has already started")
                return
            limits = self.flows.get(session.root_flow) or step.flow
            step.start_timer(LIMIT, limits.limits.max_duration, scope="call")
            self._run(step, START)
            return
        if session.state == INIT:
            step.note("the call has not started")
            return
        if event.name == TIMER:
            timer = session.timers.pop(str(event.payload.get("id")), None)
            if timer is None:
                step.note("the timer was cancelled")
                return
            if timer.purpose == LIMIT:
                self._run(step, self._limit(step, "max_duration"))
                return
        if event.name == FAULT:
            self._fault(step)
            return
        key = self._action_event(step)
        self._forget_ended_leg(step)
        if key is None:
            if self._caller_left(step):
                key = HANGUP
            elif step.has(event.name):
                key = event.name
            else:
                step.note(f"state {session.state!r} does not handle {event.name}")
                return
        if key != STAY:
            self._run(step, key)

    def _fault(self, step: Step) -> None:
        """A reported fault takes the path of a failure inside the state (``Step.fail``)."""
        state = step.state
        if state is None or state.final:
            step.note("a fault outside any open state is ignored")
            return
        reason = step.event.payload.get("reason") or "a fault was reported"
        self._run(step, step.fail(f"fault: {reason}"))

    def _observe(self, step: Step) -> None:
        """What every event teaches about the call, whatever state it is in."""
        session, event, name = step.session, step.event, step.event.name
        payload, sid = event.payload, step.event_session()
        if name == "dialin.ready":
            endpoint = payload.get("sip_endpoint", payload.get("sipEndpoint"))
            if endpoint:
                session.call["sip_endpoint"] = endpoint
        elif name == "dialin.connected" and sid is not None:
            session.legs["caller"] = sid
            session.call["connected"] = True
        elif name == COMMAND_OK and payload.get("command") == "start_dial_out":
            leg, data = payload.get("leg", event.leg), payload.get("data") or {}
            new_sid = data.get("sessionId", data.get("session_id"))
            # A dial-out whose ring timer fired before its result came is abandoned by its
            # command's key (the same leg name may already be dialling again).
            abandoned: list[str] = session.call.get("abandoned_dialouts", [])
            if isinstance(leg, str) and isinstance(new_sid, str):
                if payload.get("key") in abandoned:
                    abandoned.remove(payload["key"])
                    session.call.setdefault("ended_sessions", []).append(new_sid)
                    step.emit(StopDialOut, leg=leg, session_id=new_sid)
                elif new_sid not in session.call.get("ended_sessions", ()):
                    session.legs[leg] = new_sid
        if self._caller_left(step):
            session.caller_gone = True

    def _caller_left(self, step: Step) -> bool:
        name = step.event.name
        if name not in CALLER_GONE:
            return False
        sid, caller = step.event_session(), step.leg_session("caller")
        if name == "participant.left":
            return sid is not None and sid == caller
        return sid is None or caller is None or sid == caller

    def _forget_ended_leg(self, step: Step) -> None:
        if step.event.name in ("dialout.stopped", "dialout.error"):
            sid = step.event_session()
            legs = step.session.legs
            for leg in [k for k, v in legs.items() if v == sid and k != "caller"]:
                del legs[leg]

    def _action_event(self, step: Step) -> str | None:
        state = step.state
        if state is None or state.final:
            return None
        _, on_event = KINDS[type(state.action)]
        try:
            return on_event(step, state.action, step.event)
        except _EXPECTED as exc:
            return step.fail(str(exc))

    # -- moving ------------------------------------------------------------------------------

    def _run(self, step: Step, key: str | None) -> None:
        moves = 0
        errors = 0
        while key and not step.session.ended:
            moves += 1
            errors += key == ERROR
            if moves > MAX_MOVES_PER_EVENT or errors > 3:
                step.note(f"stopped after {moves} moves and {errors} errors in one event")
                self._finish(step, "error", "error")
                return
            key = self._follow(step, key)

    def _follow(self, step: Step, key: str) -> str | None:
        session = step.session
        if key == HANGUP:
            session.hung_up = True
        if key == GONE:
            self._finish(step, "caller_hangup", "caller_hangup")
            return None
        if key == LIMIT_END:
            self._finish(step, "limit", "limit")
            return None
        if step.has(key) and key != END:
            self._leave(step)
            step.move(key)
            nxt, step.next = step.next, None
            return nxt
        if key == MAX_VISITS:  # like any limit: the limit handler takes over once
            return self._limit(step, "max_visits")
        if key in _ENDINGS:
            if session.frames:
                step.note(f"{key} leaves the sub-flow {session.flow!r}")
                self._leave(step)
                self.pop_frame(step, outputs=False)
                return key
            self._finish(step, _ENDINGS[key], _ENDINGS[key])
            return None
        step.note(f"state {session.state!r} does not route {key!r}")
        return ERROR

    def _leave(self, step: Step) -> None:
        step.cancel_timers()
        step.session.scratch = {}
        step.session.attempt = 0

    def enter(self, step: Step, name: str) -> None:
        """The machine's callback: the call has entered ``name``."""
        session = step.session
        if name == ENDED:
            return
        session.steps += 1
        step.entered_states.append(name)
        state = step.flow.states[name]
        root = self.flows.get(session.root_flow) or step.flow
        grace = self.limit_grace_steps if session.limit_fired else 0
        if session.steps > root.limits.max_steps + grace:
            step.next = self._limit(step, "max_steps")
            return
        visits = session.visits[name] = session.visits.get(name, 0) + 1
        if state.max_visits is not None and visits > state.max_visits:
            step.note(f"{name!r} entered {visits} times (max_visits {state.max_visits})")
            step.next = MAX_VISITS
            return
        if state.final:
            self._final(step, state)
            return
        enter, _ = KINDS[type(state.action)]
        try:
            step.next = enter(step, state.action)
        except _EXPECTED as exc:
            step.next = step.fail(str(exc))

    def _final(self, step: Step, state: m.State) -> None:
        action = state.action
        if isinstance(action, m.Return) and step.session.frames:
            self.pop_frame(step, outputs=True)
            step.next = action.outcome
        elif isinstance(action, m.Hangup):
            self._finish(step, "hangup", action.reason or "hangup")
        else:
            self._finish(step, "end", None)

    def _limit(self, step: Step, which: str) -> str:
        session = step.session
        if session.limit_fired:
            step.note(f"{which} exceeded again after the limit handler took over")
            return LIMIT_END
        session.limit_fired = True
        step.note(f"{which} exceeded")
        step.start_timer(LIMIT, self.limit_grace_seconds, scope="call")
        return LIMIT

    def _finish(self, step: Step, outcome: str, hangup_reason: str | None) -> None:
        session = step.session
        state = step.state
        if (state is None or not state.final) and step.has(END):
            step.move(END)
        step.cancel_timers(scope=None)
        session.scratch = {}
        if hangup_reason is not None:
            step.emit(Hangup, reason=hangup_reason)
        session.ended = True
        # A call the caller hung up ends as caller_hangup, even through the flow's clean-up.
        session.outcome = (
            "caller_hangup" if session.hung_up and outcome in ("end", "hangup") else outcome
        )

    def _crash(self, step: Step, exc: Exception) -> None:
        step.note(f"internal error: {exc!r}")
        try:
            self._finish(step, "error", "error")
        except Exception:  # the machine itself failed: end the record without it
            step.session.ended, step.session.outcome = True, "error"

    # -- sub-flows ---------------------------------------------------------------------------

    def push_frame(self, step: Step, sub: m.Flow, inputs: Mapping[str, Any]) -> None:
        """Enter a sub-flow: remember where to return, start with its own variables."""
        session = step.session
        session.frames.append(
            Frame(session.flow, session.flow_hash, session.state, session.vars, session.visits)
        )
        session.flow, session.flow_hash = sub.name, sub.content_hash
        session.vars = initial_vars(sub, inputs)
        session.visits = {}
        session.state = INIT
        session.scratch = {}

    def pop_frame(self, step: Step, *, outputs: bool) -> None:
        """Go back to the calling flow's ``call`` state (copying outputs on a ``return``)."""
        session = step.session
        frame = session.frames.pop()
        sub_vars = session.vars
        session.flow, session.flow_hash = frame.flow, frame.flow_hash
        session.state, session.vars, session.visits = frame.state, frame.vars, frame.visits
        session.scratch = {}
        caller = step.state
        if outputs and caller is not None and isinstance(caller.action, m.CallFlow):
            for local, name in caller.action.outputs.items():
                session.vars[local] = sub_vars.get(name)

    # -- trace -------------------------------------------------------------------------------

    def _record(self, step: Step, source: str) -> None:
        session = step.session
        session.trace.append(
            TraceEntry(
                seq=session.seq,
                at=step.now,
                event=step.event,
                source=source,
                target=session.state,
                entered=step.entered_states,
                commands=step.outbox,
                note="; ".join(step.notes) or None,
                flow=session.flow if session.frames else None,
                moves=step.moves,
            )
        )


def initial_vars(flow: m.Flow, given: Mapping[str, Any]) -> dict[str, Any]:
    """A flow's variables at its start: declared defaults (and inputs'), then ``given``."""
    values = {name: copy.deepcopy(var.default) for name, var in flow.vars.items()}
    values.update({name: copy.deepcopy(var.default) for name, var in flow.inputs.items()})
    values.update(given)
    out = json_safe(values)
    assert isinstance(out, dict)
    return out
