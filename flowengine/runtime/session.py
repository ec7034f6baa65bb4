"""The Session: one call's whole state, as a plain record that serialises to JSON and back.

A session is the *model* the flow's shared ``transitions.Machine`` moves (through its
``state`` attribute); it is never registered with the machine, so it holds no reference to it
and costs a few hundred bytes. Everything the runtime needs to continue a call after a restart
is in here: the flow version (content hash), the state, variables, legs, counters, pending
timers with absolute deadlines, the sub-flow stack, and the trace. ``to_json`` / ``from_json``
round-trip exactly; there is no pickle anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import FlowEngineError
from .commands import Command, command_from_dict
from .compiler import ENDED, INIT, FlowSet
from .events import Event

FORMAT = 1
"""Version of the JSON form; bumped when it changes incompatibly."""

Move = tuple[str, str, str, str]
"""One move of a flow's machine: (flow, source state, trigger, target state)."""


class RestoreError(FlowEngineError):
    """Raised when a persisted session cannot be restored: unknown flow version or state."""


@dataclass(slots=True)
class Timer:
    """A pending timer: due at ``deadline`` (seconds since the epoch, the clock's time)."""

    id: str
    purpose: str
    deadline: float
    scope: str = "state"
    """``state``: cancelled when the call leaves the state; ``call``: lives with the call."""

    def to_list(self) -> list[Any]:
        """The compact JSON form."""
        return [self.id, self.purpose, self.deadline, self.scope]


@dataclass(slots=True)
class Frame:
    """Where a sub-flow returns to: the calling flow, its ``call`` state and its variables."""

    flow: str
    flow_hash: str
    state: str
    vars: dict[str, Any]
    visits: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "flow": self.flow,
            "flow_hash": self.flow_hash,
            "state": self.state,
            "vars": self.vars,
            "visits": self.visits,
        }


@dataclass(slots=True)
class TraceEntry:
    """One handled (or ignored) event: where the call was, where it went, what it asked for."""

    seq: int
    at: float
    event: Event
    source: str
    target: str
    entered: list[str]
    """States entered while handling the event, in order (instant states included)."""
    commands: list[Command]
    note: str | None = None
    flow: str | None = None
    """The flow the call is in afterwards, when it differs from the call's first flow."""
    moves: list[Move] = field(default_factory=list)
    """Each move of the machine while handling the event: (flow, state, trigger, target).

    The trigger names the edge taken (a route key, ``option 1``, ``when 0``, ``otherwise``,
    a handler's key), which ``entered`` cannot tell apart when two edges share a target;
    scenario tests read it for edge coverage.
    """

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        out: dict[str, Any] = {
            "seq": self.seq,
            "at": self.at,
            "event": self.event.to_dict(),
            "from": self.source,
            "to": self.target,
            "entered": self.entered,
            "commands": [c.to_dict() for c in self.commands],
        }
        if self.note is not None:
            out["note"] = self.note
        if self.flow is not None:
            out["flow"] = self.flow
        if self.moves:
            out["moves"] = [list(move) for move in self.moves]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TraceEntry:
        """The inverse of ``to_dict``."""
        return cls(
            seq=data["seq"],
            at=data["at"],
            event=Event.from_dict(data["event"]),
            source=data["from"],
            target=data["to"],
            entered=data["entered"],
            commands=[command_from_dict(c) for c in data["commands"]],
            note=data.get("note"),
            flow=data.get("flow"),
            moves=[(m[0], m[1], m[2], m[3]) for m in data.get("moves", ())],
        )


