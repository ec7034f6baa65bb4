"""The send gate: asked once per acting request, after its pacing slot, before it goes out."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from flowengine.daily import DailyError, RetryPolicy
from flowengine.daily.gate import DailyNotSentError, pass_gate, send_gate

from .conftest import MockDaily, error


class HandLimiter:
    """A limiter whose slots the test grants by hand, one at a time."""

    def __init__(self) -> None:
        self.queue: list[asyncio.Future[None]] = []

    async def acquire(self) -> None:
        slot = asyncio.get_running_loop().create_future()
        self.queue.append(slot)
        await slot

    def grant(self) -> None:
        self.queue.pop(0).set_result(None)


class Gate:
    """Records how many requests the mock had received each time it was asked."""

    def __init__(self, daily: MockDaily, answer: bool = True) -> None:
        self.daily = daily
        self.answer = answer
        self.asked: list[int] = []

    async def __call__(self) -> bool:
        self.asked.append(len(self.daily.requests))
        return self.answer


async def turns(n: int = 20) -> None:
    """Let every runnable task reach its next wait."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_paced_request_asks_the_gate_once_its_slot_is_granted(make_client, daily):
    limiter = HandLimiter()
    client = make_client(limiter=limiter)
    gate = Gate(daily)
    with send_gate(gate):
        task = asyncio.create_task(client.send_dtmf("call-1", "sess-1", "12"))
    await turns()
    assert len(limiter.queue) == 1  # waiting for its slot
    assert gate.asked == []
    assert daily.requests == []
    limiter.grant()
    await task
    assert gate.asked == [0]  # asked after the slot, before the request went out
    assert len(daily.requests) == 1


async def test_a_refusing_gate_sends_nothing(make_client, daily):
    client = make_client()
    gate = Gate(daily, answer=False)
    with send_gate(gate), pytest.raises(DailyNotSentError) as caught:
        await client.sip_refer("call-1", "sess-1", "sip:desk@pbx.example.com")
    assert daily.requests == []
    assert gate.asked == [0]
    assert isinstance(caught.value, DailyError)
    assert caught.value.endpoint == "/rooms/call-1/sipRefer"


async def test_a_retried_request_asks_the_gate_once(make_client, daily):
    daily.reply(error(429, "rate-limit", "slow down"), httpx.Response(200, json={}))
    limiter = HandLimiter()
    client = make_client(limiter=limiter, retry=RetryPolicy())
    gate = Gate(daily)
    with send_gate(gate):
        task = asyncio.create_task(client.sip_call_transfer("call-1", "sess-1", "+14155550199"))
    await turns()
    limiter.grant()  # the first attempt
    await turns()
    assert len(daily.requests) == 1
    limiter.grant()  # the retry queues again for a slot
    await task
    assert len(daily.requests) == 2
    assert gate.asked == [0]


async def test_an_unpaced_request_that_acts_asks_the_gate(make_client, daily):
    client = make_client()
    gate = Gate(daily)
    with send_gate(gate):
        assert await client.delete_room("call-1") is True
    assert gate.asked == [0]


async def test_a_read_never_asks_the_gate(make_client, daily):
    daily.reply(httpx.Response(200, json={"name": "call-1", "url": "https://a.daily.co/call-1"}))
    client = make_client()
    gate = Gate(daily, answer=False)
    with send_gate(gate):
        room = await client.get_room("call-1")
    assert room.name == "call-1"
    assert gate.asked == []


async def test_without_a_gate_everything_is_sent(make_client, daily):
    client = make_client()
    await client.send_dtmf("call-1", "sess-1", "1")
    assert len(daily.requests) == 1


async def test_the_gate_is_gone_after_its_block():
    async def refuse() -> bool:
        return False

    with send_gate(refuse), pytest.raises(DailyNotSentError):
        await pass_gate("POST", "/x")
    await pass_gate("POST", "/x")  # no gate: passes
