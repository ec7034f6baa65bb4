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
  that command still ``pending`` and sends it (docs/daemon.md#restore);
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
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog.testing

from flowengine.emulator import Callee, Caller, Delivery, FarEnds, Press
from flowengine.harness import Stack
from flowengine.harness.report import effects_by_call, path_of
from flowengine.runtime.commands import Command
from flowengine.runtime.events import normalise_name
from flowengine.runtime.ports import CommandResult
from flowengine.store import SQLiteStore

from .conftest import Rig

CALLS = 200
KILLS = 3
SEED = 5
BOUND = 60.0
"""Seconds the whole test may take (about 35 on 2 cores)."""

FLOW = """\
# The crash test's line: a menu, a code, a transfer; every outcome routed.
name: crash-line
match: {dialin: ["+14155550100"]}
prompts:
  menu: "For a code press 1, to leave press 2, for the desk press 3."
  code: "Enter your four digit code."
  bye: "Goodbye."
on: {hangup: gone}
start: welcome
states:
  welcome:
    answer: {timeout: 15s}
    on: {answered: menu, failed: gone}
  menu:
    menu: {prompt: menu, options: {1: code, 2: bye, 3: desk}, timeout: 25s, attempts: 1}
    on: {no_input: bye, max_attempts: bye}
  code:
    collect:
      prompt: code
      into: code
      min_digits: 4
      max_digits: 4
      timeouts: {first_digit: 20s, inter_digit: 10s}
      attempts: 1
    on: {ok: bye, no_input: bye, max_attempts: bye}
  desk:
    transfer: {phone: "+14155550199", timeout: 15s}
    on: {answered: handed_off, failed: bye}
  bye:
    play: bye
    on: {done: hang_up}
  hang_up:
    hangup: {reason: done}
  gone:
    hangup: {reason: caller hung up}
  handed_off:
    end: {}
"""

MAIN_PATH = {
    "leave": ["welcome", "menu", "bye", "hang_up"],
    "code": ["welcome", "menu", "code", "bye", "hang_up"],
    "hang-up": ["welcome", "menu", "gone"],
    "desk": ["welcome", "menu", "desk", "handed_off"],
}
CREATED = ["rooms/create", "dialin/pinlessCallUpdate"]
MAIN_EFFECTS = {
    "leave": [*CREATED, "rooms/delete"],
    "code": [*CREATED, "rooms/delete"],
    "hang-up": [*CREATED, "rooms/delete"],
    "desk": [*CREATED, "sipCallTransfer"],
}


@dataclass(frozen=True, slots=True)
class Script:
    kind: str
    caller: Caller


def scripts(rng: random.Random) -> list[Script]:
    """What each caller does, 8-12 s after being connected: as a person would, once the menu
    has been heard. By then a daemon killed meanwhile has been told the call was answered
    (the webhook's retries), so the caller's action cannot overtake it."""
    out: list[Script] = []
    for i in range(CALLS):
        at = rng.uniform(8.0, 12.0)
        if i % 20 == 0:
            out.append(Script("desk", Caller(keys=(Press(at, "3"),))))
        elif i % 5 == 1:
            out.append(Script("hang-up", Caller(hangup=at)))
        elif i % 2:
            out.append(Script("leave", Caller(keys=(Press(at, "2"),))))
        else:
            code = "".join(rng.choice("0123456789") for _ in range(4))
            out.append(Script("code", Caller(keys=(Press(at, "1"), Press(at + 1.5, code)))))
    return out


async def _place_all(stack: Stack, plan: list[Script]) -> list[str]:
    gate = asyncio.Semaphore(16)

    async def one(i: int, script: Script) -> str:
        async with gate:
            return await stack.place_call("+14155550100", f"+1415556{i:04d}", caller=script.caller)

    return list(await asyncio.gather(*(one(i, s) for i, s in enumerate(plan))))


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


def _story(
    call_id: str, trace: list[dict[str, Any]], deliveries: list[Delivery], started: float
) -> str:
    """What the daemon handled and what the emulator sent, for a call off its path."""
    zero = time.time() - (time.monotonic() - started)
    lines = [
        f"  {e['at'] - zero:6.2f} handled {e['event']['name']} {e.get('note') or ''}" for e in trace
    ]
    lines += [
        f"  {d.time - zero:6.2f} sent {d.type} #{d.attempt}: {d.status or d.error}"
        for d in deliveries
        if d.envelope["payload"].get("room") == call_id
    ]
    return "\n".join(sorted(lines))


def _daemon_log(path: Path) -> list[dict[str, Any]]:
    lines = []
    for text in path.read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(text))
        except ValueError:
            continue  # a line cut by SIGKILL
    return lines


