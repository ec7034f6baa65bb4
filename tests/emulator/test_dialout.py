"""Dial-out: webhook order and payload fields for each callee script, stop, DTMF, remote IVR."""

from __future__ import annotations

from flowengine.daily import DialOutRequest
from flowengine.emulator import Callee, Press, RemoteIvr
from flowengine.runtime.events import from_webhook, is_busy

from .conftest import make_room

NUMBER = "+14155550100"
DIALOUT_FIELDS = {
    "domain_id",
    "room",
    "timestamp",
    "session_id",
    "destination",
    "origin",
    "caller_id",
}


async def dial(client, emu, callee: Callee | None = None, **options) -> str:
    emu.limits(False)
    if callee is not None:
        emu.callee(NUMBER, callee)
    await make_room(client, sip=False)
    return await client.start_dial_out("call-1", DialOutRequest.to(NUMBER, **options))


async def test_answered_sends_connected_then_answered_then_joined(client, emu, ingress, clock):
    start = clock.now()
    session = await dial(client, emu, Callee.answers(after=2), user_id="agent-7")
    await emu.settle()
    assert ingress.types() == []  # ringing starts a moment later
    await emu.advance(0.1)
    assert ingress.types() == ["dialout.connected"]
    await emu.advance(1.9)
    assert ingress.types() == ["dialout.connected"]
    await emu.advance(0.1)
    assert ingress.types() == ["dialout.connected", "dialout.answered", "participant.joined"]
    connected, answered = ingress.of("dialout.connected")[0], ingress.of("dialout.answered")[0]
    assert set(connected) == DIALOUT_FIELDS | {"user_id"}
    assert connected == answered | {"timestamp": int(start + 0.1)}
    assert answered == {
        "domain_id": emu.state.domain_id,
        "room": "call-1",
        "timestamp": int(start + 2.1),
        "session_id": session,
        "destination": NUMBER,
        "origin": "+15550100000",
        "caller_id": None,
        "user_id": "agent-7",
    }
    joined = ingress.of("participant.joined")[0]
    assert joined["session_id"] == session
    assert joined["user_id"] == "agent-7"
    assert set(joined) >= {"joined_at", "user_name", "owner", "permissions", "will_eject_at"}
    envelope = ingress.events[1]
    assert set(envelope) == {"version", "type", "id", "payload", "event_ts"}
    assert envelope["version"] == "1.0.0"
    assert envelope["event_ts"] == clock.now()
    assert session in envelope["id"]
    assert from_webhook(envelope).session_id == session
    assert emu.state.legs[session].status == "answered"


async def test_busy_sends_an_error_the_runtime_reads_as_busy(client, emu, ingress):
    session = await dial(client, emu, Callee.busy(after=1))
    await emu.advance(5)
    assert ingress.types() == ["dialout.connected", "dialout.error"]
    error = ingress.of("dialout.error")[0]
    assert set(error) == {"domain_id", "room", "timestamp", "session_id", "error_msg"}
    assert error["session_id"] == session
    assert is_busy(error)
    assert emu.state.legs[session].end_reason == "busy"
    assert emu.state.legs[session].status == "ended"


async def test_failure_sends_an_error_that_is_not_busy(client, emu, ingress):
    await dial(client, emu, Callee.fails(after=1, message="Service Unavailable (SIP 503)"))
    await emu.advance(5)
    assert ingress.types() == ["dialout.connected", "dialout.error"]
    error = ingress.of("dialout.error")[0]
    assert error["error_msg"] == "Service Unavailable (SIP 503)"
    assert not is_busy(error)


async def test_no_answer_rings_until_stopped(client, emu, ingress):
    session = await dial(client, emu, Callee.never_answers())
    await emu.advance(120)
    assert ingress.types() == ["dialout.connected"]
    assert await client.stop_dial_out("call-1", session) is True
    await emu.settle()
    assert ingress.types() == ["dialout.connected", "dialout.stopped"]
    stopped = ingress.of("dialout.stopped")[0]
    assert stopped["session_id"] == session
    assert set(stopped) >= {"domain_id", "room", "timestamp", "session_id", "destination"}
    assert emu.state.legs[session].end_reason == "stopped"


async def test_stop_before_ringing_cancels_the_script(client, emu, ingress):
    session = await dial(client, emu, Callee.answers(after=1))
    await client.stop_dial_out("call-1", session)
    await emu.advance(5)
    assert ingress.types() == ["dialout.stopped"]


