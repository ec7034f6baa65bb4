"""The flow model: frozen dataclasses that every later step reads. Pure data, no I/O.

Raw YAML becomes these classes in ``build.py`` only; nothing after it sees an untyped dict.
Each action kind documents its outcomes in ``outcomes()``; the checks, the compiler and the
docs all read that one table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from .errors import Location

DAILY_EVENTS = (
    "dialin.ready",
    "dialin.connected",
    "dialin.stopped",
    "dialin.warning",
    "dialin.error",
    "dialout.connected",
    "dialout.answered",
    "dialout.stopped",
    "dialout.warning",
    "dialout.error",
    "calltransfer.triggered",
    "calltransfer.initiated",
    "calltransfer.answered",
    "calltransfer.completed",
    "participant.joined",
    "participant.left",
    "app-message",
)
"""Daily event names a state or the flow may route on."""

STATE_KEYS = ("hangup", "error", "max_visits")
"""Outcomes every state may route on besides its action's own."""

FLOW_KEYS = ("hangup", "error", "limit")
"""Keys of the flow-wide ``on``."""

FINAL_KINDS = frozenset({"hangup", "end", "return"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """Answer a pinless dial-in."""

    timeout: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Play:
    """Play a prompt of the catalogue."""

    prompts: tuple[str, ...]
    barge_in: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Say:
    """Speak a text (may hold templates)."""

    text: str
    voice: str | None = None
    locale: str | None = None
    barge_in: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Collect:
    """Collect digits into a variable."""

    prompts: tuple[str, ...]
    into: str
    min_digits: int = 1
    max_digits: int
    terminator: str = "#"
    first_digit: float = 5.0
    inter_digit: float = 3.0
    total: float | None = None
    pattern: str | None = None
    attempts: int = 3
    no_input_prompts: tuple[str, ...] = ()
    no_match_prompts: tuple[str, ...] = ()
    barge_in: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Menu:
    """A one-key menu: each key goes straight to a state."""

    prompts: tuple[str, ...]
    options: MappingProxyType[str, Route]
    timeout: float = 5.0
    attempts: int = 3
    no_input_prompts: tuple[str, ...] = ()
    no_match_prompts: tuple[str, ...] = ()
    into: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SendDtmf:
    """Send tones on a dial-out leg."""

    tones: str
    leg: str = "dialout"
    method: Literal["telephone-event", "sip-info", "auto"] = "auto"
    digit_duration_ms: int = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class DialOut:
    """Start a dial-out leg."""

    to: str
    leg: str = "dialout"
    display_name: str | None = None
    caller_id: str | None = None
    user_id: str | None = None
    video: bool = False
    codecs: MappingProxyType[str, tuple[str, ...]] | None = None
    extension: str | None = None
    wait_before_extension: float = 0.0
    timeout: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class StopDialOut:
    """Hang up a dial-out leg."""

    leg: str = "dialout"


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    """sipCallTransfer a leg to a room, a SIP URI or a number."""

    target_kind: Literal["room", "sip", "phone"]
    target: str
    leg: str = "caller"
    caller_id: str | None = None
    extension: str | None = None
    wait_before_extension: float = 0.0
    timeout: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Refer:
    """sipRefer a SIP leg out of Daily."""

    to: str
    leg: str = "caller"
    timeout: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Wait:
    """Wait for a time, or for events."""

    duration: float | None = None
    events: tuple[str, ...] = ()
    timeout: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One branch of ``choose``."""

    condition: str
    target: str
    location: Location


@dataclass(frozen=True, slots=True, kw_only=True)
class Choose:
    """Branch on conditions."""

    cases: tuple[Case, ...]
    otherwise: Route


@dataclass(frozen=True, slots=True, kw_only=True)
class SetVars:
    """Assign variables."""

    values: MappingProxyType[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Http:
    """Call a business system."""

    method: str = "GET"
    url: str
    headers: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))
    query: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))
    body: Any = None
    timeout: float = 5.0
    retries: int = 0
    backoff: float = 0.5
    save: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """Branch on opening hours in a time zone."""

    timezone: str | None
    hours: MappingProxyType[int, tuple[tuple[int, int], ...]]
    """Weekday (0 = Monday) -> opening intervals in minutes since midnight."""
    holidays: frozenset[str] = frozenset()
    override: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallFlow:
    """Run a sub-flow and come back."""

    flow: str
    inputs: MappingProxyType[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    outputs: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True, kw_only=True)
class Return:
    """End a sub-flow with an outcome."""

    outcome: str = "done"


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup:
    """Hang up the call."""

    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class End:
    """End the flow without hanging up."""


Action = (
    Answer
    | Play
    | Say
    | Collect
    | Menu
    | SendDtmf
    | DialOut
    | StopDialOut
    | Transfer
    | Refer
    | Wait
    | Choose
    | SetVars
    | Http
    | Schedule
    | CallFlow
    | Return
    | Hangup
    | End
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """An edge: on ``key`` (an outcome or event), go to ``target``."""

    key: str
    target: str
    location: Location


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    """One state of a flow."""

    name: str
    kind: str
    action: Action
    routes: MappingProxyType[str, Route]
    location: Location
    max_visits: int | None = None
    description: str | None = None

    @property
    def final(self) -> bool:
        """True for states that end the flow (hangup, end, return)."""
        return self.kind in FINAL_KINDS


@dataclass(frozen=True, slots=True, kw_only=True)
class Var:
    """A declared variable (or sub-flow input)."""

    name: str
    type: str
    default: Any
    location: Location


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptText:
    """One locale of a prompt."""

    text: str | None = None
    audio: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Prompt:
    """A catalogue entry: one rendering per locale."""

    id: str
    locales: MappingProxyType[str, PromptText]
    location: Location


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """Which inbound calls start a flow."""

    dialin: tuple[str, ...] = ()
    sip_uri: tuple[str, ...] = ()
    sip_headers: MappingProxyType[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Runaway guards."""

    max_steps: int = 1000
    max_duration: float = 4 * 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Flow:
    """A whole flow, built from one file."""

    name: str
    file: str
    content_hash: str
    start: str
    start_location: Location
    states: MappingProxyType[str, State]
    description: str | None = None
    locale: str = "en-US"
    locales: tuple[str, ...] = ()
    vars: MappingProxyType[str, Var] = field(default_factory=lambda: MappingProxyType({}))
    inputs: MappingProxyType[str, Var] = field(default_factory=lambda: MappingProxyType({}))
    outputs: tuple[str, ...] = ()
    prompts: MappingProxyType[str, Prompt] = field(default_factory=lambda: MappingProxyType({}))
    match: Match = field(default_factory=Match)
    limits: Limits = field(default_factory=Limits)
    handlers: MappingProxyType[str, Route] = field(default_factory=lambda: MappingProxyType({}))
    allowed_hosts: tuple[str, ...] = ()


def outcomes(state: State) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The (success, failure) outcomes a state's action can produce.

    A failure outcome with no route of its own goes to the flow's ``error`` handler.
    """
    action = state.action
    match action:
        case Answer():
            return ("answered",), ("failed",)
        case Play() | Say() | SetVars():
            return ("done",), ()
        case Collect():
            return ("ok",), ("no_input", "no_match", "max_attempts")
        case Menu():
            return (), ("no_input", "no_match", "max_attempts")
        case SendDtmf():
            return ("sent",), ("failed",)
        case DialOut():
            return ("answered",), ("no_answer", "busy", "failed")
        case StopDialOut():
            return ("done",), ("failed",)
        case Transfer():
            return ("answered",), ("failed",)
        case Refer():
            return ("accepted",), ("failed",)
        case Wait(duration=float()):
            return ("done",), ()
        case Wait():
            return action.events, (("timeout",) if action.timeout is not None else ())
        case Http():
            return ("ok",), ("error", "timeout")
        case Schedule():
            return ("open", "closed", "holiday"), ()
        case CallFlow():
            return (), ()  # the sub-flow's return outcomes; resolved by the checks
        case _:
            return (), ()


def targets(state: State) -> list[tuple[str, str, Location]]:
    """Every (key, target, location) edge leaving a state, inline ones included."""
    edges = [(r.key, r.target, r.location) for r in state.routes.values()]
    action = state.action
    if isinstance(action, Menu):
        edges += [(f"option {k}", r.target, r.location) for k, r in action.options.items()]
    elif isinstance(action, Choose):
        edges += [(f"when {c.condition}", c.target, c.location) for c in action.cases]
        edges.append(("otherwise", action.otherwise.target, action.otherwise.location))
    return edges