async def _journals(db: Path, call_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    store = await SQLiteStore.open(db)
    try:
        return {
            call_id: [json.loads(e.payload) for e in await store.journal(call_id)]
            for call_id in call_ids
        }
    finally:
        await store.close()


async def test_calls_survive_sigkills_without_repeating_or_losing_anything(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "crash-line.yaml").write_text(FLOW, encoding="utf-8")
    far_ends = FarEnds()  # everyone answers at once, the desk included
    plan = scripts(rng)
    started = time.monotonic()
    async with asyncio.timeout(BOUND):
        async with Stack(
            flows=flows, workdir=tmp_path / "run", far_ends=far_ends, rate_limits=False, seed=SEED
        ) as stack:
            ids = await _place_all(stack, plan)
            downtimes = await _crash_repeatedly(stack, rng)
            calls = await stack.wait_ended(ids, BOUND - (time.monotonic() - started) - 10)
            traces = {c: await stack.trace(c) for c in ids}
            assert stack.daemon is not None
            assert await stack.daemon.stop() == 0  # the last start drains and exits 0
            log = stack.emulator.log
            deliveries = list(stack.emulator.webhooks.deliveries)
        journals = await _journals(tmp_path / "run" / "calls.db", ids)
        daemon_log = _daemon_log(tmp_path / "run" / "daemon.log")

    assert len(downtimes) == KILLS
    assert len(set(ids)) == CALLS

    # Every call ended by its flow's path, with that path's side effects and no others.
    effects = effects_by_call(log.side_effects())
    problems: list[str] = []
    for call_id, script in zip(ids, plan, strict=True):
        call = calls.get(call_id, {})
        if not call.get("ended"):
            problems.append(f"{call_id} ({script.kind}): still in {call.get('state')!r}")
            continue
        path = path_of(traces[call_id], "crash-line")
        wanted = (MAIN_PATH[script.kind], MAIN_EFFECTS[script.kind])
        if (path, effects.get(call_id, [])) != wanted:
            problems.append(
                f"{call_id} ({script.kind}): {path}, Daily {effects.get(call_id)}\n"
                + _story(call_id, traces[call_id], deliveries, started)
            )
    assert problems == [], "\n".join(problems)

    # No side effect twice: each endpoint acted on at most once per call, in all the log.
    for call_id, done in effects.items():
        assert max(Counter(done).values()) == 1, (call_id, done)

    # No webhook answered 2xx is lost: journaled, or ignored because its call had ended.
    ended: dict[str, str] = {}  # call id -> when the daemon first logged its end (its CDR)
    for line in daemon_log:
        if line.get("event") == "cdr":
            ended.setdefault(line["call_id"], line["timestamp"])
    ignored = {
        line["id"]: (line.get("call_id"), line["timestamp"])
        for line in daemon_log
        if line.get("event") == "webhook for no live call ignored"
    }
    # A webhook is ignored only once its call has ended (ISO timestamps compare as text).
    early = {i: (c, at) for i, (c, at) in ignored.items() if c and not ended.get(c, "~") <= at}
    assert early == {}
    lost: list[str] = []
    for delivery in deliveries:
        if not delivery.ok:
            continue
        envelope = delivery.envelope
        room = envelope["payload"].get("room")
        if envelope["id"] in ignored:
            continue
        wanted_event = {"name": normalise_name(envelope["type"]), "payload": envelope["payload"]}
        journal = journals.get(str(room), [])
        if not any(_same(entry, wanted_event) for entry in journal):
            lost.append(f"{envelope['id']} (room {room})")
    assert lost == []
    retried = [d for d in deliveries if d.attempt > 1]
    assert retried, "no webhook needed a second attempt: the kills missed every call"


def _same(entry: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return bool(entry.get("name") == wanted["name"] and entry.get("payload") == wanted["payload"])


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
