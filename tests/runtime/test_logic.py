"""wait, choose, set, http, schedule, and sub-flow call and return."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from flowengine.runtime import FakeHttp, FakeTelephony, HttpStub
from flowengine.runtime.commands import HttpRequest

from .conftest import unchecked

WAIT = """
name: wait-test
start: pause
on: {hangup: fin, error: fin}
states:
  pause:
    wait: {for: 2s}
    on: {done: listen}
  listen:
    wait: {events: [participant.joined, app-message], timeout: 10s}
    on: {participant.joined: joined, app-message: message, timeout: quiet}
  joined:
    end: {}
  message:
    end: {}
  quiet:
    end: {}
  fin:
    end: {}
"""


def test_wait_for_a_time(flow, sim) -> None:
    s = sim(flow(WAIT))
    s.advance(1.9)
    assert s.state == "pause"
    s.advance(0.1)
    assert s.state == "listen"


@pytest.mark.parametrize(
    ("event", "state"), [("participant.joined", "joined"), ("app-message", "message")]
)
def test_wait_for_events(flow, sim, event: str, state: str) -> None:
    s = sim(flow(WAIT))
    s.advance(2)
    s.send("participant.left")  # not listed and not the caller's leg: ignored
    assert s.state == "listen"
    s.send(event)
    assert s.state == state


def test_wait_for_events_times_out(flow, sim) -> None:
    s = sim(flow(WAIT))
    s.advance(12)
    assert s.path == ["pause", "listen", "quiet"]


CHOOSE = """
name: choose-test
start: init
on: {hangup: fin, error: oops}
vars: {balance: 0, tier: "", count: 0, ratio: 0}
states:
  init:
    set:
      count: "{{ vars.count + 1 }}"
      tier: "{{ 'gold' if vars.balance > 100 else 'std' }}"
      ratio: "{{ vars.balance / vars.count }}"
    on: {done: pick}
  pick:
    choose:
      when:
        - {if: "vars.balance > 1000", goto: vip}
        - {if: "vars.tier == 'gold'", goto: gold}
      otherwise: standard
  vip:
    end: {}
  gold:
    end: {}
  standard:
    end: {}
  oops:
    hangup: {reason: error}
  fin:
    end: {}
"""


@pytest.mark.parametrize(("balance", "state"), [(5000, "vip"), (500, "gold"), (0, "standard")])
def test_set_then_choose(flow, sim, balance: int, state: str) -> None:
    s = sim(flow(CHOOSE), variables={"balance": balance})
    assert s.path == ["init", "pick", state]
    assert s.vars["count"] == 1  # a single expression keeps its type
    assert s.vars["ratio"] == balance


def test_a_failing_template_goes_to_the_error_handler(flow, sim) -> None:
    text = CHOOSE.replace('if: "vars.balance > 1000"', 'if: "vars.balance / (vars.count - 1) > 0"')
    s = sim(flow(text))
    assert s.path == ["init", "pick", "oops"]
    assert any("division by zero" in (t.note or "") for t in s.trace)


HTTP = """
name: http-test
start: lookup
on: {hangup: fin, error: fin}
allowed_hosts: [crm.example.com]
vars: {account: "42", name: "", balance: 0}
states:
  lookup:
    http:
      method: POST
      url: "https://crm.example.com/accounts/{{ vars.account }}"
      headers: {X-Call: "{{ call.id }}"}
      query: {full: "1"}
      body: {account: "{{ vars.account }}", tags: [a, "{{ vars.account }}"]}
      timeout: 2s
      retries: 2
      backoff: 1s
      save: {name: "{{ response.json.name }}", balance: "{{ response.json.balance }}"}
    on: {ok: good, error: bad, timeout: slow}
  good:
    end: {}
  bad:
    hangup: {reason: error}
  slow:
    hangup: {reason: timeout}
  fin:
    end: {}
