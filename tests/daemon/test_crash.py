"""The crash test: 200 concurrent calls, the daemon SIGKILLed at random moments and restarted.

``flowengine serve`` runs as a child process on one SQLite file; the emulator (in this
process) places 200 calls through it over loopback, the bridge carries the callers' keys.
While the calls run, the daemon is killed with SIGKILL three times at seeded random moments
and started again on the same file and port. Daily's webhook retries (``exponential``: again
after 2, 4, 8 and 16 s; different calls' webhooks delivered side by side) bring back what got
no answer while it was down, as the bridge does for key presses. Afterwards:

- every call has ended exactly by its flow's path for what its caller did, with exactly the
  Daily side effects of that path. A command is claimed only as its request goes out (after
  its pacing slot for a transfer), so a daemon killed while a command waits is restarted with
  that command still ``pending`` and sends it; an ``answer`` claimed but not known to have
  reached Daily is sent again, and Daily refuses a second routing (docs/daemon.md#restore);
- the emulator's request log shows no side effect done twice (per call, each endpoint acted
  on at most once, and exactly as the path says);
- no webhook the daemon answered 2xx is lost: each is in its call's journal in the SQLite
  file, or the daemon logged that it ignored it, after its call had ended.

Only the emulator's rate limits are off: 200 rooms in a few seconds is not what this test is
about. The daemon still paces its telephony requests as in production, which is why only ten
calls transfer (about one paced request per second).

The other two tests pin bugs the crash test found. The step that ends a call is written
before its hang-up is sent, and a daemon dying in between left the room undeleted, because
only live calls were taken back at a restart. A call restored live that ended on an event of
its inbox was tracked only after the restore, so its CDR was never written.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import structlog.testing

from flowengine.emulator import Callee, Caller, FarEnds
from flowengine.harness import Stack
from flowengine.harness.report import effects_by_call
from flowengine.runtime.commands import Command
from flowengine.runtime.ports import CommandResult
from flowengine.store import SQLiteStore

from .conftest import Rig
from .crashline import (
    FLOW,
    assert_nothing_doubled,
    assert_on_path,
    journals,
    lost_webhooks,
    place_all,
    scripts,
    story,
)

CALLS = 200
KILLS = 3
SEED = 5
BOUND = 60.0
"""Seconds the whole test may take (about 35 on 2 cores)."""


async def _crash_repeatedly(stack: Stack, rng: random.Random) -> list[float]:
    """SIGKILL the daemon ``KILLS`` times at random moments; the downtime of each restart.

    Between a restart and the next kill there are 5-7 s: Daily retries a webhook 2 s, then 6 s
    after its first attempt, so what failed while the daemon was down gets through before
    the next kill, as it would with a real deployment's restarts."""
    downtimes: list[float] = []
    await asyncio.sleep(rng.uniform(0.2, 2.0))
    for kill in range(KILLS):
        stack.kill_daemon()
        killed = time.monotonic()
        await stack.start_daemon()
        downtimes.append(time.monotonic() - killed)
        if kill < KILLS - 1:
            await asyncio.sleep(rng.uniform(5.0, 7.0))
    return downtimes


