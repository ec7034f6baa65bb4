"""Property tests: random flows and random events never break the engine.

Flows are drawn as data (one random state of each kind the language has, routed at random),
written as JSON text (JSON is YAML) and built through loader, schema and build, so flows the
checks would refuse are exercised too. For those the checks accept, more is promised.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowengine.build import build_flow
from flowengine.checks import run_checks
from flowengine.checks.graph import FlowGraph
from flowengine.errors import Severity
from flowengine.loader import parse_flow_text
from flowengine.model import DAILY_EVENTS, Flow
from flowengine.runtime import FakeHttp, FakeTelephony, FlowSet, HttpStub, Session, Simulator
from flowengine.runtime.compiler import ENDED, INIT, compile_flow
from flowengine.runtime.events import Event
from flowengine.schema import schema_diagnostics

FINALS = {"f_hang": {"hangup": {"reason": "bye"}}, "f_end": {"end": {}}}
MAX_DURATION = 30 * 60.0
GRACE = 60.0

KINDS: dict[str, tuple[str, Any, tuple[str, ...]]] = {
    "answer": ("answer", {"timeout": "10s"}, ("answered", "failed")),
    "play": ("play", {"prompt": ["p1", "p2"]}, ("done",)),
    "say": ("say", "Number {{ vars.n }}", ("done",)),
    "collect": (
        "collect",
        {
            "prompt": ["p1", "p2"],
            "into": "d",
            "max_digits": 3,
            "attempts": 2,
            "pattern": "[0-9]+",
            "timeouts": {"first_digit": "3s", "inter_digit": "2s", "total": "8s"},
            "no_input_prompt": "p2",
        },
        ("ok", "no_input", "no_match", "max_attempts"),
    ),
    "menu": ("menu", None, ("no_input", "no_match", "max_attempts")),
    "send_dtmf": ("send_dtmf", {"tones": "12#", "leg": "agent"}, ("sent", "failed")),
    "dial_out": (
        "dial_out",
        {"to": "+14155550123", "leg": "agent", "timeout": "10s"},
        ("answered", "no_answer", "busy", "failed"),
    ),
    "stop_dial_out": ("stop_dial_out", {"leg": "agent"}, ("done", "failed")),
    "transfer": ("transfer", {"phone": "+14155550199", "timeout": "20s"}, ("answered", "failed")),
    "refer": ("refer", {"to": "sip:q@pbx.example.com", "timeout": "10s"}, ("accepted", "failed")),
    "wait_for": ("wait", {"for": "2s"}, ("done",)),
    "wait_events": (
        "wait",
        {"events": ["app-message", "participant.joined"], "timeout": "5s"},
        ("app-message", "participant.joined", "timeout"),
    ),
    "choose": ("choose", None, ()),
    "set": ("set", {"n": "{{ vars.n + 1 }}"}, ("done",)),
    "http": (
        "http",
        {"url": "https://crm.example.com/x", "retries": 1, "timeout": "2s", "backoff": "1s"},
        ("ok", "error", "timeout"),
    ),
    "schedule": (
        "schedule",
        {"timezone": "UTC", "hours": {"mon-fri": "09:00-17:00"}, "holidays": ["2026-01-01"]},
        ("open", "closed", "holiday"),
    ),
}


@st.composite
def flow_data(draw: st.DrawFn) -> dict[str, Any]:
    """A schema-valid flow: 1 to 7 random open states, two final ones, random routes."""
    kinds = draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=7))
    names = [f"s{i}" for i in range(len(kinds))]
    everything = [*names, *FINALS]
    target = st.sampled_from(everything)
    states: dict[str, Any] = {}
    for name, kind in zip(names, kinds, strict=True):
        key, body, outcomes = KINDS[kind]
        if kind == "menu":
            body = {"prompt": "p1", "options": {"1": draw(target), "2": draw(target)}}
            body |= {"timeout": "3s", "attempts": 2}
        elif kind == "choose":
            body = {"when": [{"if": "vars.n > 1", "goto": draw(target)}], "otherwise": draw(target)}
        routes = {o: draw(target) for o in outcomes if draw(st.booleans()) or o == outcomes[0]}
        for extra in draw(st.lists(st.sampled_from(["hangup", "error", "dialout.stopped"]))):
            routes[extra] = draw(target)
        state: dict[str, Any] = {key: body}
        if routes:
            state["on"] = routes
        if draw(st.integers(0, 4)) == 0:
            state["max_visits"] = draw(st.integers(1, 3))
            if draw(st.booleans()):
                state.setdefault("on", {})["max_visits"] = draw(target)
        states[name] = state
    handlers = {
        k: draw(target)
        for k in draw(st.lists(st.sampled_from(["hangup", "error", "limit", "app-message"])))
    }
    data: dict[str, Any] = {
        "name": "random-flow",
        "start": names[0],
        "vars": {"n": 0, "d": ""},
        "prompts": {"p1": "One {{ vars.n }}", "p2": "Two"},
        "allowed_hosts": ["crm.example.com"],
        "limits": {"max_steps": 200, "max_duration": "30m"},
        "states": states | FINALS,
    }
    if handlers:
        data["on"] = handlers
    return data


def build(data: dict[str, Any]) -> tuple[Flow, bool]:
    """The flow, and whether the checks accept it."""
    doc = parse_flow_text(json.dumps(data, indent=1), "random.yaml")
    assert doc.ok, doc.diagnostics
    assert schema_diagnostics(doc) == []
    flow, problems = build_flow(doc)
    assert problems == []
    diagnostics = run_checks(flow, doc, {})
    return flow, not any(d.severity is Severity.ERROR for d in diagnostics)


SESSIONS = st.sampled_from([None, "sim-1-caller", "dialout-1", "dialout-2", "stranger"])
NAMES = st.sampled_from([*DAILY_EVENTS, "no.such-event", "meeting.ended"])


@st.composite
def event(draw: st.DrawFn) -> tuple[str, Any]:
    """One thing that happens to the call."""
    choice = draw(st.integers(0, 9))
    if choice <= 2:
        return "dtmf", draw(st.sampled_from("0123456789*#A"))
    if choice == 3:
        return "advance", draw(st.sampled_from([0, 0.5, 2, 5, 30, 120]))
    if choice == 4:
        name = draw(st.sampled_from(["command.ok", "command.failed", "play.done", "timer"]))
        key = draw(st.sampled_from(["sim-1:1:0", "sim-1:2:1", "sim-1:3:0", "bogus"]))
        data = {"sessionId": draw(SESSIONS)}
        cmd = draw(st.sampled_from(["start_dial_out", "play", "http_request", "answer"]))
        payload = {"key": key, "id": key, "command": cmd, "data": data, "error": "timeout"}
        return "send", Event(name, payload, draw(st.sampled_from([None, "agent", "caller"])))
    if choice == 5:
        return "send", Event(draw(st.sampled_from(["hangup", "start"])))
    payload: dict[str, Any] = {"session_id": draw(SESSIONS)}
    if draw(st.booleans()):
        payload["error_msg"] = draw(st.sampled_from(["486 Busy Here", "failed", ""]))
        payload["is_sip_refer"] = draw(st.booleans())
    return "send", Event(draw(NAMES), payload)


fakes = st.builds(
    lambda dial, xfer, refer, answer, dtmf, stop, http: FakeTelephony(
        dial_out=dial,
        transfer=xfer,
        refer=refer,
        answer=answer,
        send_dtmf=dtmf,
        stop_dial_out=stop,
        http=FakeHttp([HttpStub(repeat=True, **http)]),
    ),
    st.sampled_from(["answered", "no_answer", "busy", "failed"]),
    st.sampled_from(["answered", "failed"]),
    st.sampled_from(["accepted", "failed"]),
    st.sampled_from(["connected", "failed"]),
    st.sampled_from(["ok", "failed"]),
    st.sampled_from(["ok", "failed"]),
    st.sampled_from([{}, {"status": 500}, {"timeout": True}, {"hang": True}, {"status": 404}]),
)

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def drive(sim: Simulator, actions: list[tuple[str, Any]]) -> None:
    for action, arg in actions:
        if action == "dtmf":
            sim.dtmf(arg)
        elif action == "advance":
            sim.advance(arg)
        else:
            sim.send(arg)


@PROPERTY
@given(flow_data(), st.lists(event(), max_size=25), fakes)
def test_random_events_never_raise_and_hangup_always_ends(
    data: dict[str, Any], actions: list[tuple[str, Any]], fake: FakeTelephony
) -> None:
    flow, clean = build(data)
    sim = Simulator(flow, telephony=fake, strict=True)
    try:
        drive(sim, actions)
        record = sim.snapshot()
        assert Session.from_json(record, FlowSet([flow])).to_json() == record
        sim.hangup()
        if clean:  # a flow the checks accept ends soon after the caller has gone
            sim.advance(10 * 60)
            assert sim.ended, [t.to_dict() for t in sim.trace[-5:]]
        sim.advance(MAX_DURATION + GRACE)  # any flow: the limits end every call
        assert sim.ended
        assert sim.state in (*FINALS, ENDED)
        assert sim.session.timers == {}
    finally:
        sim.close()


@PROPERTY
@given(flow_data())
def test_the_machine_reaches_what_the_checker_reaches(data: dict[str, Any]) -> None:
    flow, _ = build(data)
    machine = compile_flow(flow).reachable() - {INIT, ENDED}
    checker = FlowGraph.of(flow).reachable()
    assert machine == checker
