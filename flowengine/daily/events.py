"""Typed forms of what Daily POSTs to us: webhook envelopes and pinless dial-in requests.

Runs after ``webhooks.py`` has verified the signature. Required fields that are missing or of
the wrong type raise ``WebhookPayloadError`` naming the field; optional fields that are
malformed become ``None``, because refusing an authentic event only makes Daily retry it and,
under its default circuit-breaker policy, stop sending webhooks after three failures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from flowengine.daily.errors import WebhookPayloadError

MILLISECONDS_FROM = 1e11
"""Daily's timestamps may be seconds or milliseconds (undocumented). No time in seconds
reaches 1e11 before the year 5000, and every time in milliseconds after 1973 does."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookEvent:
    """One Daily webhook: ``{version, type, id, payload, event_ts}`` with the fields we route by.

    ``id`` is the idempotency key for deduplication; ``room`` and ``session_id`` (from the
    payload) route the event to a call; ``timestamp`` is when the event happened and
    ``event_ts`` when Daily sent it, both in Unix seconds.
    """

    type: str
    id: str
    payload: Mapping[str, object]
    version: str | None = None
    event_ts: float | None = None
    room: str | None = None
    session_id: str | None = None
    timestamp: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PinlessCall:
    """A call waiting on hold: route it with ``pinlessCallUpdate(call_id, call_domain, ...)``."""

    to: str
    """The number (or SIP URI) the caller dialled: picks the flow."""
    from_: str | None
    """The caller, when the network gives one."""
    call_id: str
    call_domain: str
    sip_headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True, kw_only=True)
class PinlessTest:
    """Daily checking that the endpoint answers (answer 200, start nothing)."""

    to: str | None = None


PinlessRequest = PinlessCall | PinlessTest


def _load_object(body: bytes | str) -> dict[str, object]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookPayloadError(None, "body is not valid JSON") from None
    if not isinstance(data, dict):
        raise WebhookPayloadError(None, "body is not a JSON object")
    return data


def _required_str(data: Mapping[str, object], key: str, where: str = "") -> str:
    value = data.get(key)
    if value is None:
        raise WebhookPayloadError(f"{where}{key}", "is missing")
    if not isinstance(value, str) or not value.strip():
        raise WebhookPayloadError(f"{where}{key}", "must be a non-empty string")
    return value


def _optional_str(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def parse_time(value: object) -> float | None:
    """Unix seconds from an int, a float or a numeric string (seconds or milliseconds)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds / 1000.0 if seconds >= MILLISECONDS_FROM else seconds


def parse_event(body: bytes | str) -> WebhookEvent:
    """The ``WebhookEvent`` in a verified webhook body.

    Raises:
        WebhookPayloadError: the body is not a JSON object, or ``type``, ``id`` or
            ``payload`` is missing or invalid (the error names the field).
    """
    data = _load_object(body)
    event_type = _required_str(data, "type")
    event_id = _required_str(data, "id")
    payload = data.get("payload")
    if payload is None:
        raise WebhookPayloadError("payload", "is missing")
    if not isinstance(payload, dict):
        raise WebhookPayloadError("payload", "must be a JSON object")
    return WebhookEvent(
        type=event_type,
        id=event_id,
        payload=MappingProxyType(payload),
        version=_optional_str(data, "version"),
        event_ts=parse_time(data.get("event_ts")),
        room=_optional_str(payload, "room"),
        session_id=_optional_str(payload, "session_id"),
        timestamp=parse_time(payload.get("timestamp")),
    )


def parse_pinless(body: bytes | str) -> PinlessRequest:
    """A pinless dial-in request, or the test Daily sends while the dial-in is configured.

    Tests are ``{"test": "test"}``, ``{"Test": "test"}`` (Daily's examples) and a body with
    only ``To`` (Daily's configuration docs); answer them 200.

    Raises:
        WebhookPayloadError: ``To``, ``callId`` or ``callDomain`` is missing or invalid, or
            ``sipHeaders`` is not an object.
    """
    data = _load_object(body)
    if data in ({"test": "test"}, {"Test": "test"}):
        return PinlessTest()
    if set(data) == {"To"}:
        to = data["To"]
        return PinlessTest(to=to if isinstance(to, str) else None)
    to = _required_str(data, "To")
    call_id = _required_str(data, "callId")
    call_domain = _required_str(data, "callDomain")
    raw_headers = data.get("sipHeaders")
    if raw_headers is None:
        raw_headers = {}
    if not isinstance(raw_headers, dict):
        raise WebhookPayloadError("sipHeaders", "must be a JSON object")
    headers = {
        str(name): value if isinstance(value, str) else json.dumps(value)
        for name, value in raw_headers.items()
    }
    return PinlessCall(
        to=to,
        from_=_optional_str(data, "From"),
        call_id=call_id,
        call_domain=call_domain,
        sip_headers=MappingProxyType(headers),
    )
