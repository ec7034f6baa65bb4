"""Pinless dial-in: the signed request, dialin.ready/connected/stopped, caller keys, refusals."""

from __future__ import annotations

from typing import Any

import pytest

from flowengine.daily import DailyAPIError, RoomSpec, SipConfig, parse_pinless
from flowengine.daily.events import PinlessCall
from flowengine.emulator import (
    DIALIN_URL,
    Caller,
    Emulator,
    NoDialInTargetError,
    Press,
    to_event_handler,
)

from .conftest import Ingress, connect_caller, make_room

NUMBER = "+18005550100"
CONNECTED_FIELDS = {
    "timestamp",
    "session_id",
    "sip_from",
    "domain_id",
    "room",
    "display_name",
    "sip_headers",
}


async def test_place_call_posts_a_signed_pinless_request(emu, ingress):
    call = await emu.place_call(NUMBER, "+14155550123", sip_headers={"X-Account": "42"})
    assert ingress.refused == []
    assert ingress.pinless_requests == [
        {
            "To": NUMBER,
            "From": "+14155550123",
            "callId": call.call_id,
            "callDomain": emu.state.domain_id,
            "sipHeaders": {"X-Account": "42"},
        }
    ]
    parsed = parse_pinless(emu.dialin.requests[0].body)
    assert isinstance(parsed, PinlessCall)
    assert parsed.call_id == call.call_id
    headers = emu.dialin.requests[0].headers
    assert {"x-pinless-signature", "x-pinless-timestamp"} <= {h.lower() for h in headers}
    assert (call.status, call.pinless_status) == ("held", 200)


async def test_withheld_caller_sends_no_from(emu, ingress):
    await emu.place_call(NUMBER, None)
    assert "From" not in ingress.pinless_requests[0]
    assert "sipHeaders" not in ingress.pinless_requests[0]


async def test_full_dial_in_sequence_and_payloads(client, emu, ingress, clock):
    room = await client.create_room(
        RoomSpec(name="call-1", sip=SipConfig(display_name="+14155550123"))
    )
    await emu.advance(0.5)
    assert ingress.types() == ["dialin.ready"]
    assert ingress.of("dialin.ready")[0] == {
        "domain_id": emu.state.domain_id,
        "room": "call-1",
        "timestamp": int(clock.now()),
        "sip_endpoint": "sip:call-1@emulator.sip.daily.co",
    }
    call = await emu.place_call(
        NUMBER,
        "+14155550123",
        caller=Caller(keys=(Press(2, "1"), Press(4, "42#")), hangup=10),
        sip_headers={"X-Account": "42"},
    )
    await client.pinless_call_update(call.call_id, call.call_domain, room.sip_endpoint)
    assert emu.log.entries("pinlessCallUpdate")[0].answer == {"ok": "true"}
    await emu.advance(0.2)
    assert ingress.types() == ["dialin.ready", "dialin.connected", "participant.joined"]
    connected = ingress.of("dialin.connected")[0]
    assert set(connected) == CONNECTED_FIELDS
    assert connected["sip_from"] == "+14155550123"
    assert connected["display_name"] == "+14155550123"
    assert connected["sip_headers"] == {"X-Account": "42"}
    session = connected["session_id"]
    assert call.session_id == session
    await emu.advance(5)
    assert emu.inroom.dtmf("call-1") == "142#"
    assert all(e.data["sessionId"] == session for e in emu.inroom.since(0, name="dtmf-event"))
    await emu.advance(5)
    assert ingress.types()[-2:] == ["participant.left", "dialin.stopped"]
    stopped = ingress.of("dialin.stopped")[0]
    assert set(stopped) == CONNECTED_FIELDS
    assert stopped["session_id"] == session
    assert call.status == "ended"
    assert not any("dtmf" in t for t in ingress.types())


async def test_dial_in_driven_like_the_daemon_drives_it(client, emu, ingress):
    """Create the room on the pinless request, route the call on dialin.ready."""
    waiting: dict[str, Any] = {}

    async def on_pinless(request: dict[str, Any]) -> None:
        room = await make_room(client, f"call-{request['callId'][:8]}")
        waiting[room.name] = (request, room.sip_endpoint)

    async def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "dialin.ready":
            request, endpoint = waiting.pop(event["payload"]["room"])
            await client.pinless_call_update(request["callId"], request["callDomain"], endpoint)

    ingress.on_pinless, ingress.on_event = on_pinless, on_event
    emu.limits(False)
    call = await emu.place_call(NUMBER)
    await emu.advance(1)
    assert call.status == "connected"
    assert ingress.types() == ["dialin.ready", "dialin.connected", "participant.joined"]
    assert emu.log.count("pinlessCallUpdate", acted=True) == 1


