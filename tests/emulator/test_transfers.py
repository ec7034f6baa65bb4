"""sipCallTransfer and sipRefer: calltransfer.* order and fields, failures, REFER's silence."""

from __future__ import annotations

import pytest

from flowengine.daily import DailyAPIError, DialOutRequest
from flowengine.emulator import Callee, Caller, Press

from .conftest import connect_caller, make_room

AGENT = "+14155550199"
PBX = "sip:queue@pbx.example.com"
TRIGGER_FIELDS = {
    "domain_id",
    "room",
    "timestamp",
    "session_id",
    "mtg_session_id",
    "to_endpoint",
    "from_endpoint",
    "is_sip_refer",
}
LEAVE = ["participant.left", "dialin.stopped"]


def after_connect(ingress) -> list[str]:
    """Webhook types after the caller joined (ready, connected and joined left out)."""
    types = ingress.types()
    return types[types.index("participant.joined") + 1 :]


async def test_transfer_answered_then_completed_when_the_caller_hangs_up(client, emu, ingress):
    emu.callee(AGENT, Callee.answers(after=3))
    session = await connect_caller(emu, client, caller=Caller(hangup=60))
    await client.sip_call_transfer("call-1", session, AGENT)
    await emu.settle()
    assert after_connect(ingress) == ["calltransfer.triggered"]
    await emu.advance(0.1)
    assert after_connect(ingress) == ["calltransfer.triggered", "calltransfer.initiated", *LEAVE]
    await emu.advance(3)
    assert after_connect(ingress)[-1] == "calltransfer.answered"
    assert emu.state.legs[session].status == "transferred"
    await emu.advance(60)
    assert after_connect(ingress) == [
        "calltransfer.triggered",
        "calltransfer.initiated",
        *LEAVE,
        "calltransfer.answered",
        "calltransfer.completed",
    ]
    triggered = ingress.of("calltransfer.triggered")[0]
    assert set(triggered) == TRIGGER_FIELDS
    assert triggered["is_sip_refer"] is False
    assert triggered["to_endpoint"] == AGENT
    assert triggered["from_endpoint"] == "+14155550123"
    assert triggered["session_id"] == session
    assert triggered["mtg_session_id"] == emu.state.rooms["call-1"].mtg_session_id
    assert set(ingress.of("calltransfer.answered")[0]) == TRIGGER_FIELDS - {"is_sip_refer"}
    assert set(ingress.of("calltransfer.completed")[0]) == TRIGGER_FIELDS - {"is_sip_refer"}
    assert emu.state.calls[emu.state.legs[session].call_id or ""].status == "ended"


async def test_transfer_target_hanging_up_completes_it(client, emu, ingress):
    emu.callee(AGENT, Callee.answers(after=1, hangup=10))
    session = await connect_caller(emu, client)
    await client.sip_call_transfer("call-1", session, AGENT)
    await emu.advance(12)
    assert after_connect(ingress)[-2:] == ["calltransfer.answered", "calltransfer.completed"]
    assert emu.state.legs[session].end_reason == "transfer target hung up"


@pytest.mark.parametrize("callee", [Callee.busy(after=2), Callee.fails(after=2)])
async def test_failed_transfer_completes_without_answered(client, emu, ingress, callee):
    emu.callee(AGENT, callee)
    session = await connect_caller(emu, client)
    await client.sip_call_transfer("call-1", session, AGENT)
    await emu.advance(10)
    assert after_connect(ingress) == [
        "calltransfer.triggered",
        "calltransfer.initiated",
        *LEAVE,
        "calltransfer.completed",
    ]
    assert emu.state.legs[session].transfers[0].status == "failed"


async def test_unanswered_transfer_stays_initiated(client, emu, ingress):
    emu.callee(AGENT, Callee.never_answers())
    session = await connect_caller(emu, client)
    await client.sip_call_transfer("call-1", session, AGENT)
    await emu.advance(120)
    assert after_connect(ingress) == ["calltransfer.triggered", "calltransfer.initiated", *LEAVE]
    assert emu.state.legs[session].transfers[0].status == "initiated"


