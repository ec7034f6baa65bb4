"""Where outcomes go: flow-wide hangup and error handlers from every state, limits, endings."""

from __future__ import annotations

import pytest

from flowengine.runtime import CommandResult, FakeHttp, FakeTelephony, HttpStub, Runtime
from flowengine.runtime.compiler import compile_flow
from flowengine.runtime.events import Event

BOOM = "{{ 1 / (0 if vars.boom else 1) }}"
"""A template that fails when ``vars.boom`` is true."""

EVERY = """
name: every-kind
start: %(start)s
on: {hangup: cleanup, error: oops}
vars: {n: 0, d: "", boom: false}
allowed_hosts: [crm.example.com]
prompts: {p: "%(boom)s"}
states:
  welcome:
    answer: {}
    on: {answered: greet}
  greet:
    play: p
    on: {done: speak}
  speak:
    say: "%(boom)s"
    on: {done: digits}
  digits:
    collect: {prompt: p, into: d, max_digits: 2}
    on: {ok: pick}
  pick:
    menu: {prompt: p, options: {1: dial}}
  dial:
    dial_out: {to: "+14155550123", leg: agent}
    on: {answered: tones}
  tones:
    send_dtmf: {tones: "1", leg: agent}
    on: {sent: hold}
  hold:
    wait: {for: 1s}
    on: {done: listen}
  listen:
    wait: {events: [app-message], timeout: 5s}
    on: {app-message: stop, timeout: stop}
  stop:
    stop_dial_out: {leg: agent}
    on: {done: branch}
  branch:
    choose:
      when:
        - {if: "%(cond)s", goto: assign}
      otherwise: assign
  assign:
    set: {n: "%(boom)s"}
    on: {done: fetch}
  fetch:
    http: {url: "https://crm.example.com/x"}
    on: {ok: hours}
  hours:
    schedule: {timezone: UTC, hours: {mon-sun: "00:00-24:00"}, override: "%(boom)s"}
    on: {open: xfer, closed: xfer}
  xfer:
    transfer: {phone: "+14155550199"}
    on: {answered: ref}
  ref:
    refer: {to: "sip:q@pbx.example.com"}
    on: {accepted: done}
  cleanup:
    hangup: {reason: cleanup}
  oops:
    hangup: {reason: error}
  done:
    end: {}
"""

OPEN = [
    "welcome", "greet", "speak", "digits", "pick", "dial", "tones", "hold", "listen", "stop",
    "branch", "assign", "fetch", "hours", "xfer", "ref",
]  # fmt: skip
WAITING = [s for s in OPEN if s not in ("branch", "assign", "hours")]
"""States a call rests in; the others decide at once and move on."""


def every(start: str = "welcome") -> str:
    cond = "vars.n / (0 if vars.boom else 1) > 0"
    return EVERY % {"start": start, "boom": BOOM, "cond": cond}


def test_every_open_state_has_the_flow_handlers(flow) -> None:
    table = compile_flow(flow(every())).table
    for name in OPEN:
        assert table[name]["hangup"] == "cleanup", name
        if name != "listen":  # its only failure (timeout) is routed: no implicit error edge
            assert table[name]["error"] == "oops", name
    assert "error" not in table["listen"]


@pytest.mark.parametrize("start", WAITING)
def test_hangup_from_every_state_goes_to_the_flow_handler(flow, start: str) -> None:
    runtime = Runtime([flow(every(start))], strict=True)
    session = runtime.new_session("c1", "every-kind", call={"session_id": "caller-1"})
    session.legs["agent"] = "dialout-1"  # as if a dial-out had been answered before
    runtime.handle(session, Event("start"), 0.0)
    assert session.state == start  # nothing answers the commands: the call waits here
    commands = runtime.handle(session, Event("hangup"), 1.0)
    assert session.state == "cleanup"
    assert session.ended
    assert session.outcome == "caller_hangup"  # the flow's clean-up ran, but the caller hung up
    assert commands[-1].to_dict() == {
        "type": "hangup",
        "key": f"c1:2:{len(commands) - 1}",
        "call_id": "c1",
        "reason": "cleanup",
    }
    assert session.timers == {}


FAILING = FakeTelephony(
    answer="failed",
    dial_out="failed",
    transfer="failed",
    refer="failed",
    send_dtmf="failed",
    stop_dial_out="failed",
    http=FakeHttp([HttpStub(status=500, repeat=True)]),
)


