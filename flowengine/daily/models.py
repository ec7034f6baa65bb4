"""Typed requests to Daily's REST API and the responses flowengine reads back.

Each request dataclass checks its fields when it is built (raising ``DailyRequestError``, so
nothing invalid is ever sent) and renders Daily's exact JSON body with ``to_json()``; the
client, the local emulator and the tests share them. Field names on the wire are Daily's own
(camelCase for telephony, snake_case for rooms and tokens); sources are in docs/daily.md.
Sits under ``client.py``; depends only on ``errors.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from flowengine.daily.errors import DailyRequestError

DtmfMethod = Literal["sip-info", "telephone-event", "auto"]
Privacy = Literal["private", "public"]

AUDIO_CODECS = frozenset({"OPUS", "G722", "PCMU", "PCMA"})
VIDEO_CODECS = frozenset({"H264", "VP8"})

# Room names go into URL paths: anything outside Daily's room-name alphabet is refused, so a
# name can never add a path segment or a query.
_ROOM_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_SIP_URI = re.compile(r"sips?:[^\s@]+@[^\s@]+|sips?:[^\s@]+")
_TONES = re.compile(r"[0-9A-D#*]{1,20}")
_EXTENSION = re.compile(r"[0-9A-D#*,wW]{1,20}")

JSONObject = dict[str, object]


def check_room_name(name: str) -> str:
    """``name`` if it is a valid Daily room name, else ``DailyRequestError``."""
    if not _ROOM_NAME.fullmatch(name):
        raise DailyRequestError("room", "a room name is 1-128 of A-Z a-z 0-9 - _")
    return name


def _require(value: str, what: str) -> None:
    if not value or value != value.strip():
        raise DailyRequestError(what, "must be a non-empty string without surrounding spaces")


def _check_sip_uri(value: str, what: str) -> None:
    if not _SIP_URI.fullmatch(value):
        raise DailyRequestError(what, "must be a SIP URI starting with sip: or sips:")


def _check_phone(value: str, what: str) -> None:
    if not _E164.fullmatch(value):
        raise DailyRequestError(what, "must be an E.164 number such as +14155550100")


def _check_extension(extension: str | None, wait: int | None) -> None:
    if extension is not None and not _EXTENSION.fullmatch(extension):
        raise DailyRequestError("extension", "must be 1-20 of 0-9 A-D # * , w")
    if wait is not None and not 0 <= wait <= 60:
        raise DailyRequestError("waitBeforeExtensionDialSec", "must be 0..60 seconds")


def _put(body: JSONObject, key: str, value: object) -> None:
    """Set ``key`` only when it has a value, so Daily applies its own defaults."""
    if value is not None:
        body[key] = value


@dataclass(frozen=True, slots=True, kw_only=True)
class Codecs:
    """Codec preference, first entry preferred: ``{"audio": [...], "video": [...]}``."""

    audio: tuple[str, ...] = ()
    video: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if unknown := set(self.audio) - AUDIO_CODECS:
            raise DailyRequestError("codecs.audio", f"unknown codec {sorted(unknown)[0]!r}")
        if unknown := set(self.video) - VIDEO_CODECS:
            raise DailyRequestError("codecs.video", f"unknown codec {sorted(unknown)[0]!r}")

    def to_json(self) -> JSONObject:
        """Daily's ``codecs`` object, without empty lists."""
        body: JSONObject = {}
        if self.audio:
            body["audio"] = list(self.audio)
        if self.video:
            body["video"] = list(self.video)
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class SipConfig:
    """A room's ``sip`` property: makes the room reachable by SIP dial-in (pinless)."""

    display_name: str = "sw-sip-dialin"
    video: bool = False
    sip_mode: Literal["dial-in"] = "dial-in"
    num_endpoints: int = 1
    codecs: Codecs | None = None
    provider: str | None = None

    def __post_init__(self) -> None:
        _require(self.display_name, "sip.display_name")
        if self.num_endpoints < 1:
            raise DailyRequestError("sip.num_endpoints", "must be at least 1")

    def to_json(self) -> JSONObject:
        """Daily's ``sip`` room property."""
        body: JSONObject = {
            "display_name": self.display_name,
            "video": self.video,
            "sip_mode": self.sip_mode,
            "num_endpoints": self.num_endpoints,
        }
        _put(body, "codecs", self.codecs.to_json() if self.codecs else None)
        _put(body, "provider", self.provider)
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomSpec:
    """``POST /rooms``: a room for one call.

    Give it a name (derived from the callId) when you can: a create repeated after a lost
    answer then finds the room instead of making a second one.
    """

    name: str | None = None
    privacy: Privacy = "private"
    exp: int | None = None
    """Unix time (seconds) at which the room expires; Daily wants < 365 days for PSTN."""
    eject_at_room_exp: bool = False
    enable_dialout: bool = False
    sip: SipConfig | None = None

    def __post_init__(self) -> None:
        if self.name is not None:
            check_room_name(self.name)
        if self.exp is not None and self.exp <= 0:
            raise DailyRequestError("exp", "must be a Unix time in seconds")

    def to_json(self) -> JSONObject:
        """Daily's create-room body: ``{name, privacy, properties}``."""
        properties: JSONObject = {}
        _put(properties, "exp", self.exp)
        if self.eject_at_room_exp:
            properties["eject_at_room_exp"] = True
        if self.enable_dialout:
            properties["enable_dialout"] = True
        _put(properties, "sip", self.sip.to_json() if self.sip else None)
        body: JSONObject = {"privacy": self.privacy, "properties": properties}
        _put(body, "name", self.name)
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class Room:
    """A room as Daily describes it; ``sip_endpoint`` is the URI to route a dial-in to."""

    name: str
    url: str
    id: str | None = None
    privacy: str | None = None
    sip_endpoint: str | None = None
    extra_sip_endpoints: tuple[str, ...] = ()
    config: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class MeetingTokenSpec:
    """``POST /meeting-tokens``: a token for the bot; ``is_owner`` lets it start dial-outs."""

    room_name: str
    is_owner: bool = True
    exp: int | None = None
    user_name: str | None = None
    eject_at_token_exp: bool = False

    def __post_init__(self) -> None:
        check_room_name(self.room_name)

    def to_json(self) -> JSONObject:
        """Daily's create-token body: ``{properties: {...}}``."""
        properties: JSONObject = {"room_name": self.room_name, "is_owner": self.is_owner}
        _put(properties, "exp", self.exp)
        _put(properties, "user_name", self.user_name)
        if self.eject_at_token_exp:
            properties["eject_at_token_exp"] = True
        return {"properties": properties}


