"""The async shell: many calls at once, ports, timers, unknown calls and unhandled events."""

from __future__ import annotations

import asyncio

import pytest

from flowengine import model as m
from flowengine.runtime import (
    AsyncioClock,
    CallExistsError,
    Command,
    CommandResult,
    Engine,
    FakeTelephony,
    Session,
    UnknownFlowError,
    VirtualClock,
)
from flowengine.runtime import events as ev
from flowengine.runtime.actions import KINDS

CALL = """
name: engine-test
start: menu
on: {hangup: fin, error: fin}
prompts: {p: "Press 1 or 2"}
vars: {picked: ""}
states:
  menu:
    menu: {prompt: p, options: {1: one, 2: two}, timeout: 5s, into: picked}
    on: {max_attempts: fin}
  one:
    wait: {for: 2s}
    on: {done: fin}
  two:
    play: p
    on: {done: fin}
  fin:
    hangup: {}
"""


async def test_many_calls_run_concurrently_and_independently(flow) -> None:
    clock, fake = VirtualClock(), FakeTelephony()
    engine = Engine([flow(CALL)], fake, clock, strict=True)
    for i in range(200):
        engine.start_call(f"c{i}", "engine-test")
    await clock.advance(0)
    for i in range(200):
        engine.post(f"c{i}", ev.dtmf("1" if i % 2 else "2"))
    await clock.advance(0)
    assert sum(s.state == "one" for s in engine.calls.values()) == 100
    await clock.advance(2)
    assert all(s.ended for s in engine.calls.values())
    keys = [c.key for c in fake.commands]
    assert len(keys) == len(set(keys))
    assert {s.vars["picked"] for s in engine.calls.values()} == {"1", "2"}
    await engine.aclose()


async def test_events_for_unknown_calls_are_kept_not_raised(flow) -> None:
    engine = Engine([flow(CALL)], FakeTelephony(), VirtualClock())
    assert engine.post("nobody", ev.dtmf("1")) is False
    assert engine.unrouted[-1] == ("nobody", ev.dtmf("1"))
    await engine.aclose()


async def test_unhandled_and_late_events_are_recorded(flow) -> None:
    clock = VirtualClock()
    engine = Engine([flow(CALL)], FakeTelephony(), clock, strict=True)
    session = engine.start_call("c1", "engine-test")
    engine.post("c1", ev.Event("calltransfer.answered", {"session_id": "x"}))
    engine.post("c1", ev.Event("no.such-event"))
    engine.post("c1", ev.Event("timer", {"id": "nope", "purpose": "menu"}))
    await clock.advance(0)
    notes = [t.note for t in session.trace]
    assert "state 'menu' does not handle calltransfer.answered" in notes
    assert "state 'menu' does not handle no.such-event" in notes
    assert "the timer was cancelled" in notes
    engine.post("c1", ev.dtmf("2"))
    await clock.advance(0)
    assert session.ended
    engine.post("c1", ev.dtmf("1"))
    await clock.advance(0)
    assert session.trace[-1].note == "the call has ended"
    await engine.aclose()


async def test_a_port_that_raises_gives_command_failed(flow) -> None:
    class Broken(FakeTelephony):
        async def execute(self, command: Command) -> CommandResult:
            if command.kind == "play":
                raise ConnectionError("agent gone")
            return await super().execute(command)

    clock = VirtualClock()
    engine = Engine([flow(CALL)], Broken(), clock, strict=True)
    session = engine.start_call("c1", "engine-test")
    await clock.advance(0)
    failed = [t for t in session.trace if t.event.name == "command.failed"]
    assert failed[0].event.payload["error"] == "ConnectionError: agent gone"
    assert session.state == "menu"  # a failed prompt does not trap the call
    await engine.aclose()


async def test_a_bug_in_an_action_ends_only_that_call(flow, monkeypatch) -> None:
    def broken(step, action, event):  # type: ignore[no-untyped-def]
        raise RuntimeError("bug")

    monkeypatch.setitem(KINDS, m.Wait, (KINDS[m.Wait][0], broken))
    clock = VirtualClock()
    engine = Engine([flow(CALL)], FakeTelephony(), clock)
    a, b = engine.start_call("a", "engine-test"), engine.start_call("b", "engine-test")
    await clock.advance(0)
    engine.post("a", ev.dtmf("1"))
    engine.post("b", ev.dtmf("2"))
    await clock.advance(5)
    assert a.ended
    assert a.outcome == "error"
    assert "RuntimeError('bug')" in (a.trace[-2].note or "")
    assert b.ended
    assert b.outcome == "hangup"
    await engine.aclose()


async def test_observer_sees_every_handled_event(flow) -> None:
    seen: list[tuple[str, int]] = []
    clock = VirtualClock()
    engine = Engine(
        [flow(CALL)], FakeTelephony(), clock, observer=lambda s, c: seen.append((s.state, len(c)))
    )
    session = engine.start_call("c1", "engine-test")
    await clock.advance(0)
    assert len(seen) == len(session.trace)
    assert seen[0][0] == "menu"
    await engine.aclose()


async def test_ids_and_flow_names_are_checked(flow) -> None:
    engine = Engine([flow(CALL)], FakeTelephony(), VirtualClock())
    engine.start_call("c1", "engine-test")
    with pytest.raises(CallExistsError):
        engine.start_call("c1", "engine-test")
    with pytest.raises(UnknownFlowError):
        engine.start_call("c2", "no-such-flow")
    await engine.aclose()


async def test_real_clock_timers_fire(flow) -> None:
    text = CALL.replace("wait: {for: 2s}", "wait: {for: 50ms}")
    engine = Engine([flow(text)], FakeTelephony(), AsyncioClock(), strict=True)
    session = engine.start_call("c1", "engine-test")
    await engine.idle()
    engine.post("c1", ev.dtmf("1"))
    await engine.idle()
    assert session.state == "one"
    await asyncio.sleep(0.2)
    await engine.idle()
    assert session.ended
    await engine.aclose()


async def test_restore_rearms_a_due_timer_at_once_with_the_real_clock(flow) -> None:
    f = flow(CALL)
    first = Engine([f], FakeTelephony(), AsyncioClock(), strict=True)
    first.start_call("c1", "engine-test")
    await first.idle()
    first.post("c1", ev.dtmf("1"))
    await first.idle()
    session = first.get("c1")
    assert session is not None
    assert session.state == "one"
    record = session.to_json()
    await first.aclose()
    # the wait's deadline is 2 s ahead; pretend the process was down for longer
    data = Session.from_json(record, first.runtime.flows)
    for timer in data.timers.values():
        timer.deadline -= 10
    second = Engine([f], FakeTelephony(), AsyncioClock(), strict=True)
    restored = second.restore(data.to_json())
    await asyncio.sleep(0.05)
    await second.idle()
    assert restored.ended
    assert restored.outcome == "hangup"
    await second.aclose()


async def test_remove_forgets_a_call(flow) -> None:
    clock = VirtualClock()
    engine = Engine([flow(CALL)], FakeTelephony(), clock)
    engine.start_call("c1", "engine-test")
    assert engine.remove("c1") is not None
    await engine.idle()
    assert engine.get("c1") is None
    assert engine.post("c1", ev.dtmf("1")) is False
    assert clock.pending() == 0
    await engine.aclose()
