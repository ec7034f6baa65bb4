"""The room's events, as the runtime's: daily-python handler calls become ``Event`` objects.

Two layers. The functions turn one handler call's arguments into an ``Event`` (or None),
pure and thread-agnostic: daily-python's camelCase payload keys become the webhook's
snake_case (``sessionId`` -> ``session_id``, ``sipFrom`` -> ``sip_from``), an error event's
``message`` is also given as the webhook's ``error_msg``, and a participant is described with
the fields of the ``participant.*`` webhooks. ``EventBridge`` carries the ``EventHandler``
method names; daily-python calls them on its own threads, so each one only converts its
arguments and hands the event to the asyncio loop with ``loop.call_soon_threadsafe``. What
happens next (session bookkeeping, ``Engine.post``) runs on the loop, in arrival order.

DTMF tones are checked here, not trusted: ``0-9 * # A-D`` pass (upper-cased), anything else
is dropped with a warning, so a surprising tone never raises in a daily-python thread.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from typing import Any

import structlog

from flowengine.runtime.events import DTMF, Event

log = structlog.get_logger(__name__)

TONES = frozenset("0123456789*#ABCD")
"""The DTMF keys a caller can send (A-D exist on some keypads and in RFC 4733)."""

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake(key: str) -> str:
    """``sessionId`` -> ``session_id``; keys already in snake_case stay as they are."""
    return _CAMEL.sub("_", key).lower()


def snake_payload(data: Any) -> dict[str, Any]:
    """A daily-python event mapping with its top-level keys in the webhooks' spelling.

    Nested values (``sipHeaders``) are kept as they came: header names are not ours to change.
    """
    if not isinstance(data, Mapping):
        return {"value": data} if data is not None else {}
    return {snake(str(k)): v for k, v in data.items()}


def telephony_event(name: str, data: Any) -> Event:
    """A ``dialin.*`` / ``dialout.*`` event from its daily-python payload."""
    payload = snake_payload(data)
    if name.endswith(".error") and "error_msg" not in payload and "message" in payload:
        payload["error_msg"] = payload["message"]
    return Event(name, payload)


def dialin_ready(sip_endpoint: Any) -> Event:
    """``dialin.ready``: daily-python passes only the room's SIP endpoint."""
    return Event("dialin.ready", {"sip_endpoint": str(sip_endpoint)})


def dtmf_event(data: Any) -> Event | None:
    """A ``dtmf`` event for one key, or None (logged) when the tone is not a DTMF key."""
    payload = snake_payload(data)
    raw = payload.get("tone")
    tone = raw.strip().upper() if isinstance(raw, str) else None
    if tone is None or len(tone) != 1 or tone not in TONES:
        log.warning("participant.dtmf_dropped", tone=repr(raw), reason="not a DTMF key")
        return None
    payload["tone"] = tone
    return Event(DTMF, payload)


def participant_event(name: str, participant: Any, reason: str | None = None) -> Event | None:
    """``participant.joined`` / ``participant.left`` in the webhook's fields; None for ourself."""
    if not isinstance(participant, Mapping):
        return None
    info = participant.get("info")
    info = info if isinstance(info, Mapping) else {}
    if info.get("isLocal"):
        return None  # the participant's own comings and goings are not the call's events
    payload: dict[str, Any] = {
        "session_id": participant.get("id"),
        "user_id": info.get("userId"),
        "user_name": info.get("userName"),
        "owner": bool(info.get("isOwner", False)),
        "joined_at": info.get("joinedAt"),
    }
    if reason is not None:
        payload["reason"] = reason
    return Event(name, {k: v for k, v in payload.items() if v is not None})


def app_message(message: Any, sender: Any) -> Event:
    """``app-message``: what a room participant (or the REST API) sent, and from whom."""
    return Event("app-message", {"data": message, "from_id": sender})


class EventBridge:
    """daily-python's ``EventHandler`` methods, each one handing an ``Event`` to the loop.

    Args:
        loop: the asyncio loop that owns the engine.
        deliver: called on ``loop`` with each event, in the order daily-python raised them.
        room: named in log lines.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[Event], None],
        *,
        room: str = "",
    ) -> None:
        self._loop = loop
        self._deliver = deliver
        self._room = room

    def _send(self, event: Event | None) -> None:
        if event is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._deliver, event)
        except RuntimeError:
            # The loop has closed: the daemon is shutting down and nobody can take the event.
            log.warning("participant.event_after_close", event=event.name, room=self._room)

    def on_dtmf_event(self, data: Mapping[str, Any]) -> None:
        """A caller pressed a key (``dtmf-event``)."""
        self._send(dtmf_event(data))

    def on_dialin_ready(self, sip_endpoint: str) -> None:
        """The room's SIP endpoint can take the call (``dialin-ready``)."""
        self._send(dialin_ready(sip_endpoint))

    def on_dialin_connected(self, data: Mapping[str, Any]) -> None:
        """The caller is in the room."""
        self._send(telephony_event("dialin.connected", data))

    def on_dialin_stopped(self, data: Mapping[str, Any]) -> None:
        """The caller's leg ended."""
        self._send(telephony_event("dialin.stopped", data))

    def on_dialin_error(self, data: Mapping[str, Any]) -> None:
        """The dial-in failed."""
        self._send(telephony_event("dialin.error", data))

    def on_dialin_warning(self, data: Mapping[str, Any]) -> None:
        """Something non-fatal happened to the dial-in."""
        self._send(telephony_event("dialin.warning", data))

    def on_dialout_connected(self, data: Mapping[str, Any]) -> None:
        """A dial-out is ringing."""
        self._send(telephony_event("dialout.connected", data))

    def on_dialout_answered(self, data: Mapping[str, Any]) -> None:
        """A dial-out was answered."""
        self._send(telephony_event("dialout.answered", data))

    def on_dialout_stopped(self, data: Mapping[str, Any]) -> None:
        """A dial-out ended."""
        self._send(telephony_event("dialout.stopped", data))

    def on_dialout_error(self, data: Mapping[str, Any]) -> None:
        """A dial-out failed."""
        self._send(telephony_event("dialout.error", data))

    def on_dialout_warning(self, data: Mapping[str, Any]) -> None:
        """Something non-fatal happened to a dial-out."""
        self._send(telephony_event("dialout.warning", data))

    def on_participant_joined(self, participant: Mapping[str, Any]) -> None:
        """Someone (a phone leg, an agent) joined the room."""
        self._send(participant_event("participant.joined", participant))

    def on_participant_left(self, participant: Mapping[str, Any], reason: str) -> None:
        """Someone left the room (``reason``: ``leftCall`` or ``hidden``)."""
        self._send(participant_event("participant.left", participant, reason))

    def on_app_message(self, message: Any, sender: str) -> None:
        """A message from a participant or the REST API."""
        self._send(app_message(message, sender))

    def on_call_state_updated(self, state: str) -> None:
        """The participant's own connection state (``joining``, ``joined``, ``left``)."""
        log.info("participant.call_state", state=state, room=self._room)

    def on_error(self, message: str) -> None:
        """daily-python reports an error of the connection itself."""
        log.error("participant.client_error", error=message, room=self._room)
