"""Housekeeping: an ended call leaves the store once it is older than ``--keep-ended``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from flowengine.daemon.housekeeping import DAY, PURGE_EVERY, Housekeeping
from flowengine.daemon.settings import SettingsError, load_settings
from flowengine.runtime.ports import VirtualClock
from flowengine.store import MemoryStore

from .conftest import Rig
from .test_call import call_to_menu, press
from .test_operations import ENV


async def _ended_call(rig: Rig) -> str:
    call_id = await call_to_menu(rig)
    await press(rig, call_id, "1")
    await rig.advance(4)
    assert rig.daemon is not None
    record = await rig.daemon.store.load_call(call_id)
    assert record is not None
    assert not record.live
    return call_id


async def _next_round(rig: Rig, seconds: float) -> None:
    """Move time on by ``seconds`` (one purge period), and wait for the purge it brings."""
    assert rig.daemon is not None
    housekeeping = rig.daemon.housekeeping
    assert housekeeping is not None
    before = housekeeping.rounds
    await rig.emu.advance(seconds)
    await rig.settle()
    for _ in range(500):  # the purge runs on the store's writer thread
        if housekeeping.rounds > before:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no purge ran")


async def test_an_ended_call_is_purged_once_older_than_keep_ended(rig: Rig) -> None:
    assert rig.daemon is not None
    await rig.stop_daemon()
    daemon = await rig.start_daemon(keep_ended=1.0)
    assert daemon.housekeeping is not None
    async with asyncio.timeout(30):
        old = await _ended_call(rig)
        for _ in range(23):  # hourly purges for most of a day: kept
            await _next_round(rig, PURGE_EVERY)
        assert await daemon.store.load_call(old) is not None
        recent = await _ended_call(rig)
        for _ in range(2):  # more than a day since the first ended: gone
            await _next_round(rig, PURGE_EVERY)
    assert await daemon.store.load_call(old) is None
    assert await daemon.store.load_call(recent) is not None  # ended two hours ago: kept
    assert daemon.housekeeping.purged == 1


async def test_a_restarted_daemon_purges_at_once(rig: Rig) -> None:
    async with asyncio.timeout(30):
        old = await _ended_call(rig)
        await rig.stop_daemon()
        await rig.emu.advance(3 * DAY)
        daemon = await rig.start_daemon(keep_ended=2.0)
        assert daemon.housekeeping is not None
        for _ in range(500):
            if daemon.housekeeping.rounds:
                break
            await asyncio.sleep(0.01)
    assert daemon.housekeeping.purged == 1
    assert await daemon.store.load_call(old) is None


async def test_keep_ended_zero_keeps_ended_calls_for_good(rig: Rig) -> None:
    await rig.stop_daemon()
    daemon = await rig.start_daemon(keep_ended=0.0)
    assert daemon.housekeeping is None
    async with asyncio.timeout(30):
        call_id = await _ended_call(rig)
        await rig.emu.advance(40 * DAY)
        await rig.settle()
    assert await daemon.store.load_call(call_id) is not None


async def test_a_purge_leaves_live_calls_alone() -> None:
    clock = VirtualClock()
    store = MemoryStore(clock=clock.now)
    await store.create_call("live", flow="f", flow_hash="h", snapshot="{}")
    await store.create_call("ended", flow="f", flow_hash="h", snapshot="{}")
    await store.end_call("ended")
    await clock.advance(3 * DAY)
    housekeeping = Housekeeping(store, clock, DAY)
    assert await housekeeping.purge() == 1
    assert await store.load_call("ended") is None
    assert await store.load_call("live") is not None


@pytest.mark.parametrize("days", [-1.0, 0.01, 40000.0])
def test_keep_ended_out_of_range_is_refused(tmp_path: Path, days: float) -> None:
    with pytest.raises(SettingsError, match="--keep-ended"):
        load_settings(flows=tmp_path, env=ENV, keep_ended=days)
