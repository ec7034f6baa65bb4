"""Commands: what the runtime asks the outside world to do, as plain data.

The core never performs I/O; each event it handles returns a list of these. The async shell
hands them to a Telephony port (Daily's REST API, the in-room agent, the emulator, the offline
fake) and feeds the results back as ``command.ok`` / ``command.failed`` / ``play.done`` events.
``StartTimer`` and ``CancelTimer`` are *internal*: the shell keeps them for itself.

Every command has an idempotency ``key``: ``<call id>:<seq>:<index>``, where ``seq`` is the
number of the event that produced it and ``index`` its place in that event's list. Replaying a
persisted call produces the same keys, so an adapter that remembers keys never doubles a side
effect. Fields that Daily reads keep Daily's names in the JSON form (``sessionId``,
``toEndPoint``); the rest are snake_case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


def _daily(name: str) -> Any:
    """A field sent to Daily under ``name``, and ``None`` unless given."""
    return field(default=None, metadata={"json": name, "daily": True})


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """The base of every command."""

    kind: ClassVar[str] = "command"
    internal: ClassVar[bool] = False
    """True for commands the shell handles itself (timers)."""

    key: str
    call_id: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``{"type": kind, "key": ..., fields...}``; ``None`` fields left out."""
        out: dict[str, Any] = {"type": self.kind}
        for name, json_name, _ in _layout(type(self)):
            value = getattr(self, name)
            if value is not None:
                out[json_name] = value
        return out

    def daily_body(self) -> dict[str, Any]:
        """The JSON body of the Daily REST call this command stands for (Daily's field names)."""
        return {
            json_name: getattr(self, name)
            for name, json_name, daily in _layout(type(self))
            if daily and getattr(self, name) is not None
        }


_LAYOUTS: dict[type, tuple[tuple[str, str, bool], ...]] = {}


def _layout(cls: type) -> tuple[tuple[str, str, bool], ...]:
    """(attribute, JSON name, sent to Daily) per field; computed once per class."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = _LAYOUTS[cls] = tuple(
            (f.name, f.metadata.get("json", f.name), bool(f.metadata.get("daily")))
            for f in fields(cls)
        )
    return layout


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer(Command):
    """Connect the waiting caller to the call's room (``POST /dialin/pinlessCallUpdate``).

    For a pinless dial-in all three fields are known; an adapter for a call that is already
    in the room (SIP dial-in, the in-room agent) treats it as a no-op.
    """

    kind: ClassVar[str] = "answer"
    dialin_call_id: str | None = _daily("callId")
    call_domain: str | None = _daily("callDomain")
    sip_uri: str | None = _daily("sipUri")


@dataclass(frozen=True, slots=True, kw_only=True)
class Play(Command):
    """Play one prompt of the catalogue, resolved for the call's locale."""

    kind: ClassVar[str] = "play"
    prompt: str
    locale: str | None = None
    text: str | None = None
    audio: str | None = None
    barge_in: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Say(Command):
    """Speak a text (already rendered)."""

    kind: ClassVar[str] = "say"
    text: str
    voice: str | None = None
    locale: str | None = None
    barge_in: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class StopPlay(Command):
    """Stop the prompt that is playing (the caller barged in)."""

    kind: ClassVar[str] = "stop_play"


@dataclass(frozen=True, slots=True, kw_only=True)
class StartDialOut(Command):
    """``POST /rooms/:name/dialOut/start``; ``settings`` are in Daily's field names."""

    kind: ClassVar[str] = "start_dial_out"
    leg: str
    settings: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Settings are flattened into the JSON form, so they read like Daily's body."""
        head = {"type": self.kind, "key": self.key, "call_id": self.call_id, "leg": self.leg}
        return head | dict(self.settings)

    def daily_body(self) -> dict[str, Any]:
        """The settings."""
        return dict(self.settings)


@dataclass(frozen=True, slots=True, kw_only=True)
class StopDialOut(Command):
    """``POST /rooms/:name/dialOut/stop``."""

    kind: ClassVar[str] = "stop_dial_out"
    leg: str
    session_id: str | None = _daily("sessionId")


@dataclass(frozen=True, slots=True, kw_only=True)
class SendDtmf(Command):
    """``POST /rooms/:name/dialOut/sendDTMF``."""

    kind: ClassVar[str] = "send_dtmf"
    leg: str
    session_id: str | None = _daily("sessionId")
    tones: str | None = _daily("tones")
    method: str | None = _daily("method")
    digit_duration_ms: int | None = _daily("digitDurationMs")


@dataclass(frozen=True, slots=True, kw_only=True)
class SipCallTransfer(Command):
    """``POST /rooms/:name/sipCallTransfer``.

    For a transfer to a room, ``room`` names it; ``toEndPoint`` is its SIP URI when the
    runtime knows the domain's SIP host, else the adapter looks the room's endpoint up.
    """

    kind: ClassVar[str] = "sip_call_transfer"
    leg: str
    room: str | None = None
    session_id: str | None = _daily("sessionId")
    to_end_point: str | None = _daily("toEndPoint")
    caller_id: str | None = _daily("callerId")
    extension: str | None = _daily("extension")
    wait_before_extension_dial_sec: int | None = _daily("waitBeforeExtensionDialSec")


@dataclass(frozen=True, slots=True, kw_only=True)
class SipRefer(Command):
    """``POST /rooms/:name/sipRefer``: Daily leaves the call; no answered/completed follow."""

    kind: ClassVar[str] = "sip_refer"
    leg: str
    session_id: str | None = _daily("sessionId")
    to_end_point: str | None = _daily("toEndPoint")


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest(Command):
    """A request to a business system (its host already checked against ``allowed_hosts``)."""

    kind: ClassVar[str] = "http_request"
    method: str
    url: str
    params: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None
    timeout: float = 5.0
    attempt: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTimer(Command):
    """Internal: a timer of the call, due at the absolute time ``deadline``."""

    kind: ClassVar[str] = "start_timer"
    internal: ClassVar[bool] = True
    timer: str
    purpose: str
    seconds: float
    deadline: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelTimer(Command):
    """Internal: a timer is no longer wanted."""

    kind: ClassVar[str] = "cancel_timer"
    internal: ClassVar[bool] = True
    timer: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup(Command):
    """End the call: the caller's leg and whatever the call still holds."""

    kind: ClassVar[str] = "hangup"
    reason: str | None = None


COMMAND_TYPES: dict[str, type[Command]] = {
    cls.kind: cls
    for cls in (
        Answer,
        Play,
        Say,
        StopPlay,
        StartDialOut,
        StopDialOut,
        SendDtmf,
        SipCallTransfer,
        SipRefer,
        HttpRequest,
        StartTimer,
        CancelTimer,
        Hangup,
    )
}
"""Command classes by their JSON ``type``."""


def command_from_dict(data: Mapping[str, Any]) -> Command:
    """The inverse of ``Command.to_dict``.

    Raises:
        KeyError: the type is unknown.
    """
    cls = COMMAND_TYPES[str(data["type"])]
    names = {json_name: name for name, json_name, _ in _layout(cls)}
    if cls is StartDialOut:
        settings = {k: v for k, v in data.items() if k not in ("type", "key", "call_id", "leg")}
        return StartDialOut(
            key=data["key"], call_id=data["call_id"], leg=data["leg"], settings=settings
        )
    kwargs = {names[k]: v for k, v in data.items() if k in names}
    return cls(**kwargs)
