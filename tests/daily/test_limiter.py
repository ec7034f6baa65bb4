"""The telephony limiter: FIFO, at most N per period, spaced; fake time, no real sleeping."""

from __future__ import annotations

import httpx
import pytest

from flowengine.daily import DailyClient, RateLimiter, RetryPolicy, telephony_limiter
from flowengine.daily.limiter import (
    TELEPHONY_CALLS,
    TELEPHONY_MIN_INTERVAL,
    TELEPHONY_PERIOD,
)

from .conftest import API_KEY, FakeTime, VirtualTime


async def acquire_all(
    limiter: RateLimiter, time: VirtualTime, count: int
) -> list[tuple[int, float]]:
    """Start ``count`` callers in order; return (caller, time it was let through) in order."""
    through: list[tuple[int, float]] = []

    async def caller(n: int) -> None:
        await limiter.acquire()
        through.append((n, time.now))

    await time.run(*(caller(n) for n in range(count)))
    return through


async def test_five_per_five_seconds_then_wait_for_the_window():
    time = VirtualTime()
    limiter = RateLimiter(5, 5.0, min_interval=0.0, clock=time.clock, sleep=time.sleep)
    through = await acquire_all(limiter, time, 11)
    assert through == [
        (0, 0.0), (1, 0.0), (2, 0.0), (3, 0.0), (4, 0.0),
        (5, 5.0), (6, 5.0), (7, 5.0), (8, 5.0), (9, 5.0),
        (10, 10.0),
    ]  # fmt: skip


async def test_about_one_per_second():
    time = VirtualTime()
    limiter = RateLimiter(100, 100.0, min_interval=1.0, clock=time.clock, sleep=time.sleep)
    through = await acquire_all(limiter, time, 4)
    assert through == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)]


async def test_callers_are_served_first_come_first_served():
    time = VirtualTime()
    limiter = telephony_limiter(clock=time.clock, sleep=time.sleep)
    through = await acquire_all(limiter, time, 8)
    assert [n for n, _ in through] == list(range(8))
    times = [at for _, at in through]
    assert times == pytest.approx([0.0, 1.1, 2.2, 3.3, 4.4, 5.5, 6.6, 7.7])


async def test_default_limits_stay_below_dailys_telephony_tier():
    # Daily: about 1 request/s, or 5 per 5 s.
    assert TELEPHONY_MIN_INTERVAL >= 1.0
    assert TELEPHONY_CALLS / TELEPHONY_PERIOD < 5 / 5
    time = VirtualTime()
    limiter = telephony_limiter(clock=time.clock, sleep=time.sleep)
    times = [at for _, at in await acquire_all(limiter, time, 30)]
    for i, start in enumerate(times):
        assert len([t for t in times[i:] if t < start + 5.0]) <= 5
    assert all(b - a >= 1.0 for a, b in zip(times, times[1:], strict=False))


async def test_a_quiet_limiter_lets_a_caller_through_at_once():
    time = FakeTime()
    limiter = telephony_limiter(clock=time.clock, sleep=time.sleep)
    await limiter.acquire()
    time.now += 60.0
    await limiter.acquire()
    assert time.sleeps == []


async def test_waiting_counts_callers_in_the_queue():
    time = VirtualTime()
    limiter = telephony_limiter(clock=time.clock, sleep=time.sleep)
    seen: list[int] = []

    async def caller() -> None:
        await limiter.acquire()
        seen.append(limiter.waiting)

    await time.run(*(caller() for _ in range(4)))
    assert seen == [0, 2, 1, 0]  # the first never waited; the rest leave the queue in turn


def test_limits_must_make_sense():
    with pytest.raises(ValueError, match="calls >= 1"):
        RateLimiter(0, 5.0)


async def test_client_paces_telephony_but_not_rooms():
    time = FakeTime()
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={})))
    async with http:
        client = DailyClient(
            API_KEY, http=http, clock=time.clock, sleep=time.sleep, retry=RetryPolicy()
        )
        for _ in range(3):
            await client.sip_refer("r1", "leg", "sip:queue@pbx.example.com")
        assert time.sleeps == pytest.approx([1.1, 1.1])
        for _ in range(3):
            await client.stop_dial_out("r1", "leg")
            await client.delete_room("r1")
        assert time.sleeps == pytest.approx([1.1, 1.1])


async def test_clients_can_share_one_limiter():
    time = FakeTime()
    limiter = telephony_limiter(clock=time.clock, sleep=time.sleep)
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200, json={})))
    async with http:
        clients = [
            DailyClient(API_KEY, http=http, limiter=limiter, clock=time.clock, sleep=time.sleep)
            for _ in range(2)
        ]
        await clients[0].send_dtmf("r1", "leg", "1")
        await clients[1].send_dtmf("r1", "leg", "2")
    assert time.sleeps == pytest.approx([1.1])
