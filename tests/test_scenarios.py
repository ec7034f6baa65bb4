"""Scenario tests: the runner on small flows, its failure messages, bad files, and coverage.

Every scenario here runs on ``mini`` (below) unless it says otherwise: answer, a two-option
menu, a transfer to the chosen team's room. A test that expects a pass also has a twin that
changes one expected value and must fail, so the runner cannot pass vacuously.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from flowengine.errors import Diagnostic, UsageError
from flowengine.project import load_flows
from flowengine.runtime import FlowSet, Session, Simulator
from flowengine.runtime.commands import SipCallTransfer, StartDialOut
from flowengine.scenarios import Run, flow_edges, run_paths
from flowengine.scenarios.loader import scenario_schema
from flowengine.scenarios.report import render
from flowengine.scenarios.runner import ScenarioTelephony

from .conftest import ROOT

MINI = """\
name: mini
start: welcome
on: {hangup: bye, error: sorry}
prompts: {menu: "Press 1 for sales or 2 for support."}
vars: {team: ""}
states:
  welcome:
    answer: {}
    on: {answered: menu, failed: bye}
  menu:
    menu: {prompt: menu, options: {1: sales, 2: support}, timeout: 5s, attempts: 2}
    on: {no_input: bye, max_attempts: bye}
  sales:
    set: {team: sales}
    on: {done: xfer}
  support:
    set: {team: support}
    on: {done: xfer}
  xfer:
    transfer: {room: "{{ vars.team }}"}
    on: {answered: done, failed: bye}
  sorry:
    say: Sorry.
    on: {done: bye}
  bye:
    hangup: {}
  done:
    end: {}
"""

SALES = """\
flow: mini
scenarios:
  - name: sales
    steps:
      - expect: {state: menu, commands: [{answer: {}}, {play: {prompt: menu}}]}
      - dtmf: 1
      - expect:
          state: done
          path: [welcome, menu, sales, xfer, done]
          vars: {team: sales}
          commands:
            - sip_call_transfer: {room: sales, toEndPoint: "sip:sales@example.sip.daily.co"}
    end: {ended: true, outcome: end}
"""


def scenario_file(tmp_path: Path, text: str, flow: str = MINI, name: str = "mini") -> Path:
    """Write ``flows/<name>.yaml`` and ``flows/tests/<name>.test.yaml``; return the latter."""
    flows = tmp_path / "flows"
    (flows / "tests").mkdir(parents=True, exist_ok=True)
    (flows / f"{name}.yaml").write_text(flow, encoding="utf-8")
    path = flows / "tests" / f"{name}.test.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def run(tmp_path: Path, text: str, flow: str = MINI) -> Run:
    return run_paths([scenario_file(tmp_path, text, flow)])


def one_failure(result: Run) -> tuple[str, int, tuple[str, ...]]:
    """The only failure of a run with one failing scenario: message, line, details."""
    (failed,) = result.failed
    (failure,) = failed.failures
    return failure.message, failure.location.line, failure.details


def diagnostics(tmp_path: Path, text: str, flow: str = MINI) -> list[Diagnostic]:
    result = run(tmp_path, text, flow)
    assert not result.results
    return result.diagnostics


def expecting(expect: str, steps: str = "- dtmf: 1") -> str:
    """A scenario that presses ``steps`` and then checks ``expect`` (flow-style YAML)."""
    return f"""\
flow: mini
scenarios:
  - name: checked
    steps:
      {steps}
      - expect: {expect}