"""

URL = "https://crm.example.com/accounts/42"


def http_fake(*stubs: HttpStub) -> FakeTelephony:
    return FakeTelephony(http=FakeHttp(stubs))


def requests(s) -> list[HttpRequest]:
    return [c for c in s.commands if isinstance(c, HttpRequest)]


def test_http_ok_saves_from_the_response(flow, sim) -> None:
    s = sim(
        flow(HTTP),
        telephony=http_fake(HttpStub.parse(f"POST {URL}", json={"name": "Ada", "balance": 12.5})),
    )
    (req,) = requests(s)
    assert (req.method, req.url, dict(req.params)) == ("POST", URL, {"full": "1"})
    assert req.headers == {"X-Call": "sim-1"}
    assert req.body == {"account": "42", "tags": ["a", "42"]}
    assert s.vars["name"] == "Ada"
    assert s.vars["balance"] == 12.5
    assert s.state == "good"


def test_http_client_error_is_not_retried(flow, sim) -> None:
    s = sim(flow(HTTP), telephony=http_fake(HttpStub(status=404, repeat=True)))
    assert len(requests(s)) == 1
    assert s.state == "bad"


def test_http_server_errors_are_retried_with_backoff(flow, sim) -> None:
    fake = http_fake(
        HttpStub(status=503), HttpStub(status=502), HttpStub(json={"name": "Bo", "balance": 1})
    )
    s = sim(flow(HTTP), telephony=fake)
    assert len(requests(s)) == 1
    s.advance(0.9)
    assert len(requests(s)) == 1
    s.advance(0.1)  # first retry after backoff
    assert len(requests(s)) == 2
    assert s.state == "lookup"
    s.advance(1.9)
    assert len(requests(s)) == 2
    s.advance(0.1)  # second retry after twice the backoff
    assert [r.attempt for r in requests(s)] == [1, 2, 3]
    assert s.state == "good"
    assert s.vars["name"] == "Bo"


def test_http_timeouts_exhaust_the_retries(flow, sim) -> None:
    s = sim(flow(HTTP), telephony=http_fake(HttpStub(timeout=True, repeat=True)))
    s.advance(3)
    assert len(requests(s)) == 3
    assert s.state == "slow"


def test_http_that_never_answers_times_out_by_the_guard(flow, sim) -> None:
    s = sim(flow(HTTP), telephony=http_fake(HttpStub(hang=True, repeat=True)))
    s.advance(2.9)
    assert len(requests(s)) == 1
    s.advance(0.1)  # guard: timeout 2s + 1s
    s.advance(1)  # backoff
    assert len(requests(s)) == 2
    s.advance(3 + 2 + 3)
    assert len(requests(s)) == 3
    assert s.state == "slow"


def test_http_transport_error_then_ok(flow, sim) -> None:
    s = sim(
        flow(HTTP),
        telephony=http_fake(
            HttpStub(error="connection refused"), HttpStub(json={"name": "C", "balance": 2})
        ),
    )
    s.advance(1)
    assert s.state == "good"


def test_http_host_not_allowed_never_sends(sim) -> None:
    # The checks refuse such a flow; the runtime refuses the request all the same.
    text = HTTP.replace("allowed_hosts: [crm.example.com]", "allowed_hosts: [other.example.com]")
    s = sim(unchecked(text))
    assert requests(s) == []
    assert s.state == "bad"
    assert any("allowed_hosts" in (t.note or "") for t in s.trace)


def test_http_save_failing_is_error(flow, sim) -> None:
    s = sim(flow(HTTP), telephony=http_fake(HttpStub(json=None)))
    assert s.state == "bad"


SCHEDULE = """
name: hours-test
start: when
on: {hangup: fin, error: fin}
vars: {force: ""}
states:
  when:
    schedule:
      timezone: America/Los_Angeles
      hours: {mon-fri: "09:00-17:30", sat: ["10:00-12:00", "13:00-16:00"]}
      holidays: ["2026-12-25"]
      override: "{{ vars.force }}"
    on: {open: opened, closed: shut, %(holiday)s}
  opened:
    end: {}
  shut:
    end: {}
  feast:
    end: {}
  fin:
    end: {}
