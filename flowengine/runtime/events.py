"""The runtime's event vocabulary: everything that can happen to a call, in one normalised form.

Events come in from three places: Daily's webhooks (``dialin.connected``), the in-room agent
(``dtmf``, ``dialin-ready`` spelled with a dash by daily-python) and the engine itself
(``start``, ``timer``, command results). Whatever the source, the runtime sees an ``Event``:
a dotted lower-case name, a JSON-like payload, and optionally the name of the leg it concerns.

How Daily's events become outcomes, per state kind (docs/runtime.md has the full table):

================================  ==========================================================
event                             outcome
================================  ==========================================================
``dialin.connected``              answer: ``answered`` (the caller leg's session id is kept)
``dialin.error``                  answer: ``failed``
``dialout.answered`` (its leg)    dial_out: ``answered``
``dialout.error|stopped``         dial_out before answer: ``busy`` when the error text says
                                  busy (``is_busy``), else ``failed``
ring timer                        dial_out: ``no_answer``, and a ``StopDialOut`` command
``calltransfer.answered``         transfer: ``answered``
``calltransfer.completed``        transfer before ``answered``: ``failed``
``calltransfer.initiated``        refer (``is_sip_refer`` true or absent): ``accepted``
``command.failed`` (its command)  answer, send_dtmf, stop_dial_out, transfer, refer:
                                  ``failed``; dial_out: ``busy``/``failed``; http: retried,
                                  then ``timeout`` or ``error``
``command.ok`` (its command)      send_dtmf: ``sent``; stop_dial_out: ``done``; http:
                                  ``ok`` for a 2xx status
``play.done`` (its prompt)        play/say: ``done`` after the last prompt; collect/menu:
                                  the digit timers start
``dtmf``                          collect/menu: digits (see docs/runtime.md)
``dialin.stopped``,               the caller hung up: the state's ``hangup`` route, else the
``participant.left`` (caller),    flow's ``hangup`` handler, else the call ends; except while
``hangup``                        a transfer or refer moves that leg out of the room
any listed event                  wait: the event's name
================================  ==========================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..model import DAILY_EVENTS

START = "start"
HANGUP = "hangup"
TIMER = "timer"
COMMAND_OK = "command.ok"
COMMAND_FAILED = "command.failed"
PLAY_DONE = "play.done"
DTMF = "dtmf"
FAULT = "fault"
"""Something went wrong inside the current state (reported by an adapter or a test): the
call takes the state's error path, as when one of its templates fails."""

ENGINE_EVENTS = (START, HANGUP, TIMER, COMMAND_OK, COMMAND_FAILED, PLAY_DONE)
"""Events the engine makes itself."""

EVENT_NAMES = (*DAILY_EVENTS, DTMF, *ENGINE_EVENTS, FAULT)
"""Every event name the runtime understands; others are recorded and ignored."""

CALLER_GONE = frozenset({"dialin.stopped", "participant.left", HANGUP})
"""Events that end the caller's leg when they concern it."""

_AGENT_NAMES = {"dtmf-event": DTMF, "dtmf_event": DTMF}
_BUSY_CODES = re.compile(r"\b(486|600)\b")
_REASON_FIELDS = ("error_msg", "errorMsg", "message", "reason", "error", "status", "sip_code")


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to a call."""

    name: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    leg: str | None = None
    """The leg the event concerns, by name (``caller``, a dial-out's ``leg``), when known."""

    @property
    def session_id(self) -> str | None:
        """Daily's session id of the leg, from the payload (either spelling)."""
        value = self.payload.get("session_id", self.payload.get("sessionId"))
        return value if isinstance(value, str) else None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in traces."""
        out: dict[str, Any] = {"name": self.name, "payload": dict(self.payload)}
        if self.leg is not None:
            out["leg"] = self.leg
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """The inverse of ``to_dict``."""
        return cls(str(data["name"]), dict(data.get("payload") or {}), data.get("leg"))


def normalise_name(name: str) -> str:
    """Daily's event name in the runtime's spelling: ``dialin-connected`` -> ``dialin.connected``.

    daily-python's ``dtmf-event`` becomes ``dtmf``; ``app-message`` keeps its dash.
    """
    if name in _AGENT_NAMES:
        return _AGENT_NAMES[name]
    if name == "app-message" or "." in name:
        return name
    head, sep, tail = name.partition("-")
    return (
        f"{head}.{tail}"
        if sep and head in ("dialin", "dialout", "calltransfer", "participant")
        else name
    )


def from_webhook(envelope: Mapping[str, Any]) -> Event:
    """An event from a Daily webhook envelope ``{type, id, payload, event_ts}``."""
    return Event(normalise_name(str(envelope.get("type", ""))), dict(envelope.get("payload") or {}))


def start() -> Event:
    """The event that runs the flow's first state."""
    return Event(START)


def hangup() -> Event:
    """The caller's leg ended (when the source does not say which Daily event it was)."""
    return Event(HANGUP)


def dtmf(tone: str, session_id: str | None = None) -> Event:
    """One key pressed by the caller."""
    payload: dict[str, Any] = {"tone": tone}
    if session_id is not None:
        payload["session_id"] = session_id
    return Event(DTMF, payload)


def timer(timer_id: str, purpose: str) -> Event:
    """A timer of the call came due."""
    return Event(TIMER, {"id": timer_id, "purpose": purpose})


def command_ok(
    key: str, command: str, data: Mapping[str, Any] | None = None, *, leg: str | None = None
) -> Event:
    """A command succeeded; ``data`` is what the far end answered (e.g. a ``sessionId``)."""
    payload: dict[str, Any] = {"key": key, "command": command, "data": dict(data or {})}
    if leg is not None:
        payload["leg"] = leg
    return Event(COMMAND_OK, payload)


def command_failed(
    key: str,
    command: str,
    error: str,
    data: Mapping[str, Any] | None = None,
    *,
    leg: str | None = None,
) -> Event:
    """A command failed; ``error`` says why (``timeout`` for an HTTP request that timed out)."""
    payload: dict[str, Any] = {"key": key, "command": command, "error": error}
    payload["data"] = dict(data or {})
    if leg is not None:
        payload["leg"] = leg
    return Event(COMMAND_FAILED, payload)


def play_done(key: str | None = None) -> Event:
    """A prompt finished playing (``key``: the ``Play``/``Say`` command's key, when known)."""
    return Event(PLAY_DONE, {"key": key} if key else {})


def is_busy(payload: Mapping[str, Any]) -> bool:
    """True when a dial-out failure means the far end was busy.

    The rule: any of the reason fields (``error_msg``, ``message``, ``reason``, ``error``,
    ``status``, ``sip_code``; nested ``data`` too) contains the word ``busy`` in any case, or
    the SIP status 486 (Busy Here) or 600 (Busy Everywhere). Everything else is ``failed``.
    """
    texts = [str(payload.get(k, "")) for k in _REASON_FIELDS]
    data = payload.get("data")
    if isinstance(data, Mapping):
        texts += [str(data.get(k, "")) for k in _REASON_FIELDS]
    text = " ".join(texts)
    return "busy" in text.lower() or bool(_BUSY_CODES.search(text))