DIAL_OUT_FIELDS: dict[str, str] = {
    "sipUri": "sip_uri",
    "phoneNumber": "phone_number",
    "displayName": "display_name",
    "userId": "user_id",
    "callerId": "caller_id",
    "video": "video",
    "extension": "extension",
    "waitBeforeExtensionDialSec": "wait_before_extension_dial_sec",
}
"""Daily's dial-out body fields (camelCase) -> ``DialOutRequest``'s (codecs aside)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DialOutRequest:
    """``POST /rooms/:name/dialOut/start``: call a SIP URI or a phone number into the room."""

    sip_uri: str | None = None
    phone_number: str | None = None
    display_name: str | None = None
    user_id: str | None = None
    caller_id: str | None = None
    """The id (a UUID) of a purchased Daily number, not the number itself."""
    video: bool | None = None
    codecs: Codecs | None = None
    extension: str | None = None
    wait_before_extension_dial_sec: int | None = None

    def __post_init__(self) -> None:
        if (self.sip_uri is None) == (self.phone_number is None):
            raise DailyRequestError("sipUri/phoneNumber", "give exactly one of the two")
        if self.sip_uri is not None:
            _check_sip_uri(self.sip_uri, "sipUri")
        if self.phone_number is not None:
            _check_phone(self.phone_number, "phoneNumber")
            if self.video:
                raise DailyRequestError("video", "video is for SIP dial-out only")
        if self.user_id is not None and not 0 < len(self.user_id) <= 36:
            raise DailyRequestError("userId", "must be 1-36 characters")
        if self.caller_id is not None:
            _require(self.caller_id, "callerId")
        _check_extension(self.extension, self.wait_before_extension_dial_sec)

    @classmethod
    def to(
        cls,
        target: str,
        *,
        display_name: str | None = None,
        user_id: str | None = None,
        caller_id: str | None = None,
        video: bool | None = None,
        codecs: Codecs | None = None,
        extension: str | None = None,
        wait_before_extension_dial_sec: int | None = None,
    ) -> DialOutRequest:
        """A dial-out to ``target``: a ``sip:``/``sips:`` URI, otherwise an E.164 number."""
        is_sip = target.startswith(("sip:", "sips:"))
        return cls(
            sip_uri=target if is_sip else None,
            phone_number=None if is_sip else target,
            display_name=display_name,
            user_id=user_id,
            caller_id=caller_id,
            video=video,
            codecs=codecs,
            extension=extension,
            wait_before_extension_dial_sec=wait_before_extension_dial_sec,
        )

    def to_json(self) -> JSONObject:
        """Daily's dial-out body, camelCase, unset fields left to Daily's defaults."""
        body: JSONObject = {}
        _put(body, "sipUri", self.sip_uri)
        _put(body, "phoneNumber", self.phone_number)
        _put(body, "displayName", self.display_name)
        _put(body, "userId", self.user_id)
        _put(body, "callerId", self.caller_id)
        _put(body, "video", self.video)
        _put(body, "codecs", self.codecs.to_json() if self.codecs else None)
        _put(body, "extension", self.extension)
        _put(body, "waitBeforeExtensionDialSec", self.wait_before_extension_dial_sec)
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class SendDtmfRequest:
    """``POST /rooms/:name/dialOut/sendDTMF``: play tones into a telephony session."""

    session_id: str
    tones: str
    method: DtmfMethod | None = None
    digit_duration_ms: int | None = None

    def __post_init__(self) -> None:
        _require(self.session_id, "sessionId")
        if not _TONES.fullmatch(self.tones):
            raise DailyRequestError("tones", "must be 1-20 of 0-9 A-D # *")
        if self.method is not None and self.method not in ("sip-info", "telephone-event", "auto"):
            raise DailyRequestError("method", "must be sip-info, telephone-event or auto")
        if self.digit_duration_ms is not None and not 50 <= self.digit_duration_ms <= 2000:
            raise DailyRequestError("digitDurationMs", "must be 50..2000")

    def to_json(self) -> JSONObject:
        """Daily's sendDTMF body."""
        body: JSONObject = {"sessionId": self.session_id, "tones": self.tones}
        _put(body, "method", self.method)
        _put(body, "digitDurationMs", self.digit_duration_ms)
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class SipCallTransferRequest:
    """``POST /rooms/:name/sipCallTransfer``: move a leg elsewhere; Daily stays in the path."""

    session_id: str
    to_end_point: str
    caller_id: str | None = None
    extension: str | None = None
    wait_before_extension_dial_sec: int | None = None

    def __post_init__(self) -> None:
        _require(self.session_id, "sessionId")
        if self.to_end_point.startswith(("sip:", "sips:")):
            _check_sip_uri(self.to_end_point, "toEndPoint")
        else:
            _check_phone(self.to_end_point, "toEndPoint")
        if self.caller_id is not None:
            _require(self.caller_id, "callerId")
        _check_extension(self.extension, self.wait_before_extension_dial_sec)

    def to_json(self) -> JSONObject:
        """Daily's sipCallTransfer body."""
        body: JSONObject = {"sessionId": self.session_id, "toEndPoint": self.to_end_point}
        _put(body, "callerId", self.caller_id)
        _put(body, "extension", self.extension)
        _put(body, "waitBeforeExtensionDialSec", self.wait_before_extension_dial_sec)
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class SipReferRequest:
    """``POST /rooms/:name/sipRefer``: hand a SIP leg back to its PBX; Daily leaves."""

    session_id: str
    to_end_point: str

    def __post_init__(self) -> None:
        _require(self.session_id, "sessionId")
        _check_sip_uri(self.to_end_point, "toEndPoint")

    def to_json(self) -> JSONObject:
        """Daily's sipRefer body."""
        return {"sessionId": self.session_id, "toEndPoint": self.to_end_point}


@dataclass(frozen=True, slots=True, kw_only=True)
class StopDialOutRequest:
    """``POST /rooms/:name/dialOut/stop``: hang up a dial-out leg."""

    session_id: str

    def __post_init__(self) -> None:
        _require(self.session_id, "sessionId")

    def to_json(self) -> JSONObject:
        """Daily's dialOut/stop body."""
        return {"sessionId": self.session_id}


@dataclass(frozen=True, slots=True, kw_only=True)
class PinlessCallUpdateRequest:
    """``POST /dialin/pinlessCallUpdate``: route a held pinless call to a room's SIP URI."""

    call_id: str
    call_domain: str
    sip_uri: str

    def __post_init__(self) -> None:
        _require(self.call_id, "callId")
        _require(self.call_domain, "callDomain")
        _check_sip_uri(self.sip_uri, "sipUri")

    def to_json(self) -> JSONObject:
        """Daily's pinlessCallUpdate body."""
        return {"callId": self.call_id, "callDomain": self.call_domain, "sipUri": self.sip_uri}