"""

PST = timezone(timedelta(hours=-8))


def schedule(holiday: bool = True) -> str:
    return SCHEDULE % {"holiday": "holiday: feast" if holiday else "error: fin"}


@pytest.mark.parametrize(
    ("at", "state"),
    [
        (datetime(2026, 11, 23, 9, 0, tzinfo=PST), "opened"),  # Monday
        (datetime(2026, 11, 23, 8, 59, tzinfo=PST), "shut"),
        (datetime(2026, 11, 23, 17, 30, tzinfo=PST), "shut"),  # the end is excluded
        (datetime(2026, 11, 28, 12, 30, tzinfo=PST), "shut"),  # Saturday, lunch
        (datetime(2026, 11, 28, 13, 0, tzinfo=PST), "opened"),
        (datetime(2026, 11, 29, 11, 0, tzinfo=PST), "shut"),  # Sunday: no hours
        (datetime(2026, 11, 23, 17, 0, tzinfo=UTC), "opened"),  # 09:00 in LA
        (datetime(2026, 11, 23, 16, 59, tzinfo=UTC), "shut"),
        (datetime(2026, 12, 25, 10, 0, tzinfo=PST), "feast"),  # a Friday, but a holiday
    ],
)
def test_schedule_in_the_flows_time_zone(flow, sim, at: datetime, state: str) -> None:
    s = sim(flow(schedule()), at=at)
    assert s.path == ["when", state]


def test_schedule_holiday_falls_back_to_closed(flow, sim) -> None:
    s = sim(flow(schedule(holiday=False)), at=datetime(2026, 12, 25, 10, 0, tzinfo=PST))
    assert s.path == ["when", "shut"]


@pytest.mark.parametrize(
    ("force", "hour", "state"), [("closed", 10, "shut"), ("open", 22, "opened")]
)
def test_schedule_override_wins(flow, sim, force: str, hour: int, state: str) -> None:
    at = datetime(2026, 11, 23, hour, 0, tzinfo=PST)
    s = sim(flow(schedule()), at=at, variables={"force": force})
    assert s.path == ["when", state]


MAIN = """
name: main-flow
start: ask
on: {hangup: fin, error: fin}
vars: {acct: "7", verified: false}
states:
  ask:
    call:
      flow: verify
      inputs: {allowed: 2, greeting: "hi {{ vars.acct }}"}
      outputs: {verified: ok_flag}
    on: {done: check, failed: refused}
  check:
    choose:
      when:
        - {if: "vars.verified", goto: welcome}
      otherwise: refused
  welcome:
    end: {}
  refused:
    hangup: {reason: refused}
  fin:
    end: {}
"""

SUB = """
name: verify
start: pin
inputs:
  allowed: {type: integer, default: 3}
  greeting: {type: string, default: ""}
outputs: [ok_flag]
vars: {ok_flag: false, pin: ""}
prompts: {ask: "PIN please"}
states:
  pin:
    collect: {prompt: ask, into: pin, min_digits: 4, max_digits: 4, attempts: 2}
    on: {ok: good, max_attempts: bad}
  good:
    set: {ok_flag: true}
    on: {done: back}
  back:
    return: {outcome: done}
  bad:
    return: {outcome: failed}
"""


def test_sub_flow_call_and_return(flows, sim) -> None:
    s = sim(flows(MAIN, SUB).values(), "main-flow")
    assert s.flow == "verify"
    assert s.state == "pin"
    assert s.vars == {"ok_flag": False, "pin": "", "allowed": 2, "greeting": "hi 7"}
    assert [f.state for f in s.session.frames] == ["ask"]
    s.dtmf("1234")
    assert s.flow == "main-flow"
    assert s.path == ["ask", "pin", "good", "back", "check", "welcome"]
    assert s.vars == {"acct": "7", "verified": True}


def test_sub_flow_return_outcome_routes_in_the_calling_state(flows, sim) -> None:
    s = sim(flows(MAIN, SUB).values(), "main-flow")
    s.advance(20)
    assert s.path == ["ask", "pin", "bad", "refused"]
    assert s.vars["verified"] is False


def test_hangup_in_a_sub_flow_goes_to_the_callers_handler(flows, sim) -> None:
    s = sim(flows(MAIN, SUB).values(), "main-flow")
    s.hangup()
    assert s.flow == "main-flow"
    assert s.path == ["ask", "pin", "fin"]
    assert s.session.frames == []
    assert s.outcome == "caller_hangup"