"""


# --- Passing, and failing when one value changes ----------------------------------------------


def test_a_matching_scenario_passes(tmp_path: Path) -> None:
    result = run(tmp_path, SALES)
    assert [r.passed for r in result.results] == [True]
    assert result.ok(100) is False  # support, the failures and the handlers are not covered
    assert result.ok()
    assert "1 scenario: 1 passed, 0 failed" in render(result)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("state: done", "state: xfer"),
        ("path: [welcome, menu, sales, xfer, done]", "path: [welcome, menu, support, xfer, done]"),
        ("team: sales}", "team: support}"),
        ("room: sales,", "room: support,"),
        ("sip:sales@", "sip:support@"),
        ("outcome: end", "outcome: hangup"),
        ("- dtmf: 1", "- dtmf: 2"),
        ("{play: {prompt: menu}}", "{play: {prompt: goodbye}}"),
    ],
)
def test_one_wrong_expected_value_fails_the_scenario(tmp_path: Path, old: str, new: str) -> None:
    assert old in SALES
    result = run(tmp_path, SALES.replace(old, new))
    assert len(result.failed) == 1
    assert not result.ok()
    assert "0 passed, 1 failed" in render(result)


# --- Each kind of expectation, when it does not hold -------------------------------------------


def test_state_mismatch_names_where_the_call_is(tmp_path: Path) -> None:
    message, line, _ = one_failure(run(tmp_path, expecting("{state: menu}")))
    assert message == "expected state 'menu', but the call is in 'done' (the call has ended: end)"
    assert line == 6


def test_path_mismatch_shows_both_paths(tmp_path: Path) -> None:
    message, _, details = one_failure(run(tmp_path, expecting("{path: [welcome, menu, sales]}")))
    assert message == "the path differs: the call went on to 'xfer'"
    assert details == (
        "expected: welcome -> menu -> sales",
        "actual:   welcome -> menu -> sales -> xfer -> done",
    )


def test_visited_mismatch_names_the_missing_state(tmp_path: Path) -> None:
    message, _, _ = one_failure(run(tmp_path, expecting("{visited: [sales, support]}")))
    assert message == "expected the call to enter 'support' after 'sales', but it did not"


def test_vars_mismatch_and_unset(tmp_path: Path) -> None:
    message, _, _ = one_failure(run(tmp_path, expecting("{vars: {team: support}}")))
    assert message == "expected vars.team = 'support', but it is 'sales'"


def test_commands_mismatch_names_the_differing_field(tmp_path: Path) -> None:
    text = expecting("{commands: [{sip_call_transfer: {room: support}}]}")
    message, _, details = one_failure(run(tmp_path, text))
    assert message == (
        "expected command 1: sip_call_transfer {room: 'support'}; "
        "the sip_call_transfer sent has room='sales'"
    )
    assert details[0] == "sent since the previous expect:"
    assert any(d.strip().startswith("sip_call_transfer ") for d in details)


def test_commands_that_were_not_sent(tmp_path: Path) -> None:
    message, _, _ = one_failure(run(tmp_path, expecting("{commands: [{sip_refer: {}}]}")))
    assert message == "expected command 1: sip_refer; no sip_refer was sent"


def test_commands_in_the_wrong_order(tmp_path: Path) -> None:
    text = expecting("{commands: [{sip_call_transfer: {}}, {answer: {}}]}", steps="- wait: 0s")
    text = text.replace("- wait: 0s", "- dtmf: 1")
    message, _, _ = one_failure(run(tmp_path, text))
    assert message == (
        "expected command 2: answer; it was sent, but before the command listed ahead of it"
    )


def test_commands_count_from_the_previous_expect(tmp_path: Path) -> None:
    text = """\
    flow: mini
    scenarios:
      - name: counted
        steps:
          - expect: {state: menu}
          - dtmf: 1
          - expect: {commands: [{answer: {}}]}
    """
    message, _, _ = one_failure(run(tmp_path, text))
    assert message == "expected command 1: answer; no answer was sent"


def test_no_commands_both_ways(tmp_path: Path) -> None:
    message, _, details = one_failure(run(tmp_path, expecting("{no_commands: true}")))
    assert message == "expected no commands, but 3 were sent"
    assert len(details) == 4
    text = expecting("{no_commands: false}", steps="- wait: 1s")
    text = text.replace(
        "- expect:", "- expect: {state: menu}\n      - wait: 1s\n      - expect:", 1
    )
    message, _, _ = one_failure(run(tmp_path, text))
    assert message == "expected commands, but nothing was sent"


def test_ended_and_outcome(tmp_path: Path) -> None:
    text = expecting("{ended: true, outcome: end}", steps="- wait: 1s")
    result = run(tmp_path, text)
    messages = [f.message for f in result.failed[0].failures]
    assert messages == [
        "expected the call to have ended, but it is in 'menu'",
        "expected the call to end with 'end', but it is still in 'menu'",
    ]


def test_flow_mismatch(tmp_path: Path) -> None:
    message, _, _ = one_failure(run(tmp_path, expecting("{flow: mini, state: sales}")))
    assert message.startswith("expected state 'sales'")


def test_end_is_checked_after_the_steps(tmp_path: Path) -> None:
    text = SALES.replace("end: {ended: true, outcome: end}", "end: {state: bye}")
    message, line, _ = one_failure(run(tmp_path, text))
    assert message.startswith("expected state 'bye'")
    assert line == 13


def test_the_first_failing_expect_stops_the_scenario(tmp_path: Path) -> None:
    text = expecting("{state: sales}", steps="- dtmf: 1").replace(
        "- expect: {state: sales}", "- expect: {state: sales}\n      - expect: {state: nowhere}"
    )
    result = run(tmp_path, text.replace("nowhere", "menu"))
    assert len(result.failed[0].failures) == 1


def test_failure_report_has_the_trace_state_by_state(tmp_path: Path) -> None:
    text = render(run(tmp_path, expecting("{state: menu}")))
    assert "FAIL checked (flows/tests/mini.test.yaml:3)" in text or "FAIL checked (" in text
    assert "mini.test.yaml:6:" in text
    assert "> dtmf 1 (line 5)" in text
    assert "dtmf 1                     menu --option 1--> sales --done--> xfer" in text
    assert "sip_call_transfer leg='caller' room='sales'" in text
    assert "calltransfer.answered (" in text
    assert "xfer --answered--> done" in text


# --- The fake Daily, HTTP stubs, limits and faults ---------------------------------------------

BUSY = """\
name: ring
start: dial
on: {error: oops, limit: late}
states:
  dial:
    dial_out: {to: "+14155550123", leg: agent, timeout: 10s}
    max_visits: 3
    on: {answered: done, no_answer: pause, busy: pause, max_visits: oops}
  pause:
    wait: {for: 5s}
    on: {done: dial}
  late:
    hangup: {reason: late}
  oops:
    hangup: {reason: oops}
  done:
    end: {}
