"""DailyClient: the exact request of every method, answers decoded, errors mapped."""

from __future__ import annotations

import httpx
import pytest

from flowengine.daily import (
    Codecs,
    DailyAPIError,
    DailyClient,
    DailyConfigError,
    DailyOutcomeUnknownError,
    DailyRequestError,
    DialOutRequest,
    MeetingTokenSpec,
    RoomSpec,
    SipConfig,
)

from .conftest import API_KEY, BASE, MockDaily, error

ROOM_ANSWER = {
    "id": "d61cd7b2-a273-42b4-89bd-be763fd562c1",
    "name": "call-6f1c",
    "api_created": True,
    "privacy": "private",
    "url": "https://acme.daily.co/call-6f1c",
    "created_at": "2026-02-03T10:00:00.000Z",
    "config": {
        "exp": 1770113100,
        "sip": {"display_name": "+14155550123", "sip_mode": "dial-in", "num_endpoints": 2},
        "sip_uri": {
            "endpoint": "call-6f1c@acme.sip.daily.co",
            "extra_endpoints": ["call-6f1c-1@acme.sip.daily.co"],
        },
    },
}


def only_request(daily: MockDaily) -> httpx.Request:
    assert len(daily.requests) == 1
    return daily.requests[0]


def assert_request(daily: MockDaily, method: str, path: str, body: object) -> None:
    request = only_request(daily)
    assert request.method == method
    assert str(request.url) == BASE + path
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert daily.bodies() == [body]
    if body is not None:
        assert request.headers["content-type"] == "application/json"


async def test_create_room_sends_sip_and_expiry_properties(client, daily):
    daily.reply(httpx.Response(200, json=ROOM_ANSWER))
    spec = RoomSpec(
        name="call-6f1c",
        exp=1770113100,
        eject_at_room_exp=True,
        enable_dialout=True,
        sip=SipConfig(display_name="+14155550123", num_endpoints=2, codecs=Codecs(audio=("OPUS",))),
    )
    room = await client.create_room(spec)
    assert_request(
        daily,
        "POST",
        "/rooms",
        {
            "name": "call-6f1c",
            "privacy": "private",
            "properties": {
                "exp": 1770113100,
                "eject_at_room_exp": True,
                "enable_dialout": True,
                "sip": {
                    "display_name": "+14155550123",
                    "video": False,
                    "sip_mode": "dial-in",
                    "num_endpoints": 2,
                    "codecs": {"audio": ["OPUS"]},
                },
            },
        },
    )
    assert room.name == "call-6f1c"
    assert room.url == "https://acme.daily.co/call-6f1c"
    assert room.id == "d61cd7b2-a273-42b4-89bd-be763fd562c1"
    assert room.sip_endpoint == "sip:call-6f1c@acme.sip.daily.co"
    assert room.extra_sip_endpoints == ("sip:call-6f1c-1@acme.sip.daily.co",)


async def test_create_room_without_name_lets_daily_choose(client, daily):
    daily.reply(httpx.Response(200, json={"name": "xYz", "url": "https://acme.daily.co/xYz"}))
    room = await client.create_room(RoomSpec())
    assert daily.bodies() == [{"privacy": "private", "properties": {}}]
    assert room.sip_endpoint is None
    assert room.extra_sip_endpoints == ()


async def test_get_room(client, daily):
    daily.reply(httpx.Response(200, json=ROOM_ANSWER))
    room = await client.get_room("call-6f1c")
    assert_request(daily, "GET", "/rooms/call-6f1c", None)
    assert room.sip_endpoint == "sip:call-6f1c@acme.sip.daily.co"


async def test_delete_room(client, daily):
    daily.reply(httpx.Response(200, json={"deleted": True, "name": "call-6f1c"}))
    assert await client.delete_room("call-6f1c") is True
    assert_request(daily, "DELETE", "/rooms/call-6f1c", None)


async def test_delete_room_that_is_gone_returns_false(client, daily):
    daily.reply(error(404, "not-found", "room call-6f1c not found"))
    assert await client.delete_room("call-6f1c") is False


