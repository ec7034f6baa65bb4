"""Sessions as JSON: exact round trips, checked restores, and calls that resume identically."""

from __future__ import annotations

import json

import pytest

from flowengine.runtime import FakeHttp, FakeTelephony, FlowSet, HttpStub, RestoreError, Session
from flowengine.runtime.simulator import Simulator

RESUME = """
name: resume
start: welcome
on: {hangup: bye, error: bye}
allowed_hosts: [crm.example.com]
prompts: {ask: "Account?", hi: "Hello {{ vars.name }}"}
vars: {acct: "", name: ""}
states:
  welcome:
    answer: {}
    on: {answered: ask}
  ask:
    collect: {prompt: ask, into: acct, max_digits: 4, timeouts: {first_digit: 5s}}
    on: {ok: lookup, max_attempts: bye}
  lookup:
    http:
      url: "https://crm.example.com/a/{{ vars.acct }}"
      retries: 1
      backoff: 2s
      save: {name: "{{ response.json.name }}"}
    on: {ok: greet, error: bye, timeout: bye}
  greet:
    play: hi
    on: {done: agent}
  agent:
    dial_out: {to: "+14155550123", leg: agent, timeout: 20s}
    on: {answered: bye, no_answer: pause, busy: bye, failed: bye}
  pause:
    wait: {for: 7s}
    on: {done: bye}
  bye:
    hangup: {}
"""

SCRIPT: list[tuple[str, object]] = [
    ("advance", 5),  # no input: attempt 2
    ("dtmf", "12"),
    ("advance", 3),  # inter-digit timeout: ok -> lookup (503)
    ("advance", 1),
    ("advance", 1),  # backoff over: retry -> 200 -> greet -> agent (rings)
    ("send", "participant.joined"),  # not handled by dial_out: recorded, ignored
    ("advance", 19),
    ("advance", 1),  # ring timeout -> no_answer -> pause
    ("advance", 7),  # -> bye
]


def fake() -> FakeTelephony:
    http = FakeHttp([HttpStub(status=503), HttpStub(json={"name": "Ada"})])
    return FakeTelephony(dial_out="no_answer", http=http)


def play(s: Simulator, step: tuple[str, object]) -> None:
    action, arg = step
    if action == "advance":
        s.advance(float(arg))  # type: ignore[arg-type]
    elif action == "dtmf":
        s.dtmf(str(arg))
    else:
        s.send(str(arg))


def test_round_trip_is_exact(flow, sim) -> None:
    f = flow(RESUME)
    s = sim(f, telephony=fake())
    for step in SCRIPT[:5]:
        play(s, step)
    text = s.snapshot()
    again = Session.from_json(text, FlowSet([f]))
    assert again.to_json() == text
    assert json.loads(text)["state"] == "agent"
    assert json.loads(text)["timers"]  # the ring timer, with its absolute deadline


@pytest.mark.parametrize("split", range(len(SCRIPT) + 1))
def test_a_restored_call_continues_identically(flow, sim, split: int) -> None:
    f = flow(RESUME)
    whole = sim(f, telephony=fake())
    for step in SCRIPT:
        play(whole, step)
    assert whole.ended
    assert whole.path[-1] == "bye"

    first_fake = fake()
    first = sim(f, telephony=first_fake)
    for step in SCRIPT[:split]:
        play(first, step)
    record, now = first.snapshot(), first.now
    first.close()
    resumed = Simulator.restore([f], record, at=now, telephony=first_fake, strict=True)
    try:
        for step in SCRIPT[split:]:
            play(resumed, step)
        assert [t.to_dict() for t in resumed.trace] == [t.to_dict() for t in whole.trace]
        assert [c.to_dict() for c in resumed.commands] == [c.to_dict() for c in whole.commands]
        assert resumed.vars == whole.vars
    finally:
        resumed.close()


def test_a_timer_due_during_the_outage_fires_at_once(flow, sim) -> None:
    f = flow(RESUME)
    s = sim(f, telephony=fake())
    record = s.snapshot()  # in ask, the first-digit timer is due 5 s from now
    resumed = Simulator.restore([f], record, at=s.now + 60, telephony=fake(), strict=True)
    try:
        assert resumed.session.attempt == 2  # the timer fired on restore
    finally:
        resumed.close()


def test_restore_refuses_an_unknown_flow_version(flow, sim) -> None:
    f = flow(RESUME)
    s = sim(f)
    other = flow(RESUME.replace("Account?", "Your account?"))
    with pytest.raises(RestoreError, match="is not loaded"):
        Session.from_json(s.snapshot(), FlowSet([other]))


def test_restore_refuses_an_unknown_state(flow, sim) -> None:
    f = flow(RESUME)
    data = json.loads(sim(f).snapshot())
    data["state"] = "nowhere"
    with pytest.raises(RestoreError, match="no state 'nowhere'"):
        Session.from_json(json.dumps(data), FlowSet([f]))


@pytest.mark.parametrize("text", ["not json", "[]", '{"format": 99}', '{"format": 1}'])
def test_restore_refuses_what_is_not_a_session(flow, text: str) -> None:
    with pytest.raises(RestoreError):
        Session.from_json(text, FlowSet([flow(RESUME)]))


def test_a_sub_flow_frame_is_persisted_and_checked(flows, sim) -> None:
    from .test_logic import MAIN, SUB

    loaded = flows(MAIN, SUB)
    s = sim(loaded.values(), "main-flow")
    record = s.snapshot()
    assert json.loads(record)["frames"][0]["state"] == "ask"
    again = Session.from_json(record, FlowSet(loaded.values()))
    assert again.flow == "verify"
    assert again.to_json() == record
    with pytest.raises(RestoreError):
        Session.from_json(record, FlowSet([loaded["verify"]]))
