"""An ``answer`` whose outcome was unknown when the daemon died is sent again at the restart.

Daily routes a held pinless call to a room once (``pinlessCallUpdate``) and refuses to route
it again, so sending the answer again is safe: if the daemon died after claiming it but before
Daily had it, the call is answered now; if Daily had taken it, the repeat is refused, the
daemon settles the command without a result, and Daily's ``dialin.connected`` webhook moves
the call on as usual. Either way the call follows its flow's main path.
"""

from __future__ import annotations

import asyncio

import httpx
import structlog.testing

from flowengine.daily import NO_RETRY, DailyClient
from flowengine.emulator import Caller, Faults
from flowengine.emulator.emulator import BASE_URL
from flowengine.emulator.state import InboundCall
from flowengine.store import CommandState

from .conftest import NoPacing, Rig

UPDATE = "dialin/pinlessCallUpdate"


class HangsOnAnswer(httpx.AsyncBaseTransport):
    """The emulator, except that a ``pinlessCallUpdate`` never leaves: the daemon dies first."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.held = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(UPDATE):
            self.held.set()
            await asyncio.Event().wait()  # cancelled by the kill
        return await self.inner.handle_async_request(request)


async def _answer_claimed(rig: Rig) -> InboundCall:
    """Place a call; return once its answer is claimed (``unknown``) and the daemon is dead."""
    rig.emu.webhooks.retry_type = "exponential"  # as a deployment sets it: nothing lost while down
    inbound = await rig.emu.place_call("+14155550100", "+14155550123", caller=Caller())
    await rig.settle()
    call_id = "in-" + inbound.call_id
    assert rig.daemon is not None
    store = rig.daemon.store
    # Time moves on in the background: the clock waits for the daemon to settle, which it
    # does not while the answer is out.
    moving = asyncio.get_running_loop().create_task(rig.emu.advance(1))
    for _ in range(200):  # until dialin.ready has come and the answer is on its way
        await asyncio.sleep(0.01)
        if await store.pending_commands(call_id):
            break
    await asyncio.sleep(0.05)
    open_commands = await store.pending_commands(call_id)
    assert [(e.state, '"answer"' in e.command) for e in open_commands] == [
        (CommandState.UNKNOWN, True)
    ]
    await rig.kill_daemon()
    await moving
    return inbound


async def test_an_answer_claimed_but_never_sent_is_sent_at_the_restart(rig: Rig) -> None:
    await rig.stop_daemon()
    hanging = HangsOnAnswer(httpx.ASGITransport(app=rig.emu.app))
    http = httpx.AsyncClient(transport=hanging)
    daily = DailyClient(
        "emulator-api-key", http=http, base_url=BASE_URL, retry=NO_RETRY, limiter=NoPacing()
    )
    await rig.start_daemon(daily=daily)
    async with asyncio.timeout(20):
        inbound = await _answer_claimed(rig)
        call_id = "in-" + inbound.call_id
        assert hanging.held.is_set()
        assert rig.emu.log.count(UPDATE) == 0
        assert inbound.updates == 0
        restored = await rig.start_daemon()
        await rig.advance(2)
    await http.aclose()
    session = restored.engine.get(call_id)
    assert session is not None
    assert session.state == "menu"  # answered by the repeat, not failed by its timer
    assert rig.emu.log.count(UPDATE, acted=True) == 1
    assert inbound.updates == 1
    assert await restored.store.pending_commands(call_id) == []


async def test_an_answer_daily_took_is_refused_when_sent_again_and_the_call_goes_on(
    rig: Rig,
) -> None:
    async with asyncio.timeout(20):
        # Daily routes the call, then its answer takes long: the daemon dies meanwhile.
        rig.emu.faults = Faults(slow=1.0, slow_seconds=30, endpoints=frozenset({UPDATE}))
        inbound = await _answer_claimed(rig)
        call_id = "in-" + inbound.call_id
        rig.emu.faults = Faults()
        assert inbound.updates == 1  # routed; its answer never came back
        with structlog.testing.capture_logs() as logs:
            restored = await rig.start_daemon()
            await rig.advance(5)  # Daily's retries bring dialin.connected
    session = restored.engine.get(call_id)
    assert session is not None
    assert session.state == "menu"  # moved on by dialin.connected
    assert inbound.updates == 1  # routed once: the repeat was refused
    assert rig.emu.log.statuses(UPDATE) == [400]
    refused = [e for e in logs if e["event"].startswith("command sent again after a restart")]
    assert [(e["call_id"], e["command"], e["status"]) for e in refused] == [
        (call_id, "answer", 400)
    ]
    record = await restored.store.command(refused[0]["key"])
    assert record is not None
    assert record.state is CommandState.FAILED
