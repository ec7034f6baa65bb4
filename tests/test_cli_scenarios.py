"""``flowengine test`` and ``flowengine simulate``: exit codes, output, the interactive prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from flowengine.cli import cli

from .conftest import ROOT
from .test_scenarios import MINI, SALES, scenario_file


def invoke(*args: str, input: str | None = None) -> Result:
    result = CliRunner().invoke(cli, list(args), input=input)
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    return result


@pytest.fixture
def in_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


# --- flowengine test ---------------------------------------------------------------------------


def test_passing_scenarios_exit_0_with_a_summary_and_coverage(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, SALES)
    result = invoke("test", str(path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1] == "1 scenario: 1 passed, 0 failed"
    assert "edge coverage:" in lines
    assert "  mini   30.8%  4/13 edges" in lines


def test_a_failing_scenario_exits_1_and_shows_where_and_the_trace(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, SALES.replace("team: sales}", "team: support}"))
    result = invoke("test", str(tmp_path))
    assert result.exit_code == 1
    out = result.output
    assert f"FAIL sales ({path}:3)" in out
    assert f"{path}:10:11: expected vars.team = 'support', but it is 'sales'" in out
    assert "  trace:" in out
    assert "menu --option 1--> sales" in out
    assert out.splitlines()[-1] == "1 scenario: 0 passed, 1 failed"


def test_coverage_below_the_minimum_exits_1(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, SALES)
    result = invoke("test", "--min-coverage", "50", str(path))
    assert result.exit_code == 1
    assert "coverage below 50%: mini (30.8%)" in result.output
    assert invoke("test", "--min-coverage", "30", str(path)).exit_code == 0


def test_a_bad_scenario_file_exits_1_with_its_diagnostic(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, SALES.replace("- dtmf: 1", "- dtfm: 1"))
    result = invoke("test", str(path))
    assert result.exit_code == 1
    assert f"{path}:6:9: error[unknown-step] unknown step 'dtfm'" in result.output
    assert "hint: Did you mean 'dtmf'?" in result.output


def test_usage_problems_exit_2(tmp_path: Path) -> None:
    missing = invoke("test", str(tmp_path / "nowhere"))
    assert missing.exit_code == 2
    assert "no such file or directory" in missing.output
    empty = invoke("test", str(tmp_path))
    assert empty.exit_code == 2
    assert "no scenario files" in empty.output
    assert invoke("test").exit_code == 2
    assert invoke("test", "--min-coverage", "101", str(tmp_path)).exit_code == 2


def test_json_format(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, SALES)
    result = invoke("test", "--format", "json", "--min-coverage", "100", str(path))
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["ok"] is False
    assert data["summary"]["passed"] == 1
    assert data["coverage"][0]["uncovered"][0] == {
        "from": "welcome",
        "key": "failed",
        "to": "bye",
    }


def test_the_example_flows_pass_with_full_coverage(in_root: None) -> None:
    result = invoke("test", "--min-coverage", "100", "flows")
    assert result.exit_code == 0, result.output
    assert "100.0%" in result.output
    assert result.output.splitlines()[-1].endswith("passed, 0 failed")


# --- flowengine simulate --script ----------------------------------------------------------------


def test_simulate_a_script_prints_each_calls_trace(in_root: None) -> None:
    result = invoke(
        "simulate",
        "flows/support-line.yaml",
        "--script",
        "flows/tests/support-line.test.yaml",
        "--name",
        "a caller picks sales in opening hours",
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "ok   a caller picks sales in opening hours" in out
    assert "welcome --answered--> business_hours --open--> greeting" in out
    assert "> dtmf 1 (line" in out
    assert "toEndPoint='sip:acme-sales@example.sip.daily.co'" in out
    assert out.splitlines()[-1] == "1 scenario: 1 passed, 0 failed"


def test_simulate_runs_a_script_on_the_flow_given(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, SALES)
    draft = tmp_path / "drafts" / "mini.yaml"  # the same flow, transferring to a number
    draft.parent.mkdir()
    draft.write_text(MINI.replace('room: "{{ vars.team }}"', "phone: '+14155550199'"))
    assert (
        invoke("simulate", str(tmp_path / "flows" / "mini.yaml"), "--script", str(path)).exit_code
        == 0
    )
    result = invoke("simulate", str(draft), "--script", str(path))
    assert result.exit_code == 1
    assert "the sip_call_transfer sent has room=null" in result.output


def test_simulate_a_failing_script_exits_1(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, SALES.replace("outcome: end", "outcome: hangup"))
    result = invoke("simulate", "mini", "--flows", str(tmp_path / "flows"), "--script", str(path))
    assert result.exit_code == 1
    assert "FAIL sales" in result.output
    assert "expected the call to end with 'hangup', but it ended with 'end'" in result.output


def test_simulate_usage_problems(tmp_path: Path, in_root: None) -> None:
    unknown = invoke("simulate", "nosuch")
    assert unknown.exit_code == 2
    assert "no flow named 'nosuch' in flows" in unknown.output
    name = invoke(
        "simulate",
        "support-line",
        "--script",
        "flows/tests/support-line.test.yaml",
        "--name",
        "no such scenario",
    )
    assert name.exit_code == 2
    assert "no scenario named 'no such scenario'" in name.output
    assert invoke("simulate", "support-line", "--at", "tomorrow").exit_code == 2
    assert invoke("simulate", "support-line", "--var", "novalue").exit_code == 2


def test_simulate_a_flow_with_errors_exits_1(tmp_path: Path) -> None:
    flow = tmp_path / "broken.yaml"
    flow.write_text(MINI.replace("on: {done: xfer}", "on: {done: xfr}", 1))
    result = invoke("simulate", str(flow))
    assert result.exit_code == 1
    assert "unknown-target" in result.output


# --- flowengine simulate, interactive ------------------------------------------------------------


def test_an_interactive_call(in_root: None) -> None:
    lines = [
        "state",
        "answer",
        "dtmf 2",
        "dtmf 87654321",
        "dtmf 4321#",
        'http 200 {"result": "match", "first_name": "Dana"}',
        "vars",
        "answer",
    ]
    result = invoke(
        "simulate",
        "support-line",
        "--at",
        "2026-11-23T10:00:00-08:00",
        input="\n".join(lines) + "\n",
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Simulating support-line." in out
    assert "support-line:welcome> flow support-line, state welcome" in out
    assert "welcome --answered--> business_hours --open--> greeting" in out
    assert "=> verify-pin/ask_pin" in out
    assert "waiting for the answer to POST https://id.example.com/v1/pin-checks" in out
    assert "<= verify_caller --verified--> billing_welcome" in out
    assert '"customer_name": "Dana"' in out
    assert "billing_transfer --answered--> handed_off" in out
    assert "the call has ended: end" in out


def test_bad_lines_get_a_one_line_error_and_the_prompt_again(in_root: None) -> None:
    lines = [
        "frobnicate",
        "dtmf x",
        "wait soon",
        "http 200",
        "event",
        'event dialout.answered agent {"bad',
        "daily transfer maybe",
        "daily transfer failed",
        "answer",
        "hangup",
        "quit",
        "state",
    ]
    result = invoke("simulate", "warm-transfer", input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    errors = [line for line in result.output.splitlines() if "error: " in line]
    assert len(errors) == 7
    assert "error: unknown command 'frobnicate': type help" in result.output
    assert "error: no HTTP request is waiting for an answer" in result.output
    assert "Daily now answers transfer with failed" in result.output
    assert "welcome --answered--> hold" in result.output
    assert "the call has ended: caller_hangup" in result.output
    assert "flow warm-transfer, state" not in result.output  # after quit, nothing runs


def test_help_wait_events_and_end_of_input(in_root: None) -> None:
    lines = [
        "help",
        "answer",
        "wait 4s",
        "event dialout.answered pharmacy",
        "wait 4s",
        "trace",
    ]
    result = invoke(
        "simulate", "outbound-ivr", "--var", "rx_number=7654321", input="\n".join(lines)
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "dtmf KEYS" in out
    assert "error: nothing is waiting to be answered" not in out
    assert "dial_pharmacy --answered--> hear_greeting" in out
    assert "send_dtmf leg='pharmacy' sessionId='dialout-1' tones='2'" in out
    assert "timer ring 40s" in out  # the trace is verbose: timers too
