"""Dial-out legs: ``dialOut/start``, ``dialOut/stop``, ``dialOut/sendDTMF``, and the callee.

``start`` answers with the new leg's ``sessionId`` at once; the far end then plays its
script: ``dialout.connected`` (ringing) after ``Timing.ring``, then, ``Callee.after`` seconds
later, ``dialout.answered`` (and ``participant.joined``), or ``dialout.error`` whose
``error_msg`` names SIP 486 Busy Here or 503, or nothing at all for a callee who never answers
(the leg rings until ``dialOut/stop``, which sends ``dialout.stopped``). An answered callee may
press keys (delivered in-room as ``dtmf-event``), hang up (``participant.left``,
``dialout.stopped``), or run a remote IVR that follows the tones of ``sendDTMF``.
"""

from __future__ import annotations

import functools
from typing import Any

from flowengine.addresses import is_e164
from flowengine.daily.models import (
    DIAL_OUT_FIELDS,
    DialOutRequest,
    SendDtmfRequest,
    StopDialOutRequest,
)
from flowengine.emulator.bodies import body_fields, checked, invalid, not_found, parse_codecs
from flowengine.emulator.farends import HANGUP, Press
from flowengine.emulator.network import MAX_SESSIONS_PER_ROOM, Network
from flowengine.emulator.state import Leg

# Documented for daily-js / daily-python dial-out settings; accepted and not acted on
# ("codecs" is read separately).
_IGNORED = {"codecs", "provider", "permissions", "videoSettings"}
_TONES = frozenset("0123456789ABCD*#")
DEFAULT_DIGIT_MS = 500


def press_keys(net: Network, leg: Leg, presses: tuple[Press, ...]) -> None:
    """Schedule a far end's key presses, counted from now, as in-room ``dtmf-event``s."""
    for press in presses:
        for i, tone in enumerate(press.tones):

            def fire(tone: str = tone) -> None:
                # Keys reach the room only while the leg is in one and connected.
                if leg.status == "answered":
                    data = {
                        "sessionId": leg.session_id,
                        "tone": tone,
                        "volume": 10,
                        "method": "telephone-event",
                    }
                    net.bus.publish(leg.room, "dtmf-event", data, net.now())

            net.timeline.later(press.at + i * press.gap, fire)


