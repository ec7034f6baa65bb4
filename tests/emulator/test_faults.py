"""Each fault switch, seeded and bounded; Daily's webhook retry types; event filtering."""

from __future__ import annotations

import contextlib

import pytest

from flowengine.daily import (
    NO_RETRY,
    DailyError,
    DailyOutcomeUnknownError,
    DailyRateLimitError,
    DialOutRequest,
    RetryPolicy,
)
from flowengine.emulator import (
    DEFAULT_PINLESS_SECRET,
    DEFAULT_WEBHOOK_SECRET,
    NO_FAULTS,
    Callee,
    Emulator,
    Faults,
)

from .conftest import Ingress, make_room, unlimited

DIAL = DialOutRequest.to("+14155550100")


@pytest.fixture(autouse=True)
def no_limits(emu: Emulator) -> None:
    emu.limits(False)


async def test_injected_429_refuses_before_acting(client, emu):
    emu.faults = Faults(rest_429=1.0, endpoints=frozenset({"dialOut/start"}))
    await make_room(client, sip=False)
    with pytest.raises(DailyRateLimitError):
        await client.start_dial_out("call-1", DIAL)
    entry = emu.log.entries("dialOut/start")[0]
    assert (entry.status, entry.fault, entry.acted) == (429, "429", False)
    assert entry.answer["error"] == "rate-limit-error"
    assert emu.state.legs == {}
    await client.get_room("call-1")  # other endpoints are untouched


async def test_injected_5xx_before_acting_leaves_no_trace(client, emu):
    emu.faults = Faults(rest_5xx=1.0, endpoints=frozenset({"dialOut/start"}))
    await make_room(client, sip=False)
    with pytest.raises(DailyOutcomeUnknownError):
        await client.start_dial_out("call-1", DIAL)
    entry = emu.log.entries("dialOut/start")[0]
    assert (entry.status, entry.answer["error"], entry.acted) == (500, "server-error", False)
    assert emu.state.legs == {}


async def test_5xx_after_acting_is_never_repeated_by_the_client(client, emu, ingress):
    emu.faults = Faults(rest_5xx_after=1.0, endpoints=frozenset({"dialOut/start"}))
    await make_room(client, sip=False)
    client = emu.daily_client(retry=RetryPolicy(), limiter=unlimited(), sleep=emu.advance)
    with pytest.raises(DailyOutcomeUnknownError):
        await client.start_dial_out("call-1", DIAL)
    assert emu.log.count("dialOut/start") == 1
    assert [e.endpoint for e in emu.log.side_effects("dialOut/start")] == ["dialOut/start"]
    assert emu.log.entries("dialOut/start")[0].fault == "5xx-after"
    await emu.advance(1)
    assert ingress.types() == ["dialout.connected", "dialout.answered", "participant.joined"]


async def test_5xx_after_acting_on_a_safe_endpoint_is_retried_and_done_once(client, emu):
    await make_room(client, sip=False)
    session = await client.start_dial_out("call-1", DIAL)
    emu.faults = Faults(rest_5xx_after=1.0, endpoints=frozenset({"dialOut/stop"}))
    client = emu.daily_client(retry=RetryPolicy(), limiter=unlimited(), sleep=emu.advance)
    assert await client.stop_dial_out("call-1", session) is False  # the repeat finds it gone
    assert emu.log.statuses("dialOut/stop") == [500, 404]
    assert len(emu.log.side_effects("dialOut/stop")) == 1


async def test_slow_answers_wait_on_the_injected_sleep(clock, ingress):
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    emu = Emulator(clock=clock, sleep=sleep, faults=Faults(slow=1.0, slow_seconds=3.0))
    client = emu.daily_client(retry=NO_RETRY)
    try:
        await make_room(client)
        await client.get_room("call-1")
        assert slept == [3.0, 3.0]
        assert emu.log.statuses() == [200, 200]
        assert [e.fault for e in emu.log] == ["slow", "slow"]
    finally:
        await emu.aclose()


