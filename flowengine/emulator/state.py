"""What the emulated Daily domain holds: rooms, telephony legs, held inbound calls, tokens.

Plain mutable records, owned by ``Network`` (which changes them) and read by tests and the
control API. Ids come from one seeded ``random.Random``, so a run with the same seed and the
same requests names the same rooms and sessions. ``Leg.epoch`` counts the leg's phases:
something scheduled for a leg carries the epoch it was scheduled in and does nothing if the
leg has moved on (a callee's "answer in 3 s" after the call was stopped).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from flowengine.emulator.farends import Callee, Caller

LegKind = Literal["dialin", "dialout"]
Via = Literal["pstn", "sip"]
LegStatus = Literal["ringing", "answered", "transferring", "transferred", "ended"]
CallStatus = Literal["placing", "held", "routed", "connected", "ended", "rejected"]


def iso(ts: float) -> str:
    """Daily's ``created_at`` form: ``2026-01-01T00:00:00.000Z``."""
    return (
        datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{int(ts % 1 * 1000):03d}Z"
    )


class Ids:
    """Seeded ids: UUIDs for sessions and rooms, short names for unnamed rooms."""

    _ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def uuid(self) -> str:
        """A version-4 UUID from the seeded generator."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def room_name(self) -> str:
        """A random room name, as Daily makes for a room created without one."""
        return "".join(self._rng.choice(self._ALPHABET) for _ in range(20))

    def token(self) -> str:
        """An opaque meeting token (JWT-shaped, signed by nobody)."""
        return ".".join(
            "".join(self._rng.choice(self._ALPHABET) for _ in range(n)) for n in (36, 96, 43)
        )


@dataclass(slots=True)
class Room:
    """A room and its properties as created; ``sip_endpoints`` are without ``sip:``."""

    name: str
    id: str
    privacy: str
    created_at: float
    url: str
    properties: dict[str, Any]
    sip_endpoints: tuple[str, ...] = ()
    mtg_session_id: str = ""
    ready: bool = False
    """``dialin.ready`` has been sent: pinless calls may be routed to the endpoints."""

    @property
    def has_sip(self) -> bool:
        """Whether the room takes SIP dial-in."""
        return bool(self.sip_endpoints)

    @property
    def dialout_enabled(self) -> bool:
        """Whether ``enable_dialout`` is set."""
        return self.properties.get("enable_dialout") is True

    def to_json(self) -> dict[str, Any]:
        """The room object Daily answers with."""
        config = dict(self.properties)
        if self.sip_endpoints:
            config["sip_uri"] = {
                "endpoint": self.sip_endpoints[0],
                "extra_endpoints": list(self.sip_endpoints[1:]),
            }
        return {
            "id": self.id,
            "name": self.name,
            "api_created": True,
            "privacy": self.privacy,
            "url": self.url,
            "created_at": iso(self.created_at),
            "config": config,
        }


@dataclass(slots=True)
class Leg:
    """One SIP/PSTN participant: a dial-out, or an inbound caller once connected."""

    session_id: str
    room: str
    kind: LegKind
    address: str
    """Dial-out: the destination; dial-in: the caller (``From``)."""
    via: Via
    started_at: float
    status: LegStatus = "ringing"
    display_name: str | None = None
    user_id: str | None = None
    caller_id: str | None = None
    sip_headers: dict[str, str] = field(default_factory=dict)
    callee: Callee | None = None
    caller: Caller | None = None
    call_id: str | None = None
    endpoint: str | None = None
    """Dial-in: the room SIP endpoint the call was routed to (one caller per endpoint)."""
    joined: bool = False
    """``participant.joined`` was sent (and ``participant.left`` is owed)."""
    answered_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    epoch: int = 0
    tones_heard: list[tuple[float, str]] = field(default_factory=list)
    """Tones sent into this leg with ``sendDTMF``: (time, tones)."""
    played: list[str] = field(default_factory=list)
    """What a scripted remote IVR on this leg played, in order."""
    ivr_menu: str | None = None
    transfers: list[Transfer] = field(default_factory=list)

    @property
    def active(self) -> bool:
        """In its room: ringing, answered, or being transferred out of it."""
        return self.status in ("ringing", "answered", "transferring")

    def to_json(self) -> dict[str, Any]:
        """A summary for the control API."""
        return {
            "sessionId": self.session_id,
            "room": self.room,
            "kind": self.kind,
            "address": self.address,
            "via": self.via,
            "status": self.status,
            "endReason": self.end_reason,
            "tonesHeard": [t for _, t in self.tones_heard],
            "played": list(self.played),
            "transfers": [t.to_json() for t in self.transfers],
        }


@dataclass(slots=True)
class Transfer:
    """A ``sipCallTransfer`` or ``sipRefer`` of a leg."""

    session_id: str
    room: str
    to_end_point: str
    from_end_point: str
    is_sip_refer: bool
    target: Callee
    mtg_session_id: str
    status: Literal["triggered", "initiated", "answered", "completed", "failed"] = "triggered"

    def to_json(self) -> dict[str, Any]:
        """A summary for the control API."""
        return {
            "toEndPoint": self.to_end_point,
            "isSipRefer": self.is_sip_refer,
            "status": self.status,
        }


@dataclass(slots=True)
class InboundCall:
    """A call the emulator placed to the pinless dial-in number, from hold to hang-up."""

    call_id: str
    call_domain: str
    to: str
    from_: str | None
    sip_headers: dict[str, str]
    caller: Caller
    via: Via
    placed_at: float
    status: CallStatus = "placing"
    pinless_status: int | None = None
    """The HTTP status our pinless request got (None: no answer)."""
    room: str | None = None
    session_id: str | None = None
    updates: int = 0
    """How many ``pinlessCallUpdate`` requests routed it (more than one is a client bug)."""

    def to_json(self) -> dict[str, Any]:
        """A summary for the control API."""
        return {
            "callId": self.call_id,
            "callDomain": self.call_domain,
            "To": self.to,
            "From": self.from_,
            "status": self.status,
            "pinlessStatus": self.pinless_status,
            "room": self.room,
            "sessionId": self.session_id,
            "updates": self.updates,
        }


@dataclass(slots=True)
class State:
    """Everything the emulated domain holds."""

    domain: str
    domain_id: str
    rooms: dict[str, Room] = field(default_factory=dict)
    legs: dict[str, Leg] = field(default_factory=dict)
    calls: dict[str, InboundCall] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)

    def room_by_endpoint(self, sip_uri: str) -> Room | None:
        """The live room one of whose SIP endpoints is ``sip_uri`` (with or without ``sip:``)."""
        bare = sip_uri.split(":", 1)[1] if sip_uri.lower().startswith("sip:") else sip_uri
        bare = bare.split(";", 1)[0].split("?", 1)[0].lower()
        for room in self.rooms.values():
            if bare in (e.lower() for e in room.sip_endpoints):
                return room
        return None

    def legs_in(self, room: str) -> list[Leg]:
        """The active legs in ``room``."""
        return [leg for leg in self.legs.values() if leg.room == room and leg.active]

    def to_json(self) -> dict[str, Any]:
        """A snapshot for the control API."""
        return {
            "domain": self.domain,
            "domainId": self.domain_id,
            "rooms": [r.to_json() for r in self.rooms.values()],
            "legs": [leg.to_json() for leg in self.legs.values()],
            "calls": [c.to_json() for c in self.calls.values()],
        }