class DialOut:
    """The dial-out operations of the REST API."""

    def __init__(self, net: Network) -> None:
        self.net = net

    def start(self, room_name: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /rooms/:name/dialOut/start``."""
        net = self.net
        room = net.room(room_name)
        kwargs = body_fields(body, DIAL_OUT_FIELDS, _IGNORED)
        kwargs["codecs"] = parse_codecs(body.get("codecs"))
        request: DialOutRequest = checked(lambda: DialOutRequest(**kwargs))
        if not room.dialout_enabled:
            raise invalid("dial-out is not enabled for this room (enable_dialout)")
        self._check_caller_id(request.caller_id)
        if len(net.state.legs_in(room.name)) >= MAX_SESSIONS_PER_ROOM:
            raise invalid(f"max_sip_pstn_sessions_per_room ({MAX_SESSIONS_PER_ROOM}) reached")
        target = request.sip_uri or request.phone_number or ""
        leg = Leg(
            session_id=net.ids.uuid(),
            room=room.name,
            kind="dialout",
            address=target,
            via="sip" if request.sip_uri else "pstn",
            started_at=net.now(),
            display_name=request.display_name,
            user_id=request.user_id,
            caller_id=request.caller_id,
            callee=net.far_ends.lookup(target),
        )
        net.state.legs[leg.session_id] = leg
        epoch = leg.epoch
        extension = (request.extension, request.wait_before_extension_dial_sec or 0)
        net.timeline.later(net.timing.ring, lambda: self._ringing(leg, epoch, extension))
        return {"ok": "true", "sessionId": leg.session_id}

    def _check_caller_id(self, caller_id: str | None) -> None:
        if caller_id is None:
            return
        if is_e164(caller_id):
            raise invalid("callerId is the id of a purchased phone number, not the number")
        numbers = self.net.purchased_numbers
        if numbers and caller_id not in numbers:
            raise invalid(f"callerId {caller_id} is not a phone number of this domain")

    def _ringing(self, leg: Leg, epoch: int, extension: tuple[str | None, int]) -> None:
        net = self.net
        if leg.epoch != epoch:
            return
        net.emit(
            "dialout.connected",
            leg.room,
            net.dialout_payload(leg),
            key=leg.session_id,
            inroom=("dialout-connected", {"sessionId": leg.session_id, "destination": leg.address}),
        )
        callee = leg.callee
        if callee is None or callee.outcome == "no_answer":
            return
        net.timeline.later(callee.after, lambda: self._outcome(leg, epoch, extension))

    def _outcome(self, leg: Leg, epoch: int, extension: tuple[str | None, int]) -> None:
        net, callee = self.net, leg.callee
        if leg.epoch != epoch or callee is None:
            return
        if callee.outcome != "answer":
            payload: dict[str, Any] = {
                "session_id": leg.session_id,
                "error_msg": callee.error_message,
            }
            if leg.user_id is not None:
                payload["user_id"] = leg.user_id
            text = callee.error_message
            error = {"sessionId": leg.session_id, "errorMsg": text, "message": text}
            net.emit(
                "dialout.error",
                leg.room,
                payload,
                key=leg.session_id,
                inroom=("dialout-error", error),
            )
            leg.end_reason = "busy" if callee.outcome == "busy" else "failed"
            net.end_leg(leg, leg.end_reason, leave=False)
            return
        leg.status, leg.answered_at = "answered", net.now()
        answered: dict[str, Any] = {
            "sessionId": leg.session_id,
            "destination": leg.address,
            "callerId": leg.caller_id,
        }
        net.emit(
            "dialout.answered",
            leg.room,
            net.dialout_payload(leg),
            key=leg.session_id,
            inroom=("dialout-answered", answered),
        )
        net.participant(leg, net.state.rooms.get(leg.room), joined=True)
        if callee.ivr is not None:
            leg.ivr_menu = callee.ivr.start
            leg.played.append(callee.ivr.start)
        digits, wait = extension
        if digits:
            net.timeline.later(wait, lambda: self.hear(leg, epoch, digits, DEFAULT_DIGIT_MS))
        press_keys(net, leg, callee.keys)
        if callee.hangup is not None:
            net.timeline.later(callee.hangup, lambda: self._hang_up(leg, epoch))

    def _hang_up(self, leg: Leg, epoch: int) -> None:
        if leg.epoch == epoch:
            self.net.end_leg(leg, "remote hangup")

    def stop(self, room_name: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /rooms/:name/dialOut/stop``."""
        room = self.net.room(room_name)
        kwargs = body_fields(body, {"sessionId": "session_id"}, set())
        request: StopDialOutRequest = checked(lambda: StopDialOutRequest(**kwargs))
        leg = self.net.leg(room, request.session_id)
        if leg.kind != "dialout":
            raise not_found(f"no dial-out session {request.session_id}")
        self.net.end_leg(leg, "stopped")
        return {"ok": "true"}

    def send_dtmf(self, room_name: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /rooms/:name/dialOut/sendDTMF``, checked as daily-js words its errors."""
        net = self.net
        room = net.room(room_name)
        fields = {
            "sessionId": "session_id",
            "tones": "tones",
            "method": "method",
            "digitDurationMs": "digit_duration_ms",
        }
        kwargs = body_fields(body, fields, set())
        session_id, tones = body.get("sessionId"), body.get("tones")
        if not isinstance(session_id, str) or not isinstance(tones, str) or not tones:
            raise invalid("sessionId and tones are mandatory")
        if len(tones) > 20:
            raise invalid("tones string must be upto 20 characters")
        for c in tones:
            if c not in _TONES:
                raise invalid(f"{c} is not valid DTMF tone")
        duration = body.get("digitDurationMs", DEFAULT_DIGIT_MS)
        if (
            isinstance(duration, bool)
            or not isinstance(duration, int)
            or not 50 <= duration <= 2000
        ):
            raise invalid("digitDurationMs must be an integer between 50 and 2000")
        request: SendDtmfRequest = checked(lambda: SendDtmfRequest(**kwargs))
        leg = net.leg(room, request.session_id)
        if leg.status != "answered":
            raise invalid(f"session {leg.session_id} is not connected")
        leg.tones_heard.append((net.now(), tones))
        self.hear(leg, leg.epoch, tones, duration)
        return {"ok": "true", "sessionId": leg.session_id}

    def hear(self, leg: Leg, epoch: int, tones: str, digit_ms: int) -> None:
        """The far end hears ``tones``, one every ``digit_ms``; a remote IVR follows them."""
        for i, tone in enumerate(tones):
            step = functools.partial(self._ivr_step, leg, epoch, tone)
            self.net.timeline.later((i + 1) * digit_ms / 1000, step)

    def _ivr_step(self, leg: Leg, epoch: int, tone: str) -> None:
        ivr = leg.callee.ivr if leg.callee is not None else None
        if leg.epoch != epoch or leg.status != "answered" or ivr is None or leg.ivr_menu is None:
            return
        target = ivr.menus[leg.ivr_menu].get(tone)
        if target is None:
            leg.played.append(f"{leg.ivr_menu}:invalid")
        elif target == HANGUP:
            leg.played.append(HANGUP)
            self.net.end_leg(leg, "remote hangup")
        else:
            leg.ivr_menu = target
            leg.played.append(target)
