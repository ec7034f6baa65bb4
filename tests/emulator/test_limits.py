"""Daily's rate limits on the emulator's (virtual) clock: 429 rate-limit-error, per tier."""

from __future__ import annotations

import pytest

from flowengine.daily import (
    DailyRateLimitError,
    DialOutRequest,
    RetryPolicy,
    RoomSpec,
    telephony_limiter,
)
from flowengine.emulator import Emulator, RateLimits, Window

from .conftest import make_room, unlimited

DIAL = DialOutRequest.to("+14155550100")


async def test_telephony_tier_allows_one_start_per_second(client, emu, http):
    await make_room(client)
    await client.start_dial_out("call-1", DIAL)
    refused = await http.post("/v1/rooms/call-1/dialOut/start", json=DIAL.to_json())
    assert refused.status_code == 429
    assert refused.json() == {
        "error": "rate-limit-error",
        "info": "rate limit exceeded; retry with exponential backoff",
    }
    await emu.advance(0.5)
    with pytest.raises(DailyRateLimitError):
        await client.start_dial_out("call-1", DIAL)
    await emu.advance(0.5)
    await client.start_dial_out("call-1", DIAL)
    assert emu.log.statuses("dialOut/start") == [200, 429, 429, 200]
    assert emu.log.count("dialOut/start", acted=True) == 2
    assert len(emu.state.legs) == 2


async def test_telephony_tier_is_shared_by_transfer_refer_and_dtmf(client, emu):
    await make_room(client)
    session = await client.start_dial_out("call-1", DialOutRequest.to("sip:a@pbx.example.com"))
    await emu.advance(0.9)
    with pytest.raises(DailyRateLimitError):
        await client.send_dtmf("call-1", session, "1")
    with pytest.raises(DailyRateLimitError):
        await client.sip_refer("call-1", session, "sip:b@pbx.example.com")
    with pytest.raises(DailyRateLimitError):
        await client.sip_call_transfer("call-1", session, "+14155550101")
    await client.get_room("call-1")  # the general tier is separate
    await client.stop_dial_out("call-1", session)  # stop is not a "start" call


async def test_five_per_five_seconds_window(clock):
    limits = RateLimits(telephony=(Window(5, 5.0),))
    emu = Emulator(clock=clock, rate_limits=limits)
    client = emu.daily_client(retry=RetryPolicy(max_attempts=1), limiter=unlimited())
    try:
        for name in ("a", "b"):
            await make_room(client, name)
        for room in "aaabb":  # at most five legs per room
            await client.start_dial_out(room, DIAL)
        with pytest.raises(DailyRateLimitError):
            await client.start_dial_out("b", DIAL)
        await emu.advance(4.9)
        with pytest.raises(DailyRateLimitError):
            await client.start_dial_out("b", DIAL)
        await emu.advance(0.1)
        await client.start_dial_out("b", DIAL)
    finally:
        await emu.aclose()


async def test_general_tier_twenty_per_second(client, emu):
    await make_room(client)
    for _ in range(19):
        await client.get_room("call-1")
    with pytest.raises(DailyRateLimitError):
        await client.get_room("call-1")
    await emu.advance(1)
    await client.get_room("call-1")
    assert emu.log.count(status=429) == 1


async def test_delete_room_tier_two_per_second(client, emu):
    for name in ("a", "b", "c"):
        await client.create_room(RoomSpec(name=name))
    assert await client.delete_room("a") is True
    assert await client.delete_room("b") is True
    with pytest.raises(DailyRateLimitError):
        await client.delete_room("c")
    await emu.advance(1)
    assert await client.delete_room("c") is True


async def test_client_retry_on_the_same_clock_gets_through_without_doubling(clock, emu):
    # The client's backoff sleeps advance the emulator's virtual time.
    client = emu.daily_client(
        limiter=unlimited(), retry=RetryPolicy(), clock=clock.now, sleep=emu.advance
    )
    await make_room(client)
    first = await client.start_dial_out("call-1", DIAL)
    second = await client.start_dial_out("call-1", DIAL)
    assert first != second
    assert emu.log.statuses("dialOut/start")[0] == 200
    assert emu.log.statuses("dialOut/start")[-1] == 200
    assert 429 in emu.log.statuses("dialOut/start")
    assert emu.log.count("dialOut/start", acted=True) == 2


async def test_the_clients_own_pacing_never_meets_a_429(clock, emu):
    limiter = telephony_limiter(clock=clock.now, sleep=emu.advance)
    client = emu.daily_client(limiter=limiter, retry=RetryPolicy(max_attempts=1))
    await make_room(client)
    for _ in range(5):
        await client.start_dial_out("call-1", DIAL)
        await client.stop_dial_out(
            "call-1", emu.log.entries("dialOut/start")[-1].answer["sessionId"]
        )
    assert emu.log.count(status=429) == 0
    assert emu.log.count("dialOut/start", acted=True) == 5


async def test_limits_can_be_switched_off(client, emu):
    emu.limits(False)
    await make_room(client)
    for _ in range(5):
        await client.start_dial_out("call-1", DIAL)
    assert emu.log.count(status=429) == 0
