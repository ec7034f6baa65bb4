"""The /v1 surface: each endpoint's happy path, Daily-shaped errors, auth, and the log."""

from __future__ import annotations

import httpx
import pytest

from flowengine.daily import (
    NO_RETRY,
    Codecs,
    DailyAPIError,
    DailyClient,
    DialOutRequest,
    MeetingTokenSpec,
    RoomSpec,
    SipConfig,
)
from flowengine.emulator import Callee, Emulator

from .conftest import make_room, unlimited


async def test_create_room_answers_daily_room_object_with_sip_endpoints(client, emu):
    spec = RoomSpec(
        name="call-6f1c",
        exp=int(emu.clock.now()) + 300,
        eject_at_room_exp=True,
        enable_dialout=True,
        sip=SipConfig(display_name="+14155550123", num_endpoints=2, codecs=Codecs(audio=("OPUS",))),
    )
    room = await client.create_room(spec)
    assert room.name == "call-6f1c"
    assert room.url == "https://emulator.daily.co/call-6f1c"
    assert room.privacy == "private"
    assert room.sip_endpoint == "sip:call-6f1c@emulator.sip.daily.co"
    assert room.extra_sip_endpoints == ("sip:call-6f1c-1@emulator.sip.daily.co",)
    assert room.config["sip_uri"] == {
        "endpoint": "call-6f1c@emulator.sip.daily.co",
        "extra_endpoints": ["call-6f1c-1@emulator.sip.daily.co"],
    }
    assert room.config["enable_dialout"] is True
    assert room.config["sip"]["codecs"] == {"audio": ["OPUS"]}


async def test_room_without_name_gets_one_and_rooms_can_be_read_listed_deleted(client, http):
    room = await client.create_room(RoomSpec())
    assert len(room.name) == 20
    assert room.sip_endpoint is None
    assert (await client.get_room(room.name)).id == room.id
    listed = (await http.get("/v1/rooms")).json()
    assert listed["total_count"] == 1
    assert listed["data"][0]["name"] == room.name
    assert await client.delete_room(room.name) is True
    assert await client.delete_room(room.name) is False
    with pytest.raises(DailyAPIError) as info:
        await client.get_room(room.name)
    assert (info.value.status, info.value.error_type) == (404, "not-found")


