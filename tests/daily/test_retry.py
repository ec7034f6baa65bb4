"""Retries are bounded, and a request that may have acted is never blindly repeated."""

from __future__ import annotations

import httpx
import pytest

from flowengine.daily import (
    NO_RETRY,
    DailyAPIError,
    DailyOutcomeUnknownError,
    DailyRateLimitError,
    DailyServerError,
    DailyTransportError,
    DialOutRequest,
    MeetingTokenSpec,
    RetryPolicy,
    RoomSpec,
)
from flowengine.daily.retry import ENDPOINTS, Repeat

from .conftest import error, raising

ROOM = {"name": "call-1", "url": "https://acme.daily.co/call-1"}

# Each client method with arguments, by whether a repeat could double an effect.
ONCE_CALLS = {
    "dialOut/start": lambda c: c.start_dial_out("call-1", DialOutRequest.to("+14155550199")),
    "dialOut/sendDTMF": lambda c: c.send_dtmf("call-1", "leg", "1"),
    "sipCallTransfer": lambda c: c.sip_call_transfer("call-1", "leg", "sip:sales@a.sip.daily.co"),
    "sipRefer": lambda c: c.sip_refer("call-1", "leg", "sip:queue@pbx.example.com"),
}
SAFE_CALLS = {
    "rooms/get": lambda c: c.get_room("call-1"),
    "rooms/create": lambda c: c.create_room(RoomSpec()),
    "rooms/delete": lambda c: c.delete_room("call-1"),
    "meeting-tokens/create": lambda c: c.create_meeting_token(MeetingTokenSpec(room_name="call-1")),
    "dialOut/stop": lambda c: c.stop_dial_out("call-1", "leg"),
    "dialin/pinlessCallUpdate": lambda c: c.pinless_call_update("c", "d", "sip:r@a.sip.daily.co"),
}
SUCCESS = {
    "dialOut/start": httpx.Response(200, json={"ok": "true", "sessionId": "leg"}),
    "rooms/get": httpx.Response(200, json=ROOM),
    "rooms/create": httpx.Response(200, json=ROOM),
    "meeting-tokens/create": httpx.Response(200, json={"token": "t"}),
}


def success(name: str) -> httpx.Response:
    return SUCCESS.get(name, httpx.Response(200, json={"ok": "true"}))


def test_every_endpoint_is_classified_and_tested():
    assert {e.name for e in ENDPOINTS if e.repeat is Repeat.ONCE} == set(ONCE_CALLS)
    assert {e.name for e in ENDPOINTS if e.repeat is Repeat.SAFE} == set(SAFE_CALLS)
    assert {e.name for e in ENDPOINTS if e.paced} == set(ONCE_CALLS)


@pytest.mark.parametrize("name", sorted(ONCE_CALLS))
@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError])
async def test_lost_answer_on_an_effectful_call_is_not_repeated(client, daily, name, failure):
    daily.reply(raising(failure, "server disconnected"), success(name))
    with pytest.raises(DailyOutcomeUnknownError) as caught:
        await ONCE_CALLS[name](client)
    assert len(daily.requests) == 1
    assert caught.value.attempts == 1
    assert caught.value.status is None
    assert "outcome unknown" in str(caught.value)
    assert "not sent again because a repeat could" in str(caught.value)


@pytest.mark.parametrize("name", sorted(ONCE_CALLS))
@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_on_an_effectful_call_is_not_repeated(client, daily, name, status):
    daily.reply(error(status, "server-error", "internal"), success(name))
    with pytest.raises(DailyOutcomeUnknownError) as caught:
        await ONCE_CALLS[name](client)
    assert len(daily.requests) == 1
    assert caught.value.status == status


async def test_read_timeout_on_dial_out_names_the_risk(client, daily):
    daily.reply(raising(httpx.ReadTimeout, "timed out"))
    with pytest.raises(DailyOutcomeUnknownError) as caught:
        await ONCE_CALLS["dialOut/start"](client)
    assert str(caught.value) == (
        "Daily POST /rooms/call-1/dialOut/start: outcome unknown after ReadTimeout: timed out; "
        "not sent again because a repeat could start a second call leg"
    )


@pytest.mark.parametrize("name", sorted(ONCE_CALLS))
@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
async def test_request_that_never_left_is_repeated_even_when_effectful(
    client, daily, fake_time, name, failure
):
    daily.reply(raising(failure), success(name))
    await ONCE_CALLS[name](client)
    assert len(daily.requests) == 2
    assert fake_time.sleeps == [0.375]  # base 0.5, equal jitter at rand=0.5


@pytest.mark.parametrize("name", sorted(ONCE_CALLS))
async def test_429_is_repeated_even_when_effectful(client, daily, name):
    daily.reply(error(429, "rate-limit-error", "slow down"), success(name))
    await ONCE_CALLS[name](client)
    assert len(daily.requests) == 2


@pytest.mark.parametrize("name", sorted(SAFE_CALLS))
@pytest.mark.parametrize(
    "failure",
    [
        raising(httpx.ReadTimeout),
        raising(httpx.RemoteProtocolError),
        raising(httpx.ConnectError),
        error(502, "server-error", "bad gateway"),
        error(429, "rate-limit-error", "slow down"),
    ],
)
async def test_safe_calls_are_repeated_after_transient_failures(client, daily, name, failure):
    daily.reply(failure, success(name))
    await SAFE_CALLS[name](client)
    assert len(daily.requests) == 2