async def statuses_for(seed: int, clock) -> list[int]:
    faults = Faults(seed=seed, rest_429=0.3, rest_5xx=0.2, endpoints=frozenset({"rooms/get"}))
    emu = Emulator(clock=clock, faults=faults)
    emu.limits(False)
    client = emu.daily_client(retry=NO_RETRY)
    try:
        await make_room(client)
        for _ in range(40):
            with contextlib.suppress(DailyError):  # the statuses are in the log
                await client.get_room("call-1")
        return emu.log.statuses("rooms/get")
    finally:
        await emu.aclose()


async def test_rest_faults_are_seeded_and_reproducible(clock):
    first, again, other = (
        await statuses_for(7, clock),
        await statuses_for(7, clock),
        await statuses_for(8, clock),
    )
    assert first == again
    assert first != other
    assert {429, 500, 200} == set(first)
    assert 5 <= first.count(429) <= 20


async def dial_and_answer(client, emu, after: float = 1.0) -> None:
    emu.callee("+14155550100", Callee.answers(after=after))
    await make_room(client, sip=False)
    await client.start_dial_out("call-1", DIAL)


async def test_dropped_webhooks_are_caused_but_never_sent(client, emu, ingress):
    emu.faults = Faults(webhook_drop=1.0)
    await dial_and_answer(client, emu)
    await emu.advance(5)
    assert emu.webhooks.types() == ["dialout.connected", "dialout.answered", "participant.joined"]
    assert all(e.fault.drop for e in emu.webhooks.events)
    assert emu.webhooks.deliveries == []
    assert ingress.events == []


async def test_duplicated_webhooks_arrive_twice_with_the_same_id(client, emu, ingress):
    emu.faults = Faults(webhook_duplicate=1.0, duplicate_gap=0.5)
    await dial_and_answer(client, emu, after=3)
    await emu.advance(0.1)
    assert ingress.types() == ["dialout.connected"]
    await emu.advance(0.5)
    assert ingress.types() == ["dialout.connected", "dialout.connected"]
    assert ingress.events[0]["id"] == ingress.events[1]["id"]
    assert [d.copy for d in emu.webhooks.deliveries] == [False, True]


async def test_delayed_webhooks_are_late_but_bounded(client, emu, ingress):
    emu.faults = Faults(webhook_delay=1.0, webhook_delay_max=2.0, seed=3)
    await dial_and_answer(client, emu, after=0)
    await emu.advance(0.1)
    assert len(ingress.events) < 3
    await emu.advance(2.0)
    assert sorted(ingress.types()) == [
        "dialout.answered",
        "dialout.connected",
        "participant.joined",
    ]
    delays = [e.fault.delay for e in emu.webhooks.events]
    assert all(0 < d <= 2.0 for d in delays)


async def test_reordered_webhooks_swap_with_the_next_one(client, emu, ingress):
    emu.faults = Faults(webhook_reorder=1.0, reorder_window=5.0)
    await dial_and_answer(client, emu, after=1)
    await emu.advance(1)
    assert ingress.types() == []  # connected is held back for the next event
    await emu.advance(0.1)
    assert ingress.types() == ["dialout.answered", "dialout.connected"]
    await emu.advance(4.9)
    assert ingress.types() == ["dialout.answered", "dialout.connected"]
    await emu.advance(0.1)  # participant.joined: no event followed, released at the window
    assert ingress.types() == ["dialout.answered", "dialout.connected", "participant.joined"]


async def test_faults_switch_per_step(client, emu, ingress):
    emu.faults = Faults(webhook_drop=1.0)
    await dial_and_answer(client, emu)
    await emu.advance(5)
    emu.faults = NO_FAULTS
    await client.stop_dial_out("call-1", emu.log.entries("dialOut/start")[0].answer["sessionId"])
    await emu.settle()
    assert ingress.types() == ["participant.left", "dialout.stopped"]