async def test_create_meeting_token_for_an_owner(client, daily):
    daily.reply(httpx.Response(200, json={"token": "eyJhbGciOi.token"}))
    token = await client.create_meeting_token(
        MeetingTokenSpec(room_name="call-6f1c", exp=1770113100, user_name="flowengine")
    )
    assert token == "eyJhbGciOi.token"
    assert_request(
        daily,
        "POST",
        "/meeting-tokens",
        {
            "properties": {
                "room_name": "call-6f1c",
                "is_owner": True,
                "exp": 1770113100,
                "user_name": "flowengine",
            }
        },
    )


async def test_start_dial_out_to_a_number_returns_the_session_id(client, daily):
    daily.reply(httpx.Response(200, json={"ok": "true", "sessionId": "5d4f-leg"}))
    request = DialOutRequest(
        phone_number="+14155550199",
        display_name="Sales",
        user_id="agent-7",
        caller_id="0b1e2c4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5",
        extension="123#",
        wait_before_extension_dial_sec=2,
    )
    assert await client.start_dial_out("call-6f1c", request) == "5d4f-leg"
    assert_request(
        daily,
        "POST",
        "/rooms/call-6f1c/dialOut/start",
        {
            "phoneNumber": "+14155550199",
            "displayName": "Sales",
            "userId": "agent-7",
            "callerId": "0b1e2c4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5",
            "extension": "123#",
            "waitBeforeExtensionDialSec": 2,
        },
    )


async def test_start_dial_out_to_a_sip_uri_with_video_and_codecs(client, daily):
    daily.reply(httpx.Response(200, json={"ok": "true", "sessionId": "sip-leg"}))
    request = DialOutRequest.to(
        "sip:queue@pbx.example.com?X-Flow=support",
        video=True,
        codecs=Codecs(audio=("OPUS", "G722"), video=("H264",)),
    )
    await client.start_dial_out("call-6f1c", request)
    assert daily.bodies() == [
        {
            "sipUri": "sip:queue@pbx.example.com?X-Flow=support",
            "video": True,
            "codecs": {"audio": ["OPUS", "G722"], "video": ["H264"]},
        }
    ]


async def test_start_dial_out_answer_without_session_id_is_an_unknown_outcome(client, daily):
    daily.reply(httpx.Response(200, json={"ok": "true"}))
    with pytest.raises(DailyOutcomeUnknownError, match="without 'sessionId'"):
        await client.start_dial_out("r1", DialOutRequest.to("+14155550199"))


async def test_stop_dial_out(client, daily):
    assert await client.stop_dial_out("call-6f1c", "5d4f-leg") is True
    assert_request(daily, "POST", "/rooms/call-6f1c/dialOut/stop", {"sessionId": "5d4f-leg"})


async def test_stop_dial_out_of_an_unknown_leg_returns_false(client, daily):
    daily.reply(error(404, "not-found", "no such session"))
    assert await client.stop_dial_out("call-6f1c", "5d4f-leg") is False


async def test_send_dtmf(client, daily):
    await client.send_dtmf(
        "call-6f1c", "5d4f-leg", "12#", method="telephone-event", digit_duration_ms=200
    )
    assert_request(
        daily,
        "POST",
        "/rooms/call-6f1c/dialOut/sendDTMF",
        {
            "sessionId": "5d4f-leg",
            "tones": "12#",
            "method": "telephone-event",
            "digitDurationMs": 200,
        },
    )


async def test_send_dtmf_leaves_optional_fields_to_daily(client, daily):
    await client.send_dtmf("call-6f1c", "5d4f-leg", "9")
    assert daily.bodies() == [{"sessionId": "5d4f-leg", "tones": "9"}]