@dataclass(slots=True, eq=False)
class Session:
    """One call. Mutated only by the runtime core, one event at a time."""

    call_id: str
    flow: str
    flow_hash: str
    state: str = INIT
    vars: dict[str, Any] = field(default_factory=dict)
    call: dict[str, Any] = field(default_factory=dict)
    """What is known about the call: from, to, direction, sip_headers, room, session_id..."""
    legs: dict[str, str] = field(default_factory=dict)
    """Leg name -> Daily session id (``caller``, and each dial-out's ``leg``)."""
    attempt: int = 0
    """Attempt of the current collect or menu (1 = first)."""
    visits: dict[str, int] = field(default_factory=dict)
    timers: dict[str, Timer] = field(default_factory=dict)
    seq: int = 0
    """Events handled; the middle part of every command key."""
    steps: int = 0
    """States entered, counted against ``limits.max_steps``."""
    frames: list[Frame] = field(default_factory=list)
    scratch: dict[str, Any] = field(default_factory=dict)
    """What the current state keeps between events (digits so far, the command it awaits)."""
    started_at: float = 0.0
    caller_gone: bool = False
    """The caller's leg has left the room (hung up, or moved by a transfer or refer)."""
    hung_up: bool = False
    """The caller hung up and the call took the hangup path: it ends as ``caller_hangup``."""
    limit_fired: bool = False
    ended: bool = False
    outcome: str | None = None
    """How the call ended: hangup, caller_hangup, end, limit, error."""
    trace: list[TraceEntry] = field(default_factory=list)

    @property
    def root_flow(self) -> str:
        """The flow the call started on."""
        return self.frames[0].flow if self.frames else self.flow

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {
            "format": FORMAT,
            "call_id": self.call_id,
            "flow": self.flow,
            "flow_hash": self.flow_hash,
            "state": self.state,
            "vars": self.vars,
            "call": self.call,
            "legs": self.legs,
            "attempt": self.attempt,
            "visits": self.visits,
            "timers": [t.to_list() for t in self.timers.values()],
            "seq": self.seq,
            "steps": self.steps,
            "frames": [f.to_dict() for f in self.frames],
            "scratch": self.scratch,
            "started_at": self.started_at,
            "caller_gone": self.caller_gone,
            "hung_up": self.hung_up,
            "limit_fired": self.limit_fired,
            "ended": self.ended,
            "outcome": self.outcome,
            "trace": [t.to_dict() for t in self.trace],
        }

    def to_json(self) -> str:
        """The persisted form: compact JSON."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], flows: FlowSet) -> Session:
        """Rebuild a session, checking its flow versions and states exist.

        Raises:
            RestoreError: the format, a flow version or a state is unknown.
        """
        if data.get("format") != FORMAT:
            raise RestoreError(f"session format {data.get('format')!r} is not {FORMAT}")
        try:
            session = cls(
                call_id=data["call_id"],
                flow=data["flow"],
                flow_hash=data["flow_hash"],
                state=data["state"],
                vars=data["vars"],
                call=data["call"],
                legs=data["legs"],
                attempt=data["attempt"],
                visits=data["visits"],
                timers={t[0]: Timer(t[0], t[1], t[2], t[3]) for t in data["timers"]},
                seq=data["seq"],
                steps=data["steps"],
                frames=[Frame(**f) for f in data["frames"]],
                scratch=data["scratch"],
                started_at=data["started_at"],
                caller_gone=data["caller_gone"],
                hung_up=data["hung_up"],
                limit_fired=data["limit_fired"],
                ended=data["ended"],
                outcome=data["outcome"],
                trace=[TraceEntry.from_dict(t) for t in data["trace"]],
            )
        except (KeyError, TypeError, IndexError) as exc:
            raise RestoreError(f"the session record is incomplete: {exc!r}") from exc
        _check_position(flows, session.flow, session.flow_hash, session.state)
        for frame in session.frames:
            _check_position(flows, frame.flow, frame.flow_hash, frame.state)
        return session

    @classmethod
    def from_json(cls, text: str | bytes, flows: FlowSet) -> Session:
        """The inverse of ``to_json``.

        Raises:
            RestoreError: the text is not a session, or names a flow version or state that
                ``flows`` does not have.
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise RestoreError(f"the session record is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise RestoreError("the session record is not a JSON object")
        return cls.from_dict(data, flows)


def _check_position(flows: FlowSet, name: str, content_hash: str, state: str) -> None:
    flow = flows.version(content_hash)
    if flow is None or flow.name != name:
        raise RestoreError(
            f"flow {name!r} version {content_hash[:12]} is not loaded: "
            "load that version of the flow, or migrate the call"
        )
    if state not in flow.states and state not in (INIT, ENDED):
        raise RestoreError(f"flow {name!r} has no state {state!r}")
