"""Whole calls through the daemon and the emulator: dial-in to hang-up, and across restarts."""

from __future__ import annotations

import asyncio

from flowengine.emulator import Callee, Caller, Faults
from flowengine.store import CommandState

from .conftest import AUTH, Rig

EXPECTED = [
    "rooms/create",
    "dialin/pinlessCallUpdate",
    "dialOut/start",
    "dialOut/sendDTMF",
    "rooms/delete",
]


async def press(rig: Rig, call_id: str, keys: str) -> None:
    """What the in-room agent does with the caller's keys: post them to the daemon."""
    assert rig.client is not None
    for key in keys:
        answer = await rig.client.post(
            f"/v1/calls/{call_id}/events",
            json={"name": "dtmf", "payload": {"tone": key}},
            headers=AUTH,
        )
        assert answer.status_code == 202, answer.text
        await rig.settle()


async def call_to_menu(rig: Rig) -> str:
    rig.emu.callee("+14155550111", Callee.answers(after=1))
    inbound = await rig.emu.place_call("+14155550100", "+14155550123", caller=Caller())
    await rig.settle()
    call_id = "in-" + inbound.call_id
    await rig.advance(2)  # dialin.ready -> pinlessCallUpdate -> dialin.connected
    assert rig.daemon is not None
    session = rig.daemon.engine.get(call_id)
    assert session is not None
    assert session.state == "menu"
    return call_id


async def test_a_dial_in_call_runs_to_its_end_with_each_side_effect_once(rig: Rig) -> None:
    async with asyncio.timeout(20):
        call_id = await call_to_menu(rig)
        await press(rig, call_id, "1")
        await rig.advance(4)  # the desk answers after 1 s; tones sent; hang-up
    assert rig.daemon is not None
    session = rig.daemon.engine.get(call_id)
    assert session is not None
    assert session.ended
    assert session.outcome == "hangup"
    assert [e.endpoint for e in rig.emu.log.side_effects()] == EXPECTED
    store = rig.daemon.store
    record = await store.load_call(call_id)
    assert record is not None
    assert not record.live
    assert await store.pending_commands(call_id) == []
    assert await store.inbox(call_id) == []
    assert rig.client is not None
    trace = (await rig.client.get(f"/v1/calls/{call_id}/trace", headers=AUTH)).json()
    assert [t["event"]["name"] for t in trace["trace"]][0] == "start"


async def test_a_restarted_daemon_finishes_a_live_call_without_repeating_anything(
    rig: Rig,
) -> None:
    async with asyncio.timeout(20):
        call_id = await call_to_menu(rig)
        await rig.stop_daemon()
        restored = await rig.start_daemon()
        session = restored.engine.get(call_id)
        assert session is not None
        assert session.state == "menu"
        await press(rig, call_id, "1")
        await rig.advance(4)
    assert session.ended
    assert session.outcome == "hangup"
    assert [e.endpoint for e in rig.emu.log.side_effects()] == EXPECTED


async def test_a_dial_out_whose_outcome_was_lost_is_never_sent_again_after_a_restart(
    rig: Rig,
) -> None:
    async with asyncio.timeout(20):
        call_id = await call_to_menu(rig)
        # Daily starts the dial-out, but its answer is lost: the outcome is unknown.
        rig.emu.faults = Faults(rest_5xx_after=1.0, endpoints=frozenset({"dialOut/start"}))
        await press(rig, call_id, "1")
        rig.emu.faults = Faults()
        assert rig.daemon is not None
        unknown = await rig.daemon.store.pending_commands(call_id)
        assert [(e.state, '"start_dial_out"' in e.command) for e in unknown] == [
            (CommandState.UNKNOWN, True)
        ]
        await rig.stop_daemon()  # dies before Daily's dialout.* webhooks arrive
        restored = await rig.start_daemon()
        assert await restored.store.pending_commands(call_id) == []  # settled, as failed
        await rig.advance(25)  # the webhooks tell the restored call what happened
    session = restored.engine.get(call_id)
    assert session is not None
    assert session.ended
    assert rig.emu.log.count("dialOut/start", acted=True) == 1
    assert rig.emu.log.count("dialOut/start") == 1