async def test_sip_call_transfer(client, daily):
    await client.sip_call_transfer(
        "call-6f1c",
        "caller-leg",
        "+14155550199",
        caller_id="0b1e2c4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5",
        extension="42",
        wait_before_extension_dial_sec=1,
    )
    assert_request(
        daily,
        "POST",
        "/rooms/call-6f1c/sipCallTransfer",
        {
            "sessionId": "caller-leg",
            "toEndPoint": "+14155550199",
            "callerId": "0b1e2c4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5",
            "extension": "42",
            "waitBeforeExtensionDialSec": 1,
        },
    )


async def test_sip_call_transfer_to_another_room(client, daily):
    await client.sip_call_transfer("call-6f1c", "caller-leg", "sip:sales@acme.sip.daily.co")
    assert daily.bodies() == [
        {"sessionId": "caller-leg", "toEndPoint": "sip:sales@acme.sip.daily.co"}
    ]


async def test_sip_refer(client, daily):
    await client.sip_refer("call-6f1c", "caller-leg", "sip:queue@pbx.example.com")
    assert_request(
        daily,
        "POST",
        "/rooms/call-6f1c/sipRefer",
        {"sessionId": "caller-leg", "toEndPoint": "sip:queue@pbx.example.com"},
    )


async def test_pinless_call_update(client, daily):
    await client.pinless_call_update("a1b2-call", "c3d4-domain", "sip:call-6f1c@acme.sip.daily.co")
    assert_request(
        daily,
        "POST",
        "/dialin/pinlessCallUpdate",
        {
            "callId": "a1b2-call",
            "callDomain": "c3d4-domain",
            "sipUri": "sip:call-6f1c@acme.sip.daily.co",
        },
    )


@pytest.mark.parametrize(
    ("status", "error_type", "info"),
    [
        (400, "invalid-request-error", "tones string must be upto 20 characters"),
        (400, "authorization-header-error", "Authorization header missing or malformed"),
        (401, "authentication-error", "Invalid API key"),
        (403, "forbidden-error", "dial-out is not enabled for this room"),
        (404, "not-found", "room call-6f1c not found"),
    ],
)
async def test_4xx_becomes_a_typed_error_after_one_request(client, daily, status, error_type, info):
    daily.reply(error(status, error_type, info))
    with pytest.raises(DailyAPIError) as caught:
        await client.sip_refer("call-6f1c", "caller-leg", "sip:queue@pbx.example.com")
    exc = caught.value
    assert (exc.status, exc.error_type, exc.info) == (status, error_type, info)
    assert (exc.method, exc.endpoint) == ("POST", "/rooms/call-6f1c/sipRefer")
    assert str(exc) == (
        f"Daily POST /rooms/call-6f1c/sipRefer failed: HTTP {status} {error_type}: {info}"
    )
    assert len(daily.requests) == 1


async def test_error_without_daily_body_keeps_the_text(client, daily):
    daily.reply(httpx.Response(403, text="<html>Forbidden</html>"))
    with pytest.raises(DailyAPIError) as caught:
        await client.get_room("r1")
    assert (caught.value.error_type, caught.value.info) == (None, "<html>Forbidden</html>")


async def test_invalid_requests_are_refused_before_sending(client, daily):
    with pytest.raises(DailyRequestError, match="invalid tones"):
        await client.send_dtmf("r1", "leg", "12x")
    with pytest.raises(DailyRequestError, match="invalid room"):
        await client.sip_refer("../domain", "leg", "sip:a@b.c")
    with pytest.raises(DailyRequestError, match="invalid toEndPoint"):
        await client.sip_refer("r1", "leg", "+14155550199")
    assert daily.requests == []


def test_bad_settings_are_refused():
    with pytest.raises(DailyConfigError, match="DAILY_API_KEY: is empty"):
        DailyClient("")
    with pytest.raises(DailyConfigError, match="whitespace"):
        DailyClient("key\r\nX-Injected: 1")
    with pytest.raises(DailyConfigError, match="must be https"):
        DailyClient(API_KEY, base_url="http://api.daily.co/v1")


async def test_plain_http_is_allowed_to_a_local_emulator():
    async with DailyClient(API_KEY, base_url="http://127.0.0.1:8765/v1/") as client:
        assert client.base_url == "http://127.0.0.1:8765/v1"