@pytest.mark.parametrize("start", [s for s in OPEN if s not in ("hold", "listen")])
def test_failure_in_every_state_goes_to_the_flow_error_handler(flow, sim, start: str) -> None:
    s = sim(flow(every(start)), telephony=FAILING, variables={"boom": True})
    if start == "stop":  # nothing to stop when no leg is up: done, and on to a failure
        assert s.path[:2] == ["stop", "branch"]
    assert s.path[-1] == "oops", s.path
    assert s.outcome == "hangup"
    assert s.commands[-1].reason == "error"


NO_HANDLERS = """
name: bare
start: speak
vars: {boom: false}
states:
  speak:
    say: "%s"
    on: {done: fin}
  fin:
    end: {}
"""


def test_an_error_without_a_handler_hangs_up(flow, sim) -> None:
    s = sim(flow(NO_HANDLERS % BOOM), variables={"boom": True})
    assert s.ended
    assert s.outcome == "error"
    assert s.state == "_ended"
    assert s.commands[-1].kind == "hangup"
    assert s.commands[-1].reason == "error"


def test_a_hangup_without_a_handler_ends_the_call(flow, sim) -> None:
    fake = FakeTelephony(results={"say": CommandResult.success()})
    s = sim(flow(NO_HANDLERS % "hello"), telephony=fake)
    s.hangup()
    assert s.ended
    assert s.outcome == "caller_hangup"
    assert s.state == "_ended"


def test_a_state_route_on_hangup_wins_over_the_flow_handler(flow, sim) -> None:
    text = every().replace("on: {answered: greet}", "on: {answered: greet, hangup: done}")
    s = sim(flow(text), telephony=FakeTelephony(results={"answer": CommandResult.success()}))
    s.hangup()
    assert s.path == ["welcome", "done"]


def test_caller_gone_skips_prompts_and_ends_at_input(flow, sim) -> None:
    text = every().replace("on: {hangup: cleanup, error: oops}", "on: {hangup: greet, error: oops}")
    s = sim(flow(text), telephony=FakeTelephony(results={"answer": CommandResult.success()}))
    s.send("dialin.stopped")
    assert s.path == ["welcome", "greet", "speak", "digits"]
    assert s.outcome == "caller_hangup"
    assert not any(c.kind == "play" for c in s.commands)


LIMITS = """
name: limits
start: menu
limits: {max_steps: 6, max_duration: 1m}
on: {hangup: fin, error: fin%(limit)s}
prompts: {p: "P"}
states:
  menu:
    menu: {prompt: p, options: {1: again}, timeout: 50s}
  again:
%(visits)s    play: p
    on: {done: menu%(tired)s}
  over:
    wait: {for: %(grace)s}
    on: {done: fin}
  tired:
    end: {}
  fin:
    end: {}
"""


def limits(
    handler: bool = True, visits: int | None = None, tired: bool = False, grace: str = "1s"
) -> str:
    return LIMITS % {
        "limit": ", limit: over" if handler else "",
        "visits": f"    max_visits: {visits}\n" if visits else "",
        "tired": ", max_visits: tired" if tired else "",
        "grace": grace,
    }


def test_max_steps_goes_to_the_limit_handler(flow, sim) -> None:
    s = sim(flow(limits()))
    s.dtmf("111")  # menu again menu again menu again: 6 states entered
    assert s.path == ["menu", "again"] * 3 + ["menu", "over"]  # the 7th is not run
    assert any("max_steps exceeded" in (t.note or "") for t in s.trace)


def test_max_steps_without_a_handler_hangs_up(flow, sim) -> None:
    s = sim(flow(limits(handler=False)))
    s.dtmf("111")
    assert s.ended
    assert s.outcome == "limit"
    assert s.commands[-1].reason == "limit"


def test_max_duration_goes_to_the_limit_handler(flow, sim) -> None:
    s = sim(flow(limits()))
    s.advance(59.9)
    assert s.state == "menu"
    s.advance(0.1)
    assert s.path == ["menu", "over"]


def test_the_limit_handler_gets_a_grace_period(flow, sim) -> None:
    s = sim(flow(limits(grace="10m")))
    s.advance(60)
    assert s.state == "over"
    s.advance(60)  # the grace period (60 s by default) is over
    assert s.ended
    assert s.outcome == "limit"
    assert s.state == "_ended"


def test_max_visits_routed(flow, sim) -> None:
    s = sim(flow(limits(visits=2, tired=True)))
    s.dtmf("11")
    assert s.path == ["menu", "again", "menu", "again", "menu"]
    s.dtmf("1")
    assert s.path[-2:] == ["again", "tired"]


def test_max_visits_unrouted_goes_to_the_limit_handler(flow, sim) -> None:
    s = sim(flow(limits(visits=1)))
    s.dtmf("11")
    assert s.path == ["menu", "again", "menu", "again", "over"]