async def test_stopping_an_answered_leg_sends_left_then_stopped(client, emu, ingress):
    session = await dial(client, emu, Callee.answers())
    await emu.advance(1)
    await client.stop_dial_out("call-1", session)
    await emu.settle()
    assert ingress.types()[-2:] == ["participant.left", "dialout.stopped"]
    assert ingress.of("participant.left")[0]["duration"] == 1  # whole seconds, 0.1 s to 1 s
    assert await client.stop_dial_out("call-1", session) is False


async def test_callee_hangs_up_after_its_time(client, emu, ingress):
    await dial(client, emu, Callee.answers(after=1, hangup=30))
    await emu.advance(30)
    assert ingress.types()[-1] == "participant.joined"
    await emu.advance(1.2)
    assert ingress.types()[-2:] == ["participant.left", "dialout.stopped"]
    assert ingress.of("participant.left")[0]["duration"] == 30


async def test_callee_keys_arrive_in_room_not_as_webhooks(client, emu, ingress):
    session = await dial(client, emu, Callee.answers(keys=(Press(1.0, "1#", gap=0.5),)))
    await emu.advance(3)
    assert emu.inroom.dtmf("call-1") == "1#"
    presses = emu.inroom.since(0, "call-1", "dtmf-event")
    assert presses[0].data == {
        "sessionId": session,
        "tone": "1",
        "volume": 10,
        "method": "telephone-event",
    }
    assert presses[1].time - presses[0].time == 0.5
    assert not any("dtmf" in t for t in ingress.types())


async def test_in_room_events_mirror_daily_python(client, emu):
    seen = []
    remove = emu.inroom.add_listener(lambda e: seen.append(e.name))
    queue = emu.inroom.subscribe("call-1")
    session = await dial(client, emu, Callee.answers(after=1))
    await emu.advance(2)
    await client.stop_dial_out("call-1", session)
    await emu.settle()
    remove()
    expected = [
        "dialout-connected",
        "dialout-answered",
        "participant-joined",
        "participant-left",
        "dialout-stopped",
    ]
    assert sorted(seen) == sorted(expected)
    assert seen.index("dialout-connected") < seen.index("dialout-answered")
    assert queue.qsize() == len(expected)
    emu.inroom.unsubscribe(queue)


async def test_remote_ivr_follows_the_tones_it_is_sent(client, emu):
    ivr = RemoteIvr(
        {
            "main": {"1": "billing", "2": "sales"},
            "billing": {"0": "main", "9": "hangup"},
            "sales": {},
        },
        start="main",
    )
    session = await dial(client, emu, Callee.answers(after=1, ivr=ivr))
    await emu.advance(2)
    leg = emu.state.legs[session]
    assert leg.played == ["main"]
    await client.send_dtmf("call-1", session, "1", digit_duration_ms=250)
    await emu.advance(0.125)
    assert leg.played == ["main"]  # a tone takes its duration to be heard
    await emu.advance(0.125)
    assert leg.played == ["main", "billing"]
    await emu.advance(2)
    await client.send_dtmf("call-1", session, "709", digit_duration_ms=100)
    await emu.advance(1)
    assert leg.played == ["main", "billing", "billing:invalid", "main", "main:invalid"]
    await emu.advance(2)
    await client.send_dtmf("call-1", session, "19")
    await emu.advance(2)
    assert leg.played[-2:] == ["billing", "hangup"]
    assert leg.status == "ended"
    assert [t for _, t in leg.tones_heard] == ["1", "709", "19"]


async def test_extension_digits_are_dialled_after_answer(client, emu):
    ivr = RemoteIvr({"main": {"4": "extension"}, "extension": {}})
    session = await dial(
        client,
        emu,
        Callee.answers(ivr=ivr),
        extension="4",
        wait_before_extension_dial_sec=2,
    )
    await emu.advance(2)
    assert emu.state.legs[session].played == ["main"]
    await emu.advance(1)
    assert emu.state.legs[session].played == ["main", "extension"]


async def test_sip_dial_out_origin_is_the_room_sip_uri(client, emu, ingress):
    emu.limits(False)
    await make_room(client)
    await client.start_dial_out("call-1", DialOutRequest.to("sip:desk@pbx.example.com"))
    await emu.advance(1)
    assert ingress.of("dialout.connected")[0]["origin"] == "sip:call-1@emulator.sip.daily.co"


async def test_deleting_the_room_hangs_up_its_legs(client, emu, ingress):
    await dial(client, emu, Callee.answers())
    await emu.advance(1)
    await client.delete_room("call-1")
    await emu.settle()
    assert ingress.types()[-2:] == ["participant.left", "dialout.stopped"]
