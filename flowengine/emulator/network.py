"""The emulated Daily domain at work: rooms, and what every telephony operation shares.

``Network`` owns the ``State`` and is the only code that changes it. Operations raise
``ApiError`` (status, Daily's error type, info) for the REST layer to answer; they never
await, so nothing a far end does can interleave with a request half-handled. What happens
later (a callee answering, a caller pressing keys) goes on the ``Timeline``; what Daily would
tell the outside goes through ``emit``: a webhook (``WebhookSender``) and, where daily-python
has one, the matching in-room event (``InRoomBus``). The operations on legs live in
``dialout.py``, ``transfers.py`` and ``dialin.py``.

Payload fields follow the reference's per-event tables (docs/emulator.md lists them);
``timestamp`` is the event time in whole seconds, ``domain_id`` and ``room`` are always set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowengine.daily.models import SipConfig, check_room_name
from flowengine.emulator.bodies import checked, invalid, not_found, parse_codecs
from flowengine.emulator.farends import FarEnds
from flowengine.emulator.inroom import InRoomBus
from flowengine.emulator.state import Ids, Leg, Room, State, Transfer
from flowengine.emulator.timeline import Timeline
from flowengine.emulator.webhooks import WebhookSender

MAX_SESSIONS_PER_ROOM = 5
"""Daily's default ``max_sip_pstn_sessions_per_room``."""
PSTN_MAX_EXP = 365 * 24 * 3600
"""PSTN- and SIP-enabled rooms must expire within 365 days."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """Seconds between a request and what Daily does next (the far ends add their own)."""

    sip_ready: float = 0.5
    """Room with ``sip`` created -> ``dialin.ready``."""
    connect: float = 0.2
    """``pinlessCallUpdate`` -> ``dialin.connected``."""
    ring: float = 0.1
    """``dialOut/start`` -> ``dialout.connected`` (ringing)."""
    transfer: float = 0.1
    """``calltransfer.triggered`` -> ``calltransfer.initiated``."""


class Network:
    """Rooms, legs and the events they cause."""

    def __init__(
        self,
        *,
        state: State,
        ids: Ids,
        timeline: Timeline,
        sender: WebhookSender,
        bus: InRoomBus,
        far_ends: FarEnds,
        timing: Timing,
        purchased_numbers: dict[str, str],
    ) -> None:
        self.state = state
        self.ids = ids
        self.timeline = timeline
        self.sender = sender
        self.bus = bus
        self.far_ends = far_ends
        self.timing = timing
        self.purchased_numbers = purchased_numbers

    def now(self) -> float:
        """The emulator's time."""
        return self.timeline.clock.now()

    # -- events ----------------------------------------------------------------------------

    def emit(
        self,
        type_: str,
        room: str,
        payload: dict[str, Any],
        *,
        key: str,
        inroom: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        """Send webhook ``type_`` about ``room`` and publish its in-room twin, if any."""
        now = self.now()
        body = {"domain_id": self.state.domain_id, "room": room, "timestamp": int(now)}
        body.update(payload)
        self.sender.emit(type_, body, key)
        if inroom is not None:
            self.bus.publish(room, inroom[0], inroom[1], now)

    def participant(self, leg: Leg, room: Room | None, joined: bool) -> None:
        """``participant.joined`` (or ``.left``) for a phone leg, with its in-room twin."""
        name = leg.display_name or leg.address
        joined_at = int(leg.answered_at or self.now())
        exp = room.properties.get("exp") if room is not None else None
        eject = room is not None and room.properties.get("eject_at_room_exp") is True
        payload: dict[str, Any] = {
            "joined_at": joined_at,
            "session_id": leg.session_id,
            "user_id": leg.user_id,
            "user_name": name,
            "owner": False,
            "permissions": {"hasPresence": True, "canSend": True, "canAdmin": False},
            "will_eject_at": exp if eject else None,
        }
        info = {
            "id": leg.session_id,
            "info": {
                "isLocal": False,
                "isOwner": False,
                "userName": name,
                "userId": leg.user_id,
                "joinedAt": joined_at,
            },
        }
        if joined:
            leg.joined = True
            self.emit(
                "participant.joined",
                leg.room,
                payload,
                key=leg.session_id,
                inroom=("participant-joined", info),
            )
            return
        leg.joined = False
        payload["duration"] = max(0, int(self.now()) - joined_at)
        self.emit(
            "participant.left",
            leg.room,
            payload,
            key=leg.session_id,
            inroom=("participant-left", {"participant": info, "reason": "leftCall"}),
        )

    def leave_room(self, leg: Leg) -> None:
        """The leg leaves its room: ``participant.left``, then ``dialin``/``dialout.stopped``."""
        if leg.joined:
            self.participant(leg, self.state.rooms.get(leg.room), joined=False)
        if leg.kind == "dialin":
            inroom: dict[str, Any] = {
                "sessionId": leg.session_id,
                "sipFrom": leg.address,
                "sipHeaders": dict(leg.sip_headers),
            }
            self.emit(
                "dialin.stopped",
                leg.room,
                self.dialin_payload(leg),
                key=leg.session_id,
                inroom=("dialin-stopped", inroom),
            )
        else:
            self.emit(
                "dialout.stopped",
                leg.room,
                self.dialout_payload(leg),
                key=leg.session_id,
                inroom=(
                    "dialout-stopped",
                    {"sessionId": leg.session_id, "destination": leg.address},
                ),
            )

    def end_leg(self, leg: Leg, reason: str, *, leave: bool = True) -> None:
        """End ``leg`` for ``reason``; with ``leave``, it leaves its room with events."""
        if leg.status == "ended":
            return
        if leave and leg.status in ("ringing", "answered"):
            self.leave_room(leg)
        leg.status = "ended"
        leg.ended_at = self.now()
        leg.end_reason = leg.end_reason or reason
        leg.epoch += 1
        for transfer in leg.transfers:
            # A transferred call stays anchored in Daily: its end completes the transfer.
            if not transfer.is_sip_refer and transfer.status in (
                "triggered",
                "initiated",
                "answered",
            ):
                transfer.status = "completed"
                self.emit_transfer("calltransfer.completed", transfer)
        if leg.call_id is not None and (call := self.state.calls.get(leg.call_id)):
            call.status = "ended"

    def emit_transfer(self, type_: str, transfer: Transfer) -> None:
        """A ``calltransfer.*`` webhook (there is no in-room twin); ``is_sip_refer`` is on
        ``triggered`` and ``initiated`` only, as in the reference's field lists."""
        payload: dict[str, Any] = {
            "session_id": transfer.session_id,
            "mtg_session_id": transfer.mtg_session_id,
            "to_endpoint": transfer.to_end_point,
            "from_endpoint": transfer.from_end_point,
        }
        if type_ in ("calltransfer.triggered", "calltransfer.initiated"):
            payload["is_sip_refer"] = transfer.is_sip_refer
        self.emit(type_, transfer.room, payload, key=transfer.session_id)

    def dialin_payload(self, leg: Leg) -> dict[str, Any]:
        """The fields of ``dialin.connected`` / ``dialin.stopped``."""
        return {
            "session_id": leg.session_id,
            "sip_from": leg.address,
            "display_name": leg.display_name,
            "sip_headers": dict(leg.sip_headers),
        }

    def dialout_payload(self, leg: Leg) -> dict[str, Any]:
        """The fields of ``dialout.connected`` / ``answered`` / ``stopped``."""
        payload: dict[str, Any] = {
            "session_id": leg.session_id,
            "destination": leg.address,
            "origin": self.origin(leg),
            "caller_id": leg.caller_id,
        }
        if leg.user_id is not None:
            payload["user_id"] = leg.user_id
        return payload

    def origin(self, leg: Leg) -> str:
        """The calling number (PSTN) or Daily's SIP URI (SIP) of a dial-out."""
        if leg.via == "sip":
            return f"sip:{leg.room}@{self.state.domain}.sip.daily.co"
        if leg.caller_id and leg.caller_id in self.purchased_numbers:
            return self.purchased_numbers[leg.caller_id]
        return next(iter(self.purchased_numbers.values()), "+15550100000")

    # -- lookups ---------------------------------------------------------------------------

    def room(self, name: str) -> Room:
        """The room called ``name``, or 404."""
        room = self.state.rooms.get(name)
        if room is None:
            raise not_found(f"room {name} not found")
        return room

    def leg(self, room: Room, session_id: str) -> Leg:
        """The active leg ``session_id`` in ``room``, or 404."""
        leg = self.state.legs.get(session_id)
        if leg is None or leg.room != room.name or not leg.active:
            raise not_found(f"no active session {session_id} in room {room.name}")
        return leg

    # -- rooms -----------------------------------------------------------------------------

    def create_room(self, body: dict[str, Any]) -> Room:
        """``POST /rooms``."""
        if unknown := set(body) - {"name", "privacy", "properties"}:
            raise invalid(f"unknown parameter {sorted(unknown)[0]!r}")
        name = body.get("name")
        if name is None:
            name = self.ids.room_name()
        if not isinstance(name, str):
            raise invalid("name must be a string")
        checked(lambda: check_room_name(name))
        if name in self.state.rooms:
            raise invalid(f"a room named {name} already exists")
        privacy = body.get("privacy", "public")
        if privacy not in ("public", "private"):
            raise invalid("privacy must be public or private")
        properties = body.get("properties") or {}
        if not isinstance(properties, dict):
            raise invalid("properties must be an object")
        endpoints = self._check_properties(name, properties)
        room = Room(
            name=name,
            id=self.ids.uuid(),
            privacy=privacy,
            created_at=self.now(),
            url=f"https://{self.state.domain}.daily.co/{name}",
            properties=dict(properties),
            sip_endpoints=endpoints,
            mtg_session_id=self.ids.uuid(),
        )
        self.state.rooms[name] = room
        if room.has_sip:
            self.timeline.later(self.timing.sip_ready, lambda: self._sip_ready(room))
        return room

    def _check_properties(self, name: str, properties: dict[str, Any]) -> tuple[str, ...]:
        exp = properties.get("exp")
        if exp is not None and (isinstance(exp, bool) or not isinstance(exp, int | float)):
            raise invalid("exp must be a Unix time in seconds")
        for flag in ("enable_dialout", "eject_at_room_exp"):
            if flag in properties and not isinstance(properties[flag], bool):
                raise invalid(f"{flag} must be a boolean")
        sip = properties.get("sip")
        telephony = sip is not None or properties.get("enable_dialout") is True
        if telephony and exp is not None and exp - self.now() >= PSTN_MAX_EXP:
            raise invalid("exp must be less than 365 days ahead for a room with SIP or PSTN")
        if sip is None:
            return ()
        if not isinstance(sip, dict):
            raise invalid("sip must be an object or null")
        known = {"display_name", "video", "sip_mode", "num_endpoints", "codecs", "provider"}
        if unknown := set(sip) - known:
            raise invalid(f"unknown sip property {sorted(unknown)[0]!r}")
        fields = {k: v for k, v in sip.items() if k != "codecs"}
        if "codecs" in sip:
            fields["codecs"] = parse_codecs(sip["codecs"])
        config: SipConfig = checked(lambda: SipConfig(**fields))
        host = f"{self.state.domain}.sip.daily.co"
        extra = [f"{name}-{i}@{host}" for i in range(1, config.num_endpoints)]
        return (f"{name}@{host}", *extra)

    def _sip_ready(self, room: Room) -> None:
        if self.state.rooms.get(room.name) is not room:
            return  # deleted before its SIP worker came up
        room.ready = True
        for endpoint in room.sip_endpoints:
            self.emit(
                "dialin.ready",
                room.name,
                {"sip_endpoint": f"sip:{endpoint}"},
                key=room.name,
                inroom=("dialin-ready", {"sipEndpoint": f"sip:{endpoint}"}),
            )

    def delete_room(self, name: str) -> dict[str, Any]:
        """``DELETE /rooms/:name``: every leg in the room is hung up."""
        room = self.room(name)
        for leg in self.state.legs_in(name):
            self.end_leg(leg, "room deleted")
        del self.state.rooms[name]
        room.ready = False
        return {"deleted": True, "name": name}

    def create_token(self, body: dict[str, Any]) -> str:
        """``POST /meeting-tokens``."""
        properties = body.get("properties")
        if not isinstance(properties, dict):
            raise invalid("properties must be an object")
        room_name = properties.get("room_name")
        if room_name is not None and not isinstance(room_name, str):
            raise invalid("room_name must be a string")
        token = self.ids.token()
        self.state.tokens[token] = dict(properties)
        return token