async def test_room_to_room_transfer_joins_the_other_room(client, emu, ingress):
    session = await connect_caller(emu, client, caller=Caller(keys=(Press(5, "7"),)))
    other = await make_room(client, "sales", sip=True)
    await emu.advance(1)
    await client.sip_call_transfer("call-1", session, other.sip_endpoint)
    await emu.advance(1)
    assert after_connect(ingress)[-2:] == ["calltransfer.answered", "participant.joined"]
    joined = [e for e in ingress.events if e["type"] == "participant.joined"][-1]["payload"]
    assert (joined["room"], joined["session_id"]) == ("sales", session)
    leg = emu.state.legs[session]
    assert (leg.room, leg.status) == ("sales", "answered")
    await emu.advance(5)
    assert emu.inroom.dtmf("sales") == "7"
    assert emu.inroom.dtmf("call-1") == ""


async def test_transfer_of_a_dial_out_leg_sends_dialout_stopped(client, emu, ingress):
    emu.limits(False)
    await make_room(client, sip=False)
    session = await client.start_dial_out("call-1", DialOutRequest.to("+14155550100"))
    await emu.advance(1)
    await client.sip_call_transfer("call-1", session, AGENT)
    await emu.advance(1)
    assert ingress.types()[-5:] == [
        "calltransfer.triggered",
        "calltransfer.initiated",
        "participant.left",
        "dialout.stopped",
        "calltransfer.answered",
    ]


async def test_refer_sends_triggered_and_initiated_only(client, emu, ingress):
    session = await connect_caller(
        emu, client, from_="sip:alice@pbx.example.com", caller=Caller(hangup=30)
    )
    await client.sip_refer("call-1", session, PBX)
    await emu.advance(60)
    assert after_connect(ingress) == ["calltransfer.triggered", "calltransfer.initiated", *LEAVE]
    for payload in ingress.of("calltransfer.triggered") + ingress.of("calltransfer.initiated"):
        assert set(payload) == TRIGGER_FIELDS
        assert payload["is_sip_refer"] is True
        assert payload["to_endpoint"] == PBX
    assert not ingress.of("calltransfer.answered")
    assert not ingress.of("calltransfer.completed")
    assert emu.state.legs[session].end_reason == "referred"


async def test_refused_refer_leaves_the_caller_in_the_room(client, emu, ingress):
    emu.callee(PBX, Callee.fails(after=1))
    session = await connect_caller(emu, client, from_="sip:alice@pbx.example.com")
    await client.sip_refer("call-1", session, PBX)
    await emu.advance(5)
    assert after_connect(ingress) == ["calltransfer.triggered"]
    assert emu.state.legs[session].status == "answered"
    emu.callee(PBX, Callee.answers())
    await client.sip_refer("call-1", session, PBX)
    await emu.advance(1)
    assert after_connect(ingress)[-3:] == ["calltransfer.initiated", *LEAVE]


async def test_refer_needs_a_sip_leg_and_a_destination_outside_daily(client, emu):
    pstn = await connect_caller(emu, client)
    with pytest.raises(DailyAPIError) as info:
        await client.sip_refer("call-1", pstn, PBX)
    assert "PSTN" in (info.value.info or "")
    sip = await connect_caller(emu, client, from_="sip:bob@pbx.example.com", room="call-2")
    with pytest.raises(DailyAPIError) as info:
        await client.sip_refer("call-2", sip, "sip:other@acme.sip.daily.co")
    assert info.value.status == 400
    assert "outside Daily's SIP network" in (info.value.info or "")
    assert emu.log.count("sipRefer", acted=True) == 0


async def test_one_transfer_at_a_time_and_only_of_connected_legs(client, emu):
    emu.callee(AGENT, Callee.never_answers())
    session = await connect_caller(emu, client)
    await client.sip_call_transfer("call-1", session, AGENT)
    with pytest.raises(DailyAPIError) as info:
        await client.sip_call_transfer("call-1", session, AGENT)
    assert "already in progress" in (info.value.info or "")
    ringing = await client.start_dial_out("call-1", DialOutRequest.to("+14155550100"))
    with pytest.raises(DailyAPIError) as info:
        await client.sip_call_transfer("call-1", ringing, AGENT)
    assert "not connected" in (info.value.info or "")
    with pytest.raises(DailyAPIError) as info:
        await client.sip_call_transfer("call-1", "nobody", AGENT)
    assert info.value.status == 404