"""


def test_daily_lists_answer_requests_in_turn(tmp_path: Path) -> None:
    text = """\
    flow: ring
    scenarios:
      - name: busy, then no answer, then answered
        daily: {dial_out: {agent: [busy, no_answer, answered]}}
        steps:
          - wait: 5s
          - expect: {state: dial, path: [dial, pause, dial]}
          - wait: 10s
          - wait: 5s
        end:
          path: [dial, pause, dial, pause, dial, done]
          commands:
            - stop_dial_out: {sessionId: dialout-2}
            - start_dial_out: {leg: agent, phoneNumber: "+14155550123"}
    """
    result = run_paths([scenario_file(tmp_path, text, BUSY, "ring")])
    assert [r.passed for r in result.results] == [True], render(result)


def test_pending_leaves_the_events_to_the_scenario(tmp_path: Path) -> None:
    text = """\
    flow: ring
    scenarios:
      - name: answered by hand
        daily: {dial_out: pending}
        steps:
          - expect: {state: dial}
          - event: dialout.answered
            leg: agent
        end: {state: done}
      - name: limit while ringing
        daily: {dial_out: silent}
        limits: {max_duration: 5s}
        steps:
          - wait: 5s
        end: {state: late, outcome: hangup}
      - name: fault
        daily: {dial_out: pending}
        steps:
          - fault: something broke
        end: {path: [dial, oops]}
    """
    result = run_paths([scenario_file(tmp_path, text, BUSY, "ring")])
    assert [r.passed for r in result.results] == [True, True, True], render(result)
    (coverage,) = result.coverage
    assert {str(e) for e in coverage.covered} >= {
        "dial --answered--> done",
        "* --limit--> late",
        "* --error--> oops",
    }


def test_scenario_telephony_configures_and_refuses() -> None:
    fake = ScenarioTelephony({"transfer": ["failed", "answered"], "dial_out": {"a": "busy"}})
    assert fake.answers[("transfer", None)] == ("failed", "answered")
    with pytest.raises(ValueError, match="daily transfer is one of"):
        fake.configure("transfer", "maybe")
    with pytest.raises(ValueError, match="unknown daily key"):
        fake.configure("fax", "ok")
    key = dict(key="k", call_id="c")
    assert fake.answer_for(SipCallTransfer(**key, leg="caller")) == "failed"
    assert fake.answer_for(SipCallTransfer(**key, leg="caller")) == "answered"
    assert fake.answer_for(SipCallTransfer(**key, leg="caller")) == "answered"
    assert fake.answer_for(StartDialOut(**key, leg="a", settings={})) == "busy"
    assert fake.answer_for(StartDialOut(**key, leg="b", settings={})) is None


def test_prompts_take_time_and_events_arrive_during_them(tmp_path: Path) -> None:
    text = """\
    flow: mini
    scenarios:
      - name: keys during the menu prompt
        daily: {prompts: 3s}
        steps:
          - expect: {state: menu, commands: [{play: {prompt: menu}}]}
          - wait: 1s
          - dtmf: 2
        end: {state: done, vars: {team: support}}
    """
    result = run(tmp_path, text)
    assert result.results[0].passed, render(result)
    assert any(c.kind == "stop_play" for e in result.results[0].trace for c in e.commands)


HTTP = """\
name: fetch
start: ask
allowed_hosts: [crm.example.com]
vars: {name: ""}
states:
  ask:
    http:
      url: https://crm.example.com/who
      timeout: 1s
      retries: 1
      backoff: 1s
      save: {name: "{{ response.json.name }}"}
    on: {ok: done, error: failed, timeout: failed}
  failed:
    hangup: {}
  done:
    end: {}