async def test_room_names_are_unique_and_checked(client, http):
    await make_room(client, "dup")
    with pytest.raises(DailyAPIError) as info:
        await client.create_room(RoomSpec(name="dup"))
    assert (info.value.status, info.value.error_type) == (400, "invalid-request-error")
    assert "already exists" in (info.value.info or "")
    bad = await http.post("/v1/rooms", json={"name": "a/b"})
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid-request-error"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"properties": {"sip": {"num_endpoints": 0}}}, "num_endpoints"),
        ({"properties": {"sip": {"sip_mode": "dial-in", "colour": "red"}}}, "colour"),
        ({"properties": {"sip": {"codecs": {"audio": ["MP3"]}}}}, "MP3"),
        ({"properties": {"sip": {"display_name": 5}}}, "strip"),
        ({"properties": {"sip": "yes"}}, "sip must be an object"),
        ({"properties": {"enable_dialout": "yes"}}, "enable_dialout"),
        ({"properties": {"exp": "soon"}}, "exp"),
        ({"properties": {"enable_dialout": True, "exp": 1_767_225_600 + 400 * 86400}}, "365"),
        ({"privacy": "secret"}, "privacy"),
        ({"nmae": "typo"}, "nmae"),
    ],
)
async def test_room_properties_are_validated_like_daily(http, body, needle):
    answer = await http.post("/v1/rooms", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid-request-error"
    assert needle in answer.json()["info"]


async def test_meeting_token_is_issued_and_remembered(client, emu):
    await make_room(client)
    token = await client.create_meeting_token(MeetingTokenSpec(room_name="call-1"))
    assert token.count(".") == 2
    assert emu.state.tokens[token] == {"room_name": "call-1", "is_owner": True}


async def test_meeting_token_needs_properties(http):
    answer = await http.post("/v1/meeting-tokens", json={"room_name": "x"})
    assert answer.status_code == 400


async def test_every_telephony_endpoint_happy_path(client, emu, http):
    emu.callee("sip:pbx@pbx.example.com", Callee.answers())
    emu.limits(False)  # the telephony tier is tested in test_limits.py
    await make_room(client)
    session = await client.start_dial_out(
        "call-1", DialOutRequest.to("sip:pbx@pbx.example.com", display_name="PBX")
    )
    started = emu.log.entries("dialOut/start")[0]
    assert started.answer == {"ok": "true", "sessionId": session}
    await emu.advance(1)
    await client.send_dtmf("call-1", session, "12#", digit_duration_ms=100)
    assert emu.log.entries("dialOut/sendDTMF")[0].answer == {"ok": "true", "sessionId": session}
    assert emu.state.legs[session].tones_heard == [(emu.clock.now(), "12#")]
    await client.sip_call_transfer("call-1", session, "+14155550199")
    await emu.advance(1)
    assert await client.stop_dial_out("call-1", session) is False  # transferred away
    other = await client.start_dial_out("call-1", DialOutRequest.to("sip:pbx@pbx.example.com"))
    await emu.advance(1)
    await client.sip_refer("call-1", other, "sip:queue@pbx.example.com")
    third = await client.start_dial_out("call-1", DialOutRequest.to("+14155550100"))
    assert await client.stop_dial_out("call-1", third) is True
    assert emu.log.statuses() == [200, 200, 200, 200, 404, 200, 200, 200, 200]


async def test_dial_out_needs_enable_dialout_and_a_room(client, emu):
    emu.limits(False)
    await make_room(client, "no-dialout", dialout=False)
    with pytest.raises(DailyAPIError) as info:
        await client.start_dial_out("no-dialout", DialOutRequest.to("+14155550100"))
    assert (info.value.status, info.value.error_type) == (400, "invalid-request-error")
    assert "enable_dialout" in (info.value.info or "")
    with pytest.raises(DailyAPIError) as info:
        await client.start_dial_out("nowhere", DialOutRequest.to("+14155550100"))
    assert (info.value.status, info.value.error_type) == (404, "not-found")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "sipUri/phoneNumber"),
        ({"phoneNumber": "4155550100"}, "E.164"),
        ({"sipUri": "pbx.example.com"}, "sip:"),
        ({"phoneNumber": "+14155550100", "callerId": "+14155550111"}, "purchased"),
        ({"phoneNumber": "+14155550100", "dialle": 1}, "dialle"),
        ({"phoneNumber": "+14155550100", "waitBeforeExtensionDialSec": 99}, "0..60"),
        ({"phoneNumber": "+14155550100", "codecs": {"audio": ["MP3"]}}, "MP3"),
        ({"phoneNumber": 14155550100}, "phoneNumber must be a string"),
        ({"phoneNumber": "+14155550100", "video": "yes"}, "video must be a boolean"),
        ({"phoneNumber": "+14155550100", "waitBeforeExtensionDialSec": "5"}, "integer"),
    ],
)
async def test_dial_out_body_is_checked_by_the_shared_models(client, http, body, needle):
    await make_room(client)
    answer = await http.post("/v1/rooms/call-1/dialOut/start", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid-request-error"
    assert needle in answer.json()["info"]


async def test_caller_id_must_be_a_purchased_number_when_numbers_are_known(clock):
    emu = Emulator(clock=clock, purchased_numbers={"num-1": "+18005550100"})
    emu.limits(False)
    client = emu.daily_client(retry=NO_RETRY, limiter=unlimited())
    try:
        await make_room(client)
        with pytest.raises(DailyAPIError) as info:
            await client.start_dial_out("call-1", DialOutRequest.to("+14155550100", caller_id="x"))
        assert "not a phone number of this domain" in (info.value.info or "")
        await client.start_dial_out("call-1", DialOutRequest.to("+14155550100", caller_id="num-1"))
    finally:
        await emu.aclose()


async def test_at_most_five_phone_legs_per_room(client, emu):
    emu.limits(False)
    await make_room(client)
    for _ in range(5):
        await client.start_dial_out("call-1", DialOutRequest.to("+14155550100"))
    with pytest.raises(DailyAPIError) as info:
        await client.start_dial_out("call-1", DialOutRequest.to("+14155550100"))
    assert "max_sip_pstn_sessions_per_room" in (info.value.info or "")


@pytest.mark.parametrize(
    ("body", "info"),
    [
        ({"tones": "1"}, "sessionId and tones are mandatory"),
        ({"sessionId": "s"}, "sessionId and tones are mandatory"),
        ({"sessionId": "s", "tones": "1" * 21}, "tones string must be upto 20 characters"),
        ({"sessionId": "s", "tones": "12E"}, "E is not valid DTMF tone"),
        ({"sessionId": "s", "tones": "1", "digitDurationMs": 49}, "digitDurationMs"),
        ({"sessionId": "s", "tones": "1", "digitDurationMs": 2001}, "digitDurationMs"),
        ({"sessionId": "s", "tones": "1", "method": "inband"}, "method"),
    ],
)
async def test_send_dtmf_validates_tones_like_daily(client, http, body, info):
    await make_room(client)
    answer = await http.post("/v1/rooms/call-1/dialOut/sendDTMF", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid-request-error"
    assert info in answer.json()["info"]


async def test_send_dtmf_accepts_every_key_and_the_duration_bounds(client, emu):
    emu.limits(False)
    await make_room(client)
    session = await client.start_dial_out("call-1", DialOutRequest.to("+14155550100"))
    await emu.advance(1)
    await client.send_dtmf("call-1", session, "0123456789ABCD*#", digit_duration_ms=50)
    await emu.advance(2)
    await client.send_dtmf("call-1", session, "1", digit_duration_ms=2000, method="sip-info")
    assert [t for _, t in emu.state.legs[session].tones_heard] == ["0123456789ABCD*#", "1"]


async def test_send_dtmf_needs_a_connected_session(client, emu):
    emu.limits(False)
    emu.callee("+14155550100", Callee.never_answers())
    await make_room(client)
    session = await client.start_dial_out("call-1", DialOutRequest.to("+14155550100"))
    with pytest.raises(DailyAPIError) as info:
        await client.send_dtmf("call-1", session, "1")
    assert (info.value.status, "not connected" in (info.value.info or "")) == (400, True)
    with pytest.raises(DailyAPIError) as info:
        await client.send_dtmf("call-1", "no-such-session", "1")
    assert info.value.status == 404


async def test_stop_of_an_unknown_session_is_404(client):
    await make_room(client)
    assert await client.stop_dial_out("call-1", "nobody") is False


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({}, 400, "authorization-header-error"),
        ({"Authorization": "Basic abc"}, 400, "authorization-header-error"),
        ({"Authorization": "Bearer"}, 400, "authorization-header-error"),
        ({"Authorization": "Bearer wrong-key"}, 401, "authentication-error"),
    ],
)
async def test_authorization_errors_are_daily_shaped(emu, headers, status, error):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emu.app)) as raw:
        answer = await raw.post("http://localhost/v1/rooms", json={}, headers=headers)
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert set(answer.json()) == {"error", "info"}
    assert emu.log.entries()[-1].acted is False
    assert emu.state.rooms == {}


