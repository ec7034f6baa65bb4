"""Moving a leg: ``sipCallTransfer`` (Daily stays in the path) and ``sipRefer`` (it leaves).

A transfer sends ``calltransfer.triggered`` at once and ``calltransfer.initiated`` after
``Timing.transfer``, when the leg leaves the room (``participant.left`` and ``dialin.stopped``
or ``dialout.stopped``, as the transfers guide says). The target then plays its script:
``calltransfer.answered``, and ``calltransfer.completed`` when the transferred call ends; or,
if it is busy or fails, ``calltransfer.completed`` with no ``answered`` before it. A target
that is one of the emulator's own rooms (its SIP endpoint) answers at once and the leg joins
that room (``participant.joined`` there), keeping its session id.

A REFER sends ``triggered`` and ``initiated`` with ``is_sip_refer: true`` and never
``answered`` or ``completed``; the leg leaves the room and Daily leaves the call. It needs a
SIP leg (not a PSTN call) and a destination outside Daily's SIP network; a REFER target
scripted to fail leaves the leg where it was after ``triggered`` alone.
"""

from __future__ import annotations

from typing import Any

from flowengine.addresses import in_daily_sip_network, sip_host
from flowengine.daily.models import SipCallTransferRequest, SipReferRequest
from flowengine.emulator.bodies import body_fields, checked, invalid
from flowengine.emulator.farends import Callee
from flowengine.emulator.network import Network
from flowengine.emulator.state import Leg, Room, Transfer

_TRANSFER_FIELDS = {
    "sessionId": "session_id",
    "toEndPoint": "to_end_point",
    "callerId": "caller_id",
    "extension": "extension",
    "waitBeforeExtensionDialSec": "wait_before_extension_dial_sec",
}
_REFER_FIELDS = {"sessionId": "session_id", "toEndPoint": "to_end_point"}


class Transfers:
    """The transfer operations of the REST API."""

    def __init__(self, net: Network) -> None:
        self.net = net

    def _movable(self, room: Room, session_id: str) -> Leg:
        leg = self.net.leg(room, session_id)
        if leg.status == "transferring":
            raise invalid(f"a transfer of session {session_id} is already in progress")
        if leg.status != "answered":
            raise invalid(f"session {session_id} is not connected")
        return leg

    def _start(self, leg: Leg, to: str, target: Callee, refer: bool) -> Transfer:
        room = self.net.room(leg.room)
        transfer = Transfer(
            session_id=leg.session_id,
            room=leg.room,
            to_end_point=to,
            from_end_point=leg.address,
            is_sip_refer=refer,
            target=target,
            mtg_session_id=room.mtg_session_id,
        )
        leg.transfers.append(transfer)
        leg.status = "transferring"
        leg.epoch += 1  # the far end's own script (a callee's hang-up) no longer applies
        self.net.emit_transfer("calltransfer.triggered", transfer)
        return transfer

    def transfer(self, room_name: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /rooms/:name/sipCallTransfer``."""
        net = self.net
        room = net.room(room_name)
        kwargs = body_fields(body, _TRANSFER_FIELDS, set())
        request: SipCallTransferRequest = checked(lambda: SipCallTransferRequest(**kwargs))
        leg = self._movable(room, request.session_id)
        to = request.to_end_point
        into = net.state.room_by_endpoint(to) if to.lower().startswith("sip") else None
        if into is room:
            raise invalid("toEndPoint is the room the session is already in")
        target = Callee.answers() if into is not None else net.far_ends.lookup(to)
        transfer = self._start(leg, to, target, refer=False)
        epoch = leg.epoch
        net.timeline.later(net.timing.transfer, lambda: self._initiated(leg, transfer, epoch, into))
        return {"ok": "true"}

    def _initiated(self, leg: Leg, transfer: Transfer, epoch: int, into: Room | None) -> None:
        net = self.net
        if leg.epoch != epoch or transfer.status != "triggered":
            return
        transfer.status = "initiated"
        net.emit_transfer("calltransfer.initiated", transfer)
        net.leave_room(leg)
        if transfer.target.outcome == "no_answer":
            return
        net.timeline.later(transfer.target.after, lambda: self._outcome(leg, transfer, epoch, into))

    def _outcome(self, leg: Leg, transfer: Transfer, epoch: int, into: Room | None) -> None:
        net, target = self.net, transfer.target
        if leg.epoch != epoch or transfer.status != "initiated":
            return
        if target.outcome != "answer":
            transfer.status = "failed"
            net.emit_transfer("calltransfer.completed", transfer)
            net.end_leg(leg, "transfer failed", leave=False)
            return
        transfer.status = "answered"
        net.emit_transfer("calltransfer.answered", transfer)
        if into is not None and net.state.rooms.get(into.name) is into:
            leg.room, leg.status = into.name, "answered"
            net.participant(leg, into, joined=True)
        else:
            leg.status = "transferred"
        if target.hangup is not None:
            net.timeline.later(target.hangup, lambda: self._target_hangs_up(leg, epoch))

    def _target_hangs_up(self, leg: Leg, epoch: int) -> None:
        if leg.epoch == epoch:
            self.net.end_leg(leg, "transfer target hung up")

    def refer(self, room_name: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /rooms/:name/sipRefer``."""
        net = self.net
        room = net.room(room_name)
        kwargs = body_fields(body, _REFER_FIELDS, set())
        request: SipReferRequest = checked(lambda: SipReferRequest(**kwargs))
        leg = self._movable(room, request.session_id)
        if in_daily_sip_network(sip_host(request.to_end_point)):
            raise invalid("sipRefer needs a toEndPoint outside Daily's SIP network")
        if leg.via != "sip":
            raise invalid(f"sipRefer needs a SIP session; {leg.session_id} is a PSTN call")
        target = net.far_ends.lookup(request.to_end_point)
        transfer = self._start(leg, request.to_end_point, target, refer=True)
        epoch = leg.epoch
        if target.outcome == "answer":
            net.timeline.later(net.timing.transfer, lambda: self._referred(leg, transfer, epoch))
        else:
            delay = net.timing.transfer + target.after
            net.timeline.later(delay, lambda: self._refused(leg, transfer, epoch))
        return {"ok": "true"}

    def _referred(self, leg: Leg, transfer: Transfer, epoch: int) -> None:
        if leg.epoch != epoch:
            return
        transfer.status = "initiated"
        self.net.emit_transfer("calltransfer.initiated", transfer)
        self.net.leave_room(leg)
        self.net.end_leg(leg, "referred", leave=False)

    def _refused(self, leg: Leg, transfer: Transfer, epoch: int) -> None:
        # The far side refused the REFER: the leg stays in the room, and no event says so.
        if leg.epoch == epoch and leg.status == "transferring":
            transfer.status = "failed"
            leg.status = "answered"