"""


def test_http_stubs_in_order_and_unused_or_missing_ones(tmp_path: Path) -> None:
    text = """\
    flow: fetch
    defaults:
      http:
        - match: "GET https://crm.example.com/who"
          json: {name: Ada}
          repeat: true
    scenarios:
      - name: the first attempt times out
        http:
          - match: "GET https://crm.example.com/*"
            timeout: true
        steps:
          - wait: 1s
        end: {state: done, vars: {name: Ada}}
      - name: a stub for another system never answers
        http:
          - match: "POST https://crm.example.com/who"
            status: 500
        steps: []
        end: {state: done}
    """
    result = run_paths([scenario_file(tmp_path, text, HTTP, "fetch")])
    assert [r.passed for r in result.results] == [True, True]
    (unused,) = result.diagnostics
    assert unused.code == "unused-stub"
    assert unused.location.line == 17
    assert unused.hint == "Requests made: GET https://crm.example.com/who."
    assert not result.ok()


def test_a_request_no_stub_answers_fails_the_scenario(tmp_path: Path) -> None:
    text = """\
    flow: fetch
    scenarios:
      - name: nothing stubbed
        steps:
          - wait: 1s
        end: {state: failed}
    """
    result = run_paths([scenario_file(tmp_path, text, HTTP, "fetch")])
    (failed,) = result.failed
    assert [f.message for f in failed.failures] == [
        "no stub answers GET https://crm.example.com/who",
        "no stub answers GET https://crm.example.com/who",
    ]


def test_defaults_merge_under_each_scenario(tmp_path: Path) -> None:
    text = """\
    flow: mini
    defaults:
      call: {from: "+14155550111", to: "+14155550100"}
      vars: {team: nobody}
    scenarios:
      - name: merged
        call: {locale: es-US}
        steps:
          - expect: {vars: {team: nobody}, commands: [{play: {locale: es-US}}]}
    """
    result = run(tmp_path, text)
    assert result.results[0].passed, render(result)
    info = result.results[0].scenario.call
    assert info == {"from": "+14155550111", "to": "+14155550100", "locale": "es-US"}


# --- Bad scenario files: diagnostics with positions, never a traceback --------------------------


@pytest.mark.parametrize(
    ("text", "code", "where", "message"),
    [
        (
            expecting("{state: menu}").replace("- dtmf: 1", "- press: 1"),
            "unknown-step",
            (5, 9),
            "unknown step 'press' in scenario 'checked', step 1",
        ),
        (
            expecting("{state: menu}").replace("- dtmf: 1", "- hangp"),
            "unknown-step",
            (5, 9),
            "unknown step 'hangp' in scenario 'checked', step 1",
        ),
        (
            expecting("{stat: menu}"),
            "unknown-expectation",
            (6, 18),
            "unknown expectation key 'stat' in scenario 'checked', step 2: expect",
        ),
        (
            expecting("{state: menu}").replace("flow: mini", "flow: maxi"),
            "unknown-flow",
            (1, 7),
            "no flow named 'maxi' in ",
        ),
        (
            expecting("{state: menu}").replace("- name: checked", "- name: checked\n    at: soon"),
            "bad-time",
            (4, 9),
            "'soon' is not a date and time",
        ),
        (
            expecting("{state: menu}").replace(
                "- name: checked", "- name: checked\n    at: '2026-11-23T10:00:00'"
            ),
            "bad-time",
            (4, 9),
            "'2026-11-23T10:00:00' has no UTC offset, so the call's local time is unknown",
        ),
        (
            expecting("{state: mneu}"),
            "unknown-state",
            (6, 25),
            "no state 'mneu' in mini",
        ),
        (
            expecting("{vars: {tema: x}}"),
            "unknown-variable",
            (6, 25),
            "no flow of this call has a variable 'tema'",
        ),
        (
            expecting("{commands: [{transfer: {}}]}"),
            "unknown-command",
            (6, 30),
            "unknown command 'transfer' in scenario 'checked', step 2: expect.commands.0",
        ),
        (
            expecting("{state: menu}").replace("- dtmf: 1", "- {dtmf: 1, wait: 1s}"),
            "invalid-step",
            (5, 19),
            "a step does one thing, but this one has dtmf and wait",
        ),
        (
            expecting("{state: menu}").replace("- dtmf: 1", "- {dtmf: 1, leg: agent}"),
            "invalid-step",
            (5, 19),
            "'leg' belongs to an event step",
        ),
        (
            expecting("{state: menu}").replace("- dtmf: 1", "- wait: 5"),
            "wrong-type",
            (5, 15),
            "scenario 'checked', step 1: wait must be a duration, not a whole number",
        ),
        (
            expecting("{state: menu}").replace("- dtmf: 1", "- event: dialout.answerd"),
            "unknown-event",
            (5, 16),
            "unknown event 'dialout.answerd'",
        ),
        (
            expecting("{outcome: done}"),
            "invalid-value",
            (6, 27),
            "'done' in scenario 'checked', step 2: expect.outcome is not one of the allowed values",
        ),
        (
            expecting("{state: menu}") + "  - name: checked\n    steps: []\n",
            "duplicate-scenario",
            (7, 11),
            "two scenarios are named 'checked' (the first at line 3)",
        ),
        (
            "flow: mini\nscenarios:\n  - name: x\n    steps: [dtmf: 1\n",
            "yaml-syntax",
            (5, 1),
            None,
        ),
        (
            "flow: mini\nscenarios: []\n",
            "invalid-value",
            (2, 12),
            "'scenarios' is empty",
        ),
        (
            expecting("{state: menu}").replace(
                "scenarios:",
                "unreachable:\n  - {edge: 'menu --option 3--> sales', reason: x}\nscenarios:",
            ),
            "unknown-edge",
            (3, 12),
            "the flow 'mini' has no edge 'menu --option 3--> sales'",
        ),
    ],
)
def test_bad_scenario_files_are_diagnostics_with_positions(
    tmp_path: Path, text: str, code: str, where: tuple[int, int], message: str | None
) -> None:
    found = diagnostics(tmp_path, text)
    assert [d.code for d in found][:1] == [code], [d.render() for d in found]
    first = found[0]
    assert (first.location.line, first.location.column) == where
    assert first.location.file.endswith("mini.test.yaml")
    if message is not None:
        assert first.message.startswith(message)


def test_a_flow_with_errors_fails_its_scenario_file_with_the_flows_diagnostics(
    tmp_path: Path,
) -> None:
    broken = MINI.replace("on: {done: xfer}", "on: {done: xfr}", 1)
    found = diagnostics(tmp_path, SALES, broken)
    by_code = {d.code: d for d in found}
    assert sorted(by_code) == ["flow-has-errors", "unknown-target"]
    assert by_code["flow-has-errors"].location.file.endswith("mini.test.yaml")
    assert by_code["unknown-target"].location.file.endswith("flows/mini.yaml")
    assert by_code["unknown-target"].location.line == 15


def test_a_missing_flows_folder_is_reported_at_flows(tmp_path: Path) -> None:
    found = diagnostics(tmp_path, "flows: nowhere\n" + SALES)
    assert [(d.code, d.location.line) for d in found] == [("unknown-folder", 1)]


def test_a_flow_named_by_path(tmp_path: Path) -> None:
    result = run(tmp_path, SALES.replace("flow: mini", "flow: ../mini.yaml"))
    assert [r.passed for r in result.results] == [True]


def test_missing_paths_and_folders_without_scenarios_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        run_paths([tmp_path / "missing"])
    with pytest.raises(UsageError, match="no scenario files"):
        run_paths([tmp_path])


# --- Coverage ------------------------------------------------------------------------------------


def test_edges_of_a_flow() -> None:
    flows = load_flows([ROOT / "flows"])
    edges = [str(e) for e in flow_edges(flows["verify-pin"])]
    assert edges[:2] == ["ask_pin --ok--> check_pin", "ask_pin --max_attempts--> not_verified"]
    assert "judge --when vars.result == 'locked'--> locked" in edges
    assert "more_tries --otherwise--> not_verified" in edges
    assert edges[-1] == "* --error--> unavailable"
    assert len(edges) == 13


def test_coverage_numbers_are_exact(tmp_path: Path) -> None:
    result = run(tmp_path, SALES)
    (coverage,) = result.coverage
    assert coverage.flow == "mini"
    assert len(coverage.edges) == 13
    assert [str(e) for e in coverage.covered] == [
        "welcome --answered--> menu",
        "menu --option 1--> sales",
        "sales --done--> xfer",
        "xfer --answered--> done",
    ]
    assert coverage.percent == pytest.approx(100 * 4 / 13)
    assert "* --hangup--> bye" in [str(e) for e in coverage.uncovered]
    text = render(result, minimum=50)
    assert "  mini   30.8%  4/13 edges" in text
    assert "    not taken: menu --option 2--> support" in text
    assert "coverage below 50%: mini (30.8%)" in text
    assert not result.ok(50)
    assert result.ok(30)


def test_unreachable_edges_are_left_out_and_checked(tmp_path: Path) -> None:
    excluded = SALES.replace(
        "scenarios:",
        "unreachable:\n  - edge: '* --error--> sorry'\n    reason: nothing can fail\nscenarios:",
    )
    (coverage,) = run(tmp_path, excluded).coverage
    assert len(coverage.edges) == 12
    assert coverage.percent == pytest.approx(100 * 4 / 12)
    taken = excluded.replace("'* --error--> sorry'", "'menu --option 1--> sales'")
    result = run(tmp_path, taken)
    assert [str(e) for e in result.coverage[0].contradicted] == ["menu --option 1--> sales"]
    assert not result.ok()
    assert "taken although marked unreachable: menu --option 1--> sales" in render(result)


def test_json_report(tmp_path: Path) -> None:
    data: dict[str, Any] = json.loads(render(run(tmp_path, SALES), "json", minimum=100))
    assert data["ok"] is False
    assert data["summary"] == {
        "scenarios": 1,
        "passed": 1,
        "failed": 0,
        "files_with_errors": 0,
        "min_coverage": 100,
    }
    assert data["scenarios"][0]["name"] == "sales"
    assert data["coverage"][0]["covered"] == 4


# --- The example flows, and the schema ---------------------------------------------------


def test_the_example_flows_are_covered_completely(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = run_paths(["flows"])
    assert result.ok(100), render(result)
    names = {c.flow for c in result.coverage}
    assert names == {
        "support-line",
        "outbound-ivr",
        "warm-transfer",
        "account-lookup",
        "verify-pin",
    }


def test_every_example_flow_has_a_scenario_file() -> None:
    flows = load_flows([ROOT / "flows"])
    for name in flows:
        assert (ROOT / "flows" / "tests" / f"{name}.test.yaml").is_file(), name


def test_the_schema_copies_are_identical() -> None:
    published = ROOT / "schemas" / "scenario.schema.json"
    packaged = ROOT / "flowengine" / "schemas" / "scenario.schema.json"
    assert published.read_bytes() == packaged.read_bytes(), (
        "copy schemas/scenario.schema.json to flowengine/schemas/scenario.schema.json"
    )
    assert json.loads(published.read_text(encoding="utf-8")) == scenario_schema()


def test_every_key_of_the_schema_is_described() -> None:
    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for name, sub in (node.get("properties") or {}).items():
                assert "description" in sub, f"{path}.{name}"
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(scenario_schema(), "")


def test_the_example_scenario_files_start_with_the_schema_modeline() -> None:
    for path in sorted((ROOT / "flows" / "tests").glob("*.test.yaml")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../../schemas/scenario.schema.json"


def test_simulator_traces_name_the_edge_taken() -> None:
    flows = load_flows([ROOT / "flows"])
    with Simulator(flows.values(), "warm-transfer", call_id="c") as sim:
        pass
    assert [m[2] for e in sim.trace for m in e.moves] == [
        "start",
        "answered",
        "done",
        "answered",
        "done",
    ]


def test_moves_survive_the_session_json() -> None:
    flows = load_flows([ROOT / "flows"])
    with Simulator(flows.values(), "support-line", call_id="c") as sim:
        sim.dtmf("2")
        record = sim.snapshot()
    restored = Session.from_json(record, FlowSet(flows.values()))
    assert [e.moves for e in restored.trace] == [e.moves for e in sim.trace]
    moves = [m for e in sim.trace for m in e.moves]
    assert ("support-line", "main_menu", "option 2", "billing_account") in moves


def test_a_fault_after_the_call_ended_is_ignored(tmp_path: Path) -> None:
    text = SALES.replace(
        "    end: {ended: true, outcome: end}", "      - fault: too late\n    end: {outcome: end}"
    )
    result = run(tmp_path, text)
    assert result.results[0].passed, render(result)
    assert result.results[0].trace[-1].note == "the call has ended"