async def test_circuit_breaker_stops_after_three_failures_until_reactivated(client, emu, ingress):
    ingress.status = 500
    await dial_and_answer(client, emu, after=1)
    await client.start_dial_out("call-1", DIAL)
    await emu.advance(2)
    sent = emu.webhooks.deliveries
    assert [d.status for d in sent[:3]] == [500, 500, 500]
    assert emu.webhooks.state == "FAILED"
    assert all(d.suppressed and d.status is None for d in sent[3:])
    assert len(sent) == 6
    ingress.status = 200
    emu.webhooks.reactivate()
    await client.stop_dial_out("call-1", emu.log.entries("dialOut/start")[0].answer["sessionId"])
    await emu.settle()
    assert ingress.types() == ["participant.left", "dialout.stopped"]


async def test_circuit_breaker_counts_failures_in_a_row(client, emu, ingress):
    ingress.status = 500
    await dial_and_answer(client, emu, after=1)
    await emu.advance(0.1)
    ingress.status = 200
    await emu.advance(1)
    assert emu.webhooks.state == "ACTIVE"
    assert emu.webhooks.failed_count == 0
    assert ingress.types() == ["dialout.answered", "participant.joined"]


async def test_exponential_retry_tries_five_times(clock):
    ingress = Ingress(clock, DEFAULT_WEBHOOK_SECRET, DEFAULT_PINLESS_SECRET)
    emu = Emulator(clock=clock, webhook_app=ingress.app, webhook_retry="exponential")
    emu.limits(False)
    client = emu.daily_client(retry=NO_RETRY)
    try:
        ingress.status = 503
        await make_room(client, "r1")
        await emu.advance(0.5)
        assert [d.attempt for d in emu.webhooks.deliveries] == [1]
        await emu.advance(2 + 4 + 8 + 16)
        assert [d.attempt for d in emu.webhooks.deliveries] == [1, 2, 3, 4, 5]
        await emu.advance(1000)
        assert len(emu.webhooks.deliveries) == 5  # then the message is dropped
        assert emu.webhooks.state == "ACTIVE"  # exponential never circuit-breaks
        ingress.status = 200
        await make_room(client, "r2")
        await emu.advance(0.5)
        assert ingress.types() == ["dialin.ready"]
    finally:
        await emu.aclose()


async def test_exponential_retry_succeeds_when_the_receiver_recovers(clock):
    ingress = Ingress(clock, DEFAULT_WEBHOOK_SECRET, DEFAULT_PINLESS_SECRET)
    emu = Emulator(clock=clock, webhook_app=ingress.app, webhook_retry="exponential")
    client = emu.daily_client(retry=NO_RETRY)
    try:
        ingress.status = 503
        await make_room(client, "r1")
        await emu.advance(2.5)
        ingress.status = 200
        await emu.advance(4)
        assert [(d.attempt, d.status) for d in emu.webhooks.deliveries] == [
            (1, 503),
            (2, 503),
            (3, 200),
        ]
        assert ingress.types() == ["dialin.ready"]
    finally:
        await emu.aclose()


async def test_event_types_filter_and_basic_auth(clock):
    ingress = Ingress(clock, DEFAULT_WEBHOOK_SECRET, DEFAULT_PINLESS_SECRET)
    emu = Emulator(
        clock=clock,
        webhook_app=ingress.app,
        webhook_event_types=frozenset({"dialout.answered"}),
        webhook_basic_auth="dXNlcjpwYXNz",
    )
    emu.limits(False)
    client = emu.daily_client(retry=NO_RETRY)
    try:
        await dial_and_answer(client, emu)
        await emu.advance(2)
        assert ingress.types() == ["dialout.answered"]
        assert [e.filtered for e in emu.webhooks.events] == [True, False, True]
        seen = [d.headers["Authorization"] for d in emu.webhooks.deliveries]
        assert seen == ["Basic dXNlcjpwYXNz"]
    finally:
        await emu.aclose()