async def test_room_get_read_timeout_is_retried_then_succeeds(client, daily, fake_time):
    daily.reply(raising(httpx.ReadTimeout), raising(httpx.ReadTimeout), success("rooms/get"))
    room = await client.get_room("call-1")
    assert room.name == "call-1"
    assert len(daily.requests) == 3
    assert fake_time.sleeps == [0.375, 0.75]


async def test_retries_stop_at_max_attempts(make_client, daily, fake_time):
    client = make_client(retry=RetryPolicy(max_attempts=3))
    daily.reply(*[error(503, "server-error", "unavailable")] * 10)
    with pytest.raises(DailyServerError) as caught:
        await client.get_room("call-1")
    assert len(daily.requests) == 3
    assert caught.value.status == 503
    assert fake_time.sleeps == [0.375, 0.75]


async def test_retries_stop_when_the_time_budget_is_spent(make_client, daily, fake_time):
    policy = RetryPolicy(max_attempts=100, max_elapsed=5.0, base_delay=1.0, max_delay=4.0)
    client = make_client(retry=policy)
    daily.reply(*[raising(httpx.ConnectError, "refused")] * 100)
    with pytest.raises(DailyTransportError) as caught:
        await client.get_room("call-1")
    # Waits of 0.75, 1.5 and 3.0 would pass 5 s of budget with the third.
    assert fake_time.sleeps == [0.75, 1.5]
    assert len(daily.requests) == 3
    assert str(caught.value) == (
        "Daily GET /rooms/call-1 unreachable after 3 attempt(s): ConnectError: refused"
    )


def test_backoff_grows_and_is_capped():
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    assert [policy.delay(n, 0.0) for n in range(1, 7)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert [policy.delay(n, 1.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


async def test_persistent_429_becomes_a_rate_limit_error_with_retry_after(
    make_client, daily, fake_time
):
    client = make_client(retry=RetryPolicy(max_attempts=2))
    daily.reply(*[error(429, "rate-limit-error", "Too many requests", **{"Retry-After": "2"})] * 2)
    with pytest.raises(DailyRateLimitError) as caught:
        await ONCE_CALLS["sipRefer"](client)
    assert fake_time.sleeps == [2.0]  # Retry-After wins over the shorter backoff
    assert (caught.value.status, caught.value.retry_after) == (429, 2.0)
    assert caught.value.error_type == "rate-limit-error"


async def test_client_errors_are_never_retried(client, daily):
    daily.reply(error(400, "invalid-request-error", "bad"), success("rooms/get"))
    with pytest.raises(DailyAPIError):
        await client.get_room("call-1")
    assert len(daily.requests) == 1


async def test_no_retry_policy_sends_once(make_client, daily):
    client = make_client(retry=NO_RETRY)
    daily.reply(raising(httpx.ConnectError), success("rooms/get"))
    with pytest.raises(DailyTransportError):
        await client.get_room("call-1")
    assert len(daily.requests) == 1


async def test_unsupported_protocol_is_not_retried(client, daily):
    daily.reply(raising(httpx.UnsupportedProtocol), success("rooms/get"))
    with pytest.raises(DailyTransportError):
        await client.get_room("call-1")
    assert len(daily.requests) == 1


async def test_repeated_named_room_create_finds_the_room_made_by_the_lost_attempt(client, daily):
    daily.reply(
        raising(httpx.ReadTimeout),
        error(400, "invalid-request-error", "a room named call-1 already exists"),
        httpx.Response(200, json=ROOM),
    )
    room = await client.create_room(RoomSpec(name="call-1"))
    assert room.name == "call-1"
    assert [(r.method, r.url.path) for r in daily.requests] == [
        ("POST", "/v1/rooms"),
        ("POST", "/v1/rooms"),
        ("GET", "/v1/rooms/call-1"),
    ]


async def test_repeated_unnamed_room_create_refused_is_an_unknown_outcome(client, daily):
    daily.reply(raising(httpx.ReadTimeout), error(400, "invalid-request-error", "nope"))
    with pytest.raises(DailyOutcomeUnknownError) as caught:
        await client.create_room(RoomSpec())
    assert caught.value.status == 400
    assert isinstance(caught.value.__cause__, DailyAPIError)


async def test_first_create_refused_is_a_plain_api_error(client, daily):
    daily.reply(error(400, "invalid-request-error", "a room named call-1 already exists"))
    with pytest.raises(DailyAPIError) as caught:
        await client.create_room(RoomSpec(name="call-1"))
    assert not isinstance(caught.value, DailyOutcomeUnknownError)
    assert len(daily.requests) == 1


async def test_pinless_update_refused_after_a_lost_answer_is_an_unknown_outcome(client, daily):
    daily.reply(raising(httpx.ReadTimeout), error(400, "invalid-request-error", "call routed"))
    with pytest.raises(DailyOutcomeUnknownError, match="HTTP 400 invalid-request-error to a"):
        await SAFE_CALLS["dialin/pinlessCallUpdate"](client)
    assert len(daily.requests) == 2


async def test_stop_after_a_lost_answer_and_404_counts_as_stopped_elsewhere(client, daily):
    daily.reply(raising(httpx.ReadTimeout), error(404, "not-found", "no such session"))
    assert await client.stop_dial_out("call-1", "leg") is False
    assert len(daily.requests) == 2


async def test_unreadable_success_is_an_unknown_outcome(client, daily):
    daily.reply(httpx.Response(200, text="<html>ok</html>"))
    with pytest.raises(DailyOutcomeUnknownError, match="not a JSON object"):
        await ONCE_CALLS["sipCallTransfer"](client)