async def test_each_sip_endpoint_is_ready_and_takes_one_caller(client, emu, ingress):
    emu.limits(False)
    room = await client.create_room(RoomSpec(name="call-1", sip=SipConfig(num_endpoints=2)))
    await emu.advance(1)
    assert [p["sip_endpoint"] for p in ingress.of("dialin.ready")] == [
        "sip:call-1@emulator.sip.daily.co",
        "sip:call-1-1@emulator.sip.daily.co",
    ]
    first, second, third = [await emu.place_call(NUMBER) for _ in range(3)]
    await client.pinless_call_update(first.call_id, first.call_domain, room.sip_endpoint)
    await client.pinless_call_update(
        second.call_id, second.call_domain, room.extra_sip_endpoints[0]
    )
    await emu.advance(1)
    with pytest.raises(DailyAPIError) as info:
        await client.pinless_call_update(third.call_id, third.call_domain, room.sip_endpoint)
    assert "already has a caller" in (info.value.info or "")


async def test_pinless_update_refusals(client, emu):
    emu.limits(False)
    room = await make_room(client)
    call = await emu.place_call(NUMBER)

    async def update(call_id: str, domain: str, uri: str) -> DailyAPIError:
        with pytest.raises(DailyAPIError) as info:
            await client.pinless_call_update(call_id, domain, uri)
        return info.value

    early = await update(call.call_id, call.call_domain, room.sip_endpoint)
    assert (early.status, "not ready" in (early.info or "")) == (400, True)
    await emu.advance(1)
    assert (await update("no-such-call", call.call_domain, room.sip_endpoint)).status == 404
    assert (await update(call.call_id, "other-domain", room.sip_endpoint)).status == 400
    assert (await update(call.call_id, call.call_domain, "sip:x@elsewhere.example")).status == 404
    await client.pinless_call_update(call.call_id, call.call_domain, room.sip_endpoint)
    again = await update(call.call_id, call.call_domain, room.sip_endpoint)
    assert (again.status, "already been routed" in (again.info or "")) == (400, True)
    assert emu.log.count("pinlessCallUpdate", acted=True) == 1
    assert call.updates == 1


async def test_caller_abandoning_on_hold_cannot_be_routed(client, emu, ingress):
    room = await make_room(client)
    call = await emu.place_call(NUMBER, caller=Caller(abandon=5))
    await emu.advance(6)
    assert call.status == "ended"
    with pytest.raises(DailyAPIError) as info:
        await client.pinless_call_update(call.call_id, call.call_domain, room.sip_endpoint)
    assert info.value.status == 404
    assert ingress.types() == ["dialin.ready"]


async def test_a_refused_pinless_request_rejects_the_call(emu, ingress):
    ingress.status = 500
    call = await emu.place_call(NUMBER)
    assert (call.status, call.pinless_status) == ("rejected", 500)


async def test_pinless_signature_with_another_secret_is_refused(clock):
    other = Ingress(clock, "b3RoZXItc2VjcmV0", "b3RoZXItc2VjcmV0")
    emu = Emulator(clock=clock, webhook_app=other.app, dialin_app=other.app)
    try:
        call = await emu.place_call(NUMBER)
        assert call.status == "rejected"
        assert call.pinless_status == 401
        assert other.refused == ["webhook refused: signature does not match"]
        client = emu.daily_client()
        await make_room(client)
        await emu.advance(1)
        assert other.events == []
        assert other.refused[-1] == "webhook refused: signature does not match"
        assert [d.status for d in emu.webhooks.deliveries] == [401]
    finally:
        await emu.aclose()


async def test_place_call_needs_a_dial_in_target(clock):
    emu = Emulator(clock=clock)
    with pytest.raises(NoDialInTargetError):
        await emu.place_call(NUMBER)
    emu.set_dialin_target(DIALIN_URL, app=Ingress(clock, "eA==", "eA==").app)
    assert (await emu.place_call(NUMBER)).status == "rejected"  # wrong secret: 401
    await emu.aclose()


async def test_sip_caller_and_pstn_caller_are_told_apart(client, emu):
    sip = await connect_caller(emu, client, from_="sip:alice@pbx.example.com")
    pstn = await connect_caller(emu, client, room="call-2")
    assert (emu.state.legs[sip].via, emu.state.legs[pstn].via) == ("sip", "pstn")


class Handler:
    """Stands in for a daily-python EventHandler."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def on_dialin_ready(self, sip_endpoint: str) -> None:
        self.calls.append(("dialin_ready", (sip_endpoint,)))

    def on_dialin_connected(self, data: dict[str, object]) -> None:
        self.calls.append(("dialin_connected", (data["sessionId"],)))

    def on_dtmf_event(self, data: dict[str, object]) -> None:
        self.calls.append(("dtmf_event", (data["tone"],)))

    def on_participant_left(self, participant: dict[str, object], reason: str) -> None:
        self.calls.append(("participant_left", (participant["id"], reason)))


async def test_in_room_events_drive_a_daily_python_event_handler(client, emu):
    handler = Handler()
    emu.inroom.add_listener(to_event_handler(handler, room="call-1"))
    session = await connect_caller(emu, client, caller=Caller(keys=(Press(1, "9"),), hangup=2))
    await emu.advance(3)
    assert handler.calls == [
        ("dialin_ready", ("sip:call-1@emulator.sip.daily.co",)),
        ("dialin_connected", (session,)),
        ("dtmf_event", ("9",)),
        ("participant_left", (session, "leftCall")),
    ]