async def test_the_client_with_a_wrong_key_gets_authentication_error(emu):
    client = emu.daily_client(api_key="not-the-key")
    with pytest.raises(DailyAPIError) as info:
        await client.get_room("x")
    assert (info.value.status, info.value.error_type) == (401, "authentication-error")


async def test_malformed_json_and_unknown_paths(http):
    bad = await http.post("/v1/rooms", content=b"{nope", headers={"Content-Type": "x"})
    assert (bad.status_code, bad.json()["error"]) == (400, "json-parsing-error")
    array = await http.post("/v1/rooms", json=[1])
    assert (array.status_code, array.json()["error"]) == (400, "json-parsing-error")
    missing = await http.get("/v1/nothing-here")
    assert (missing.status_code, missing.json()["error"]) == (404, "not-found")
    wrong = await http.put("/v1/rooms/x")
    assert wrong.status_code == 405
    assert set(wrong.json()) == {"error", "info"}


async def test_request_log_counts_and_side_effects(client: DailyClient, emu: Emulator):
    await make_room(client)
    await client.get_room("call-1")
    session = await client.start_dial_out("call-1", DialOutRequest.to("+14155550100"))
    await client.stop_dial_out("call-1", session)
    await client.stop_dial_out("call-1", session)
    log = emu.log
    assert log.count() == 5
    assert log.count("dialOut/start") == 1
    assert log.count("dialOut/stop") == 2
    assert log.count("dialOut/stop", status=404) == 1
    assert [e.endpoint for e in log.side_effects()] == [
        "rooms/create",
        "dialOut/start",
        "dialOut/stop",
    ]
    assert log.side_effects("dialOut/start")[0].body == {"phoneNumber": "+14155550100"}
    entry = log.entries("rooms/get")[0]
    assert (entry.method, entry.path, entry.status, entry.acted) == (
        "GET",
        "/v1/rooms/call-1",
        200,
        False,
    )
    assert entry.time == emu.clock.now()
    log.clear()
    assert len(log) == 0
