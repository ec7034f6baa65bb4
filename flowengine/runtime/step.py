"""The handling of one event: what an action may read and do while the core runs it.

A ``Step`` lives for one event. Actions (``actions/``) receive it and use it to emit commands,
arm timers, render templates and read the call; they return an outcome key (a route of the
state), ``STAY`` (the event was theirs, nothing moves) or ``None`` (the event is not theirs).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .. import model as m
from ..templates import render
from .commands import CancelTimer, Command, Play, StartTimer
from .compiler import CompiledFlow
from .events import Event
from .session import Move, Session, Timer

if TYPE_CHECKING:
    from .core import Runtime

STAY: Final = ""
"""An action handled the event and the call stays where it is."""

ERROR: Final = "error"
HANGUP: Final = "hangup"
LIMIT: Final = "limit"
MAX_VISITS: Final = "max_visits"
GONE: Final = "_gone"
"""Internal: the caller is gone and the state cannot work without them: the call ends."""
LIMIT_END: Final = "_limit_end"
"""Internal: a limit was exceeded again after the limit handler took over: the call ends."""

C = TypeVar("C", bound=Command)


class Step:
    """One event being handled for one call."""

    __slots__ = (
        "_compiled",
        "entered_states",
        "event",
        "moves",
        "next",
        "notes",
        "now",
        "outbox",
        "runtime",
        "session",
    )

    def __init__(self, runtime: Runtime, session: Session, event: Event, now: float) -> None:
        self.runtime = runtime
        self.session = session
        self.event = event
        self.now = now
        self.outbox: list[Command] = []
        self.entered_states: list[str] = []
        self.moves: list[Move] = []
        self.notes: list[str] = []
        self.next: str | None = None
        self._compiled: CompiledFlow | None = None

    # -- where the call is -------------------------------------------------------------------

    @property
    def compiled(self) -> CompiledFlow:
        """The compiled flow the call is in now."""
        compiled = self._compiled
        if compiled is None or compiled.flow.content_hash != self.session.flow_hash:
            compiled = self._compiled = self.runtime.flows.compiled(self.session.flow_hash)
        return compiled

    @property
    def flow(self) -> m.Flow:
        """The flow the call is in now (a sub-flow while one runs)."""
        return self.compiled.flow

    @property
    def state(self) -> m.State | None:
        """The current state (None before ``start`` and after ``_ended``)."""
        return self.flow.states.get(self.session.state)

    def has(self, trigger: str) -> bool:
        """True when ``trigger`` leads somewhere from the current state (routes and handlers)."""
        return self.compiled.has(self.session.state, trigger)

    def move(self, trigger: str) -> None:
        """Fire ``trigger`` from the current state, recording the move for the trace."""
        session, compiled = self.session, self.compiled
        target = compiled.table[session.state][trigger]
        self.moves.append((session.flow, session.state, trigger, target))
        compiled.move(session, trigger, self)

    def entered(self, state: str) -> None:
        """The compiled machine's callback: run the entered state (see ``Runtime.enter``)."""
        self.runtime.enter(self, state)

    def routed(self, key: str) -> bool:
        """True when the current state routes ``key`` itself."""
        state = self.state
        return state is not None and key in state.routes

    # -- doing things ------------------------------------------------------------------------

    def emit(self, cls: type[C], **fields: Any) -> C:
        """Add a command; its key is ``<call id>:<seq>:<index>``."""
        key = f"{self.session.call_id}:{self.session.seq}:{len(self.outbox)}"
        command = cls(key=key, call_id=self.session.call_id, **fields)
        self.outbox.append(command)
        return command

    def start_timer(self, purpose: str, seconds: float, scope: str = "state") -> str:
        """Arm a timer due ``seconds`` from now; returns its id."""
        timer_id = f"{purpose}:{self.session.seq}.{len(self.outbox)}"
        deadline = self.now + max(0.0, seconds)
        self.session.timers[timer_id] = Timer(timer_id, purpose, deadline, scope)
        self.emit(StartTimer, timer=timer_id, purpose=purpose, seconds=seconds, deadline=deadline)
        return timer_id

    def cancel_timers(self, *purposes: str, scope: str | None = "state") -> None:
        """Cancel pending timers of these purposes (all when none given) in ``scope`` (or any)."""
        for timer in list(self.session.timers.values()):
            if (not purposes or timer.purpose in purposes) and scope in (None, timer.scope):
                del self.session.timers[timer.id]
                self.emit(CancelTimer, timer=timer.id)

    def note(self, text: str) -> None:
        """Say in the trace why something happened."""
        self.notes.append(text)

    def fail(self, why: str) -> str:
        """The outcome for something that went wrong inside the state (a template failed...).

        The state's ``error`` route or the flow's error handler when there is one, else the
        action's own failure outcome when routed, else ``error`` (which ends the call).
        """
        self.note(why)
        state = self.state
        if self.has(ERROR) or state is None:
            return ERROR
        failures = m.outcomes(state)[1]
        for key in failures:
            if self.routed(key):
                return key
        return ERROR

    def exhausted(self, reason: str) -> str:
        """Collect and menu out of attempts: the reason if routed, else max_attempts, else error."""
        if self.routed(reason):
            return reason
        if self.routed("max_attempts"):
            return "max_attempts"
        self.note(f"attempts exhausted on {reason}, and neither it nor max_attempts is routed")
        return ERROR

    # -- reading the call --------------------------------------------------------------------

    def context(self, **extra: Any) -> dict[str, Any]:
        """What templates see: ``vars``, ``call``, ``flow`` (and e.g. ``response``)."""
        session = self.session
        info = session.call
        call = {
            "id": session.call_id,
            "from": info.get("from"),
            "to": info.get("to"),
            "direction": info.get("direction", "inbound"),
            "sip_headers": info.get("sip_headers") or {},
            "room": info.get("room"),
            "session_id": session.legs.get("caller", info.get("session_id")),
            "started_at": session.started_at,
        }
        flow = {"name": session.flow, "version": session.flow_hash[:12]}
        return {"vars": session.vars, "call": call, "flow": flow, **extra}

    def render(self, value: Any, **extra: Any) -> Any:
        """Render a template value for this call.

        Raises:
            TemplateError: the template failed.
        """
        return render(value, self.context(**extra))

    def set_var(self, name: str, value: Any) -> None:
        """Set a variable to a JSON-safe copy of ``value`` (sessions persist as JSON)."""
        self.session.vars[name] = json_safe(value)

    def leg_session(self, leg: str) -> str | None:
        """Daily's session id of a leg, if it is up."""
        sid = self.session.legs.get(leg)
        if sid is None and leg == "caller":
            value = self.session.call.get("session_id")
            sid = value if isinstance(value, str) else None
        return sid

    def event_session(self) -> str | None:
        """The session id the event concerns: from its payload, else from its leg name."""
        sid = self.event.session_id
        if sid is None and self.event.leg is not None:
            sid = self.leg_session(self.event.leg)
        return sid

    def play(self, prompt_id: str, *, barge_in: bool) -> str:
        """Emit a ``Play`` of a catalogue prompt in the call's locale; returns its key."""
        flow = self.flow
        locale = self.session.call.get("locale") or flow.locale
        prompt = flow.prompts.get(prompt_id)
        text = audio = None
        if prompt is not None:
            found = (
                prompt.locales.get(locale)
                or prompt.locales.get("")
                or prompt.locales.get(flow.locale)
                or next(iter(prompt.locales.values()), None)
            )
            if found is not None:
                text = None if found.text is None else str(self.render(found.text))
                audio = found.audio
        else:
            self.note(f"prompt {prompt_id!r} is not in the catalogue")
        command = self.emit(
            Play, prompt=prompt_id, locale=locale, text=text, audio=audio, barge_in=barge_in
        )
        return command.key


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data (tuples become lists, anything unknown its text)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return str(value)


def nth(items: tuple[str, ...], index: int) -> str | None:
    """The ``index``-th item (from 0); the last one repeats; None for an empty tuple."""
    if not items:
        return None
    return items[min(index, len(items) - 1)]
