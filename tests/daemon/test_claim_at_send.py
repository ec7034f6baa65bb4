"""A command is claimed in the outbox when its request goes out, not while it waits its turn.

``DurableTelephony`` over ``RestTelephony`` over a ``DailyClient`` on ``httpx.MockTransport``,
with a ``MemoryStore``: the mock Daily reads the command's outbox state at the moment each
request reaches it, and the limiter's slots are granted by hand.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import httpx

from flowengine.daemon.metrics import Metrics
from flowengine.daemon.persistence import DurableTelephony, Persistence
from flowengine.daemon.telephony import BusinessHttp, RestTelephony
from flowengine.daily import DailyClient, RetryPolicy
from flowengine.runtime import commands as c
from flowengine.runtime.ports import CommandResult
from flowengine.store import CommandState, MemoryStore

CALL = "c-1"
ROOM_ANSWER = {
    "name": "desk-room",
    "url": "https://acme.daily.co/desk-room",
    "config": {"sip_uri": {"endpoint": "desk-room@acme.sip.daily.co"}},
}


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


async def _no_sleep(seconds: float) -> None:
    return None


async def turns(n: int = 30) -> None:
    """Let every runnable task reach its next wait."""
    for _ in range(n):
        await asyncio.sleep(0)


class Rig:
    """One stored call with one command in its outbox, and the daemon's telephony stack."""

    def __init__(self, command: c.Command, *replies: httpx.Response) -> None:
        self.command = command
        self.store = MemoryStore()
        self.limiter = HandLimiter()
        self.replies = list(replies)
        self.seen: list[tuple[str, CommandState]] = []  # (path, outbox state) per request
        daily = DailyClient(
            "test-key",
            http=httpx.AsyncClient(transport=httpx.MockTransport(self._answer)),
            limiter=self.limiter,
            retry=RetryPolicy(),
            sleep=_no_sleep,
            rand=lambda: 0.5,
        )
        session = SimpleNamespace(call={"room": "call-room"}, legs={"caller": "sess-1"})
        flow = SimpleNamespace(allowed_hosts=("crm.example.com",))
        business = BusinessHttp(httpx.AsyncClient(transport=httpx.MockTransport(self._answer)))
        self.rest = RestTelephony(
            daily,
            business,
            sessions=lambda call_id: session,  # type: ignore[arg-type,return-value]
            flows=lambda s: flow,  # type: ignore[arg-type,return-value]
            metrics=Metrics(),
        )
        self.durable = DurableTelephony(self.rest, Persistence(self.store))

    async def __aenter__(self) -> Rig:
        outbox = {self.command.key: json.dumps(self.command.to_dict())}
        await self.store.create_call(
            CALL, flow="f", flow_hash="h", snapshot="{}", outbox_new=outbox
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.rest.daily.aclose()
        await self.rest.http.client.aclose()

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.url.path, self.state))
        return self.replies.pop(0) if self.replies else httpx.Response(200, json={})

    @property
    def state(self) -> CommandState:
        return self.store.data.outbox[self.command.key].state

    @property
    def attempts(self) -> int:
        return self.store.data.outbox[self.command.key].attempts

    async def results(self) -> list[str]:
        return [json.loads(e.payload)["name"] for e in await self.store.inbox(CALL)]


async def test_a_paced_command_stays_pending_until_its_slot_is_granted() -> None:
    transfer = c.SipCallTransfer(
        key="c-1:1:0", call_id=CALL, leg="caller", to_end_point="+14155550199"
    )
    async with Rig(transfer) as rig:
        task = asyncio.create_task(rig.durable.execute(transfer))
        await turns()
        assert len(rig.limiter.queue) == 1  # waiting for its turn
        assert rig.state is CommandState.PENDING
        assert rig.seen == []
        rig.limiter.grant()
        assert await task == CommandResult(silent=True)
    assert rig.seen == [("/v1/rooms/call-room/sipCallTransfer", CommandState.UNKNOWN)]
    assert rig.state is CommandState.DONE
    assert rig.attempts == 1
    assert await rig.results() == ["command.ok"]


