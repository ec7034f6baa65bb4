"""Pinless dial-in: the emulator places an inbound call and plays the caller's script.

``place_call`` does what Daily does when someone calls a pinless number: it POSTs ``{To,
From, callId, callDomain, sipHeaders}``, signed with ``x-pinless-signature`` /
``x-pinless-timestamp``, to the dial-in URL (``room_creation_api``), and holds the caller
(hold music) until ``POST /dialin/pinlessCallUpdate`` routes the call to a room's SIP
endpoint. Routing is refused until that room's ``dialin.ready`` has been sent (Daily's guide:
call it after ``dialin-ready``), and a call is routed once. ``Timing.connect`` later the
caller is in the room: ``dialin.connected`` then ``participant.joined``. From then on the
caller's keys arrive in-room as ``dtmf-event`` (never as a webhook), and hanging up sends
``participant.left`` then ``dialin.stopped``. A pinless request answered with anything but
200 rejects the call (Daily would play ``timeout_config.message``); a caller may abandon the
call while on hold, which Daily reports to no one. With several dial-in URLs, each call's
request goes to one of them (``choose``, keyed by the seed and the call id).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowengine.daily.models import PinlessCallUpdateRequest
from flowengine.emulator.bodies import body_fields, checked, invalid, not_found
from flowengine.emulator.dialout import press_keys
from flowengine.emulator.farends import Caller
from flowengine.emulator.network import Network
from flowengine.emulator.state import InboundCall, Leg, Room
from flowengine.emulator.webhooks import Delivery, Poster, Target, choose, post_pinless

_FIELDS = {"callId": "call_id", "callDomain": "call_domain", "sipUri": "sip_uri"}


class NoDialInTargetError(RuntimeError):
    """Raised by ``place_call`` when no dial-in URL (``room_creation_api``) is configured."""


class DialIn:
    """Placing inbound calls and routing them with ``pinlessCallUpdate``."""

    def __init__(
        self,
        net: Network,
        poster: Poster,
        targets: Sequence[Target],
        secret: str,
        *,
        seed: int = 0,
    ) -> None:
        self.net = net
        self.poster = poster
        self.targets = tuple(targets)
        """Where pinless requests go (one per call, drawn by ``choose``); none: nowhere."""
        self.secret = secret
        self.seed = seed
        self.requests: list[Delivery] = []
        """Every pinless request POSTed, with its answer."""

    async def place_call(
        self,
        to: str,
        from_: str | None = "+14155550123",
        *,
        caller: Caller | None = None,
        sip_headers: dict[str, str] | None = None,
    ) -> InboundCall:
        """Call ``to`` from ``from_``; returns once the dial-in URL has answered.

        Raises:
            NoDialInTargetError: no dial-in URL is configured.
        """
        if not self.targets:
            raise NoDialInTargetError("no dial-in URL (room_creation_api) is configured")
        net = self.net
        caller = caller or Caller()
        via = caller.via or ("sip" if (from_ or "").lower().startswith("sip:") else "pstn")
        call = InboundCall(
            call_id=net.ids.uuid(),
            call_domain=net.state.domain_id,
            to=to,
            from_=from_,
            sip_headers=dict(sip_headers or {}),
            caller=caller,
            via=via,
            placed_at=net.now(),
            status="held",
        )
        net.state.calls[call.call_id] = call
        request: dict[str, Any] = {"To": to}
        if from_ is not None:
            request["From"] = from_
        request.update(callId=call.call_id, callDomain=call.call_domain)
        if call.sip_headers:
            request["sipHeaders"] = call.sip_headers
        if caller.abandon is not None:
            net.timeline.later(caller.abandon, lambda: self._abandon(call))
        target = choose(self.targets, self.seed, f"pinless/{call.call_id}")
        delivery = await post_pinless(self.poster, target, self.secret, net.now(), request)
        self.requests.append(delivery)
        call.pinless_status = delivery.status
        if not delivery.ok and call.status == "held":
            call.status = "rejected"
        return call

    def _abandon(self, call: InboundCall) -> None:
        if call.status in ("held", "routed"):
            call.status = "ended"

    def pinless_update(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /dialin/pinlessCallUpdate``."""
        net = self.net
        kwargs = body_fields(body, _FIELDS, set())
        request: PinlessCallUpdateRequest = checked(lambda: PinlessCallUpdateRequest(**kwargs))
        call = net.state.calls.get(request.call_id)
        if call is None:
            raise not_found(f"call {request.call_id} not found")
        if request.call_domain != call.call_domain:
            raise invalid("callDomain does not match the call")
        if call.status in ("ended", "rejected"):
            raise not_found(f"call {call.call_id} has ended")
        if call.status != "held":
            raise invalid(f"call {call.call_id} has already been routed")
        room = net.state.room_by_endpoint(request.sip_uri)
        if room is None:
            raise not_found(f"no room has the SIP endpoint {request.sip_uri}")
        if not room.ready:
            raise invalid("the room's SIP endpoint is not ready yet (wait for dialin.ready)")
        endpoint = self._endpoint(room, request.sip_uri)
        if any(leg.endpoint == endpoint for leg in net.state.legs_in(room.name)):
            raise invalid(f"the SIP endpoint {endpoint} already has a caller")
        call.status, call.room = "routed", room.name
        call.updates += 1
        net.timeline.later(net.timing.connect, lambda: self._connect(call, room, endpoint))
        return {"ok": "true"}

    @staticmethod
    def _endpoint(room: Room, sip_uri: str) -> str:
        bare = sip_uri.split(":", 1)[1].split(";", 1)[0].split("?", 1)[0].lower()
        return next(e for e in room.sip_endpoints if e.lower() == bare)

    def _connect(self, call: InboundCall, room: Room, endpoint: str) -> None:
        net = self.net
        if call.status != "routed" or net.state.rooms.get(room.name) is not room:
            if call.status == "routed":
                call.status = "ended"  # routed to a room that is gone: the call drops
            return
        sip = room.properties.get("sip")
        display = sip.get("display_name") if isinstance(sip, dict) else None
        leg = Leg(
            session_id=net.ids.uuid(),
            room=room.name,
            kind="dialin",
            address=call.from_ or "anonymous",
            via=call.via,
            started_at=net.now(),
            status="answered",
            display_name=display if isinstance(display, str) else call.from_,
            sip_headers=dict(call.sip_headers),
            caller=call.caller,
            call_id=call.call_id,
            endpoint=endpoint,
            answered_at=net.now(),
        )
        net.state.legs[leg.session_id] = leg
        call.status, call.session_id = "connected", leg.session_id
        connected = {
            "sessionId": leg.session_id,
            "displayName": leg.display_name,
            "sipFrom": leg.address,
            "sipHeaders": dict(leg.sip_headers),
        }
        net.emit(
            "dialin.connected",
            room.name,
            net.dialin_payload(leg),
            key=leg.session_id,
            inroom=("dialin-connected", connected),
        )
        net.participant(leg, room, joined=True)
        press_keys(net, leg, call.caller.keys)
        if call.caller.hangup is not None:
            net.timeline.later(call.caller.hangup, lambda: net.end_leg(leg, "caller hung up"))