async def test_calls_survive_sigkills_without_repeating_or_losing_anything(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "crash-line.yaml").write_text(FLOW, encoding="utf-8")
    far_ends = FarEnds()  # everyone answers at once, the desk included
    plan = scripts(rng, CALLS)
    started = time.monotonic()
    async with asyncio.timeout(BOUND):
        async with Stack(
            flows=flows, workdir=tmp_path / "run", far_ends=far_ends, rate_limits=False, seed=SEED
        ) as stack:
            ids = await place_all(stack, plan)
            downtimes = await _crash_repeatedly(stack, rng)
            calls = await stack.wait_ended(ids, BOUND - (time.monotonic() - started) - 10)
            traces = {c: await stack.trace(c) for c in ids}
            assert stack.daemon is not None
            assert await stack.daemon.stop() == 0  # the last start drains and exits 0
            log = stack.emulator.log
            deliveries = list(stack.emulator.webhooks.deliveries)
            records = stack.daemon.log_records()
        store = await SQLiteStore.open(tmp_path / "run" / "calls.db")
        try:
            journal_of = await journals(store, ids)
        finally:
            await store.close()

    assert len(downtimes) == KILLS
    assert len(set(ids)) == CALLS

    # Every call ended exactly by its flow's path, with that path's side effects and no others.
    effects = effects_by_call(log.side_effects())
    assert_on_path(
        ids, plan, calls, traces, effects, lambda c: story(c, traces[c], deliveries, started)
    )

    # No side effect twice: each endpoint acted on at most once per call, in all the log.
    assert_nothing_doubled(effects)

    # No webhook answered 2xx is lost: journaled, or ignored because its call had ended.
    assert lost_webhooks(deliveries, journal_of, records) == []
    retried = [d for d in deliveries if d.attempt > 1]
    assert retried, "no webhook needed a second attempt: the kills missed every call"


async def test_a_hang_up_written_but_not_sent_before_a_crash_is_sent_after_the_restart(
    rig: Rig,
) -> None:
    """The step that ends a call (its hang-up) is written before its command is sent; a daemon
    dying in between leaves an ended call with an open command, which the restart sends."""
    async with asyncio.timeout(20):
        rig.emu.callee("+14155550111", Callee.answers())
        inbound = await rig.emu.place_call(
            "+14155550100", "+14155550123", caller=Caller(hangup=3.0)
        )
        call_id = "in-" + inbound.call_id
        await rig.settle()
        assert rig.daemon is not None
        real = rig.daemon.telephony.execute

        async def dies_before_hanging_up(command: Command) -> CommandResult:
            if command.kind == "hangup":
                return CommandResult(silent=True)  # never claimed: still pending
            return await real(command)

        rig.daemon.telephony.execute = dies_before_hanging_up  # type: ignore[method-assign]
        await rig.advance(5)  # connected, in the menu, then the caller hangs up
        session = rig.daemon.engine.get(call_id)
        assert session is not None
        assert session.ended
        assert session.state == "gone"
        open_commands = await rig.daemon.store.pending_commands(call_id)
        assert [json.loads(e.command)["type"] for e in open_commands] == ["hangup"]
        assert rig.emu.log.count("rooms/delete") == 0
        await rig.stop_daemon()
        restarted = await rig.start_daemon()
        await rig.settle()
        assert await restarted.store.pending_commands(call_id) == []
    assert rig.emu.log.count("rooms/delete", acted=True) == 1


async def test_a_call_that_ends_on_its_inbox_at_a_restart_gets_its_cdr(rig: Rig) -> None:
    """An event accepted (journaled) just before a crash is applied by the restart; when it
    ends the call, the call's summary (CDR) and metrics are written as for any ending."""
    async with asyncio.timeout(20):
        inbound = await rig.emu.place_call("+14155550100", "+14155550123", caller=Caller())
        call_id = "in-" + inbound.call_id
        await rig.settle()
        await rig.advance(2)  # connected: in the menu
        await rig.stop_daemon()
        store = await SQLiteStore.open(rig.db, clock=rig.clock.now)
        try:  # what the last process accepted and answered 200 for, but never applied
            await store.accept(call_id, json.dumps({"name": "hangup", "payload": {}}))
        finally:
            await store.close()
        with structlog.testing.capture_logs() as logs:
            restarted = await rig.start_daemon()
            await rig.settle()
    session = restarted.engine.get(call_id)
    assert session is not None
    assert session.ended
    assert [e["call_id"] for e in logs if e["event"] == "cdr"] == [call_id]
    assert 'flowengine_calls_active{flow="desk"} 0.0' in restarted.metrics.render().decode()