async def test_a_command_cancelled_while_it_waits_for_its_slot_is_left_pending() -> None:
    """What a daemon killed during the wait leaves: a restart sends it."""
    dial = c.StartDialOut(
        key="c-1:1:0", call_id=CALL, leg="desk", settings={"phoneNumber": "+14155550199"}
    )
    async with Rig(dial) as rig:
        task = asyncio.create_task(rig.durable.execute(dial))
        await turns()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert rig.seen == []
        pending = await rig.store.pending_commands(CALL)
        assert [(e.key, e.state) for e in pending] == [(dial.key, CommandState.PENDING)]


async def test_a_command_no_longer_pending_is_not_sent() -> None:
    refer = c.SipRefer(key="c-1:1:0", call_id=CALL, leg="caller", to_end_point="sip:q@pbx")
    async with Rig(refer) as rig:
        await rig.store.begin_command(refer.key)  # handed out already
        task = asyncio.create_task(rig.durable.execute(refer))
        await turns()
        rig.limiter.grant()
        assert await task == CommandResult(silent=True)
    assert rig.seen == []  # the transport saw no request
    assert rig.attempts == 1
    assert await rig.results() == []


async def test_a_retried_request_is_claimed_once() -> None:
    dtmf = c.SendDtmf(key="c-1:1:0", call_id=CALL, leg="caller", tones="12")
    limited = httpx.Response(429, json={"error": "rate-limit", "info": "slow down"})
    async with Rig(dtmf, limited, httpx.Response(200, json={})) as rig:
        task = asyncio.create_task(rig.durable.execute(dtmf))
        await turns()
        rig.limiter.grant()
        await turns()
        rig.limiter.grant()  # the retry waits for a slot of its own
        await task
    path = "/v1/rooms/call-room/dialOut/sendDTMF"
    assert rig.seen == [(path, CommandState.UNKNOWN), (path, CommandState.UNKNOWN)]
    assert rig.attempts == 1
    assert rig.state is CommandState.DONE


async def test_a_transfer_to_a_room_is_claimed_after_the_look_up_and_the_slot() -> None:
    transfer = c.SipCallTransfer(key="c-1:1:0", call_id=CALL, leg="caller", room="desk-room")
    async with Rig(transfer, httpx.Response(200, json=ROOM_ANSWER)) as rig:
        task = asyncio.create_task(rig.durable.execute(transfer))
        await turns()
        assert rig.seen == [("/v1/rooms/desk-room", CommandState.PENDING)]  # a read
        assert rig.state is CommandState.PENDING
        rig.limiter.grant()
        await task
    assert rig.seen[1] == ("/v1/rooms/call-room/sipCallTransfer", CommandState.UNKNOWN)
    assert rig.attempts == 1


async def test_an_http_request_is_claimed_before_it_goes_out() -> None:
    request = c.HttpRequest(
        key="c-1:1:0", call_id=CALL, method="GET", url="https://crm.example.com/lookup"
    )
    async with Rig(request, httpx.Response(200, json={"vip": True})) as rig:
        await rig.durable.execute(request)
    assert rig.seen == [("/lookup", CommandState.UNKNOWN)]
    assert rig.state is CommandState.DONE


async def test_a_command_that_acts_on_nothing_is_claimed_then_settled() -> None:
    play = c.Play(key="c-1:1:0", call_id=CALL, prompt="menu")
    bad = c.SendDtmf(key="c-1:1:0", call_id=CALL, leg="caller", tones="xyz")
    async with Rig(play) as rig:
        await rig.durable.execute(play)
        assert rig.state is CommandState.DONE
        assert await rig.results() == ["play.done"]
    async with Rig(bad) as rig:  # refused before sending: a failure, nothing sent
        await rig.durable.execute(bad)
        assert rig.seen == []
        assert rig.state is CommandState.FAILED
        assert rig.attempts == 1


async def test_an_inner_telephony_that_does_not_ask_the_gate_is_claimed_first() -> None:
    hangup = c.Hangup(key="c-1:1:0", call_id=CALL)
    async with Rig(hangup) as rig:
        states: list[CommandState] = []

        class Plain:
            async def execute(self, command: c.Command) -> CommandResult:
                states.append(rig.state)
                return CommandResult.success()

        durable = DurableTelephony(Plain(), rig.durable.persistence)
        await durable.execute(hangup)
        await durable.execute(hangup)  # settled: not carried out again
    assert states == [CommandState.UNKNOWN]
    assert rig.state is CommandState.DONE
