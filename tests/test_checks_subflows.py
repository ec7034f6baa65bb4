"""Sub-flow checks: the called flow exists, no call cycles, inputs and outputs match."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flowengine.errors import Diagnostic, Severity
from flowengine.project import validate_paths

WriteFlow = Callable[..., Path]

SUB = """\
name: pin-check
inputs:
  account: {type: string}
  attempts: {type: integer, default: 3}
vars: {secret: "", verified: false}
outputs: [verified]
start: done
states:
  done:
    return: {}
"""


def caller(call: str, name: str = "main") -> str:
    return (
        f"name: {name}\n"
        "vars: {ok: false}\n"
        "start: s0\n"
        "on: {hangup: bye}\n"
        "states:\n"
        "  s0:\n"
        f"    call: {call}\n"
        "    on: {done: bye}\n"
        "  bye:\n"
        "    hangup: {}\n"
    )


def found(write_flow: WriteFlow, call: str, code: str, *, sub: str = SUB) -> list[Diagnostic]:
    write_flow(sub, "pin-check.yaml")
    report = validate_paths([write_flow(caller(call))])
    return [d for d in report.diagnostics if d.code == code]


# --- unknown-flow ---------------------------------------------------------------------------


def test_unknown_flow_with_a_misspelling(write_flow: WriteFlow) -> None:
    (diag,) = found(write_flow, "{flow: pin-chek}", "unknown-flow")
    assert diag.severity is Severity.ERROR
    assert diag.message == "state 's0' calls the flow 'pin-chek', but no flow has that name"
    assert (diag.location.line, diag.location.column) == (7, 18)
    assert diag.hint == "Did you mean 'pin-check'?"


def test_unknown_flow_without_a_close_match(write_flow: WriteFlow) -> None:
    (diag,) = found(write_flow, "{flow: billing}", "unknown-flow")
    assert "validated with this one" in (diag.hint or "")


def test_known_flow_passes(write_flow: WriteFlow) -> None:
    assert found(write_flow, "{flow: pin-check, inputs: {account: '1'}}", "unknown-flow") == []


def test_sub_flow_in_a_sub_folder_is_found(write_flow: WriteFlow, tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "pin.yaml").write_text(SUB, encoding="utf-8")
    report = validate_paths([write_flow(caller("{flow: pin-check, inputs: {account: '1'}}"))])
    assert [d.code for d in report.diagnostics if d.code.startswith("unknown-")] == []


# --- call-cycle -----------------------------------------------------------------------------

RETURNS = "start: s\nstates:\n  s:\n    call: {{flow: {callee}}}\n    on: {{done: r}}\n" + (
    "  r:\n    return: {{}}\n"
)


def test_a_flow_that_calls_itself(write_flow: WriteFlow) -> None:
    path = write_flow("name: loop\n" + RETURNS.format(callee="loop"))
    (diag,) = [d for d in validate_paths([path]).diagnostics if d.code == "call-cycle"]
    assert diag.message == "state 's' makes flow 'loop' call itself: loop -> loop"
    assert (diag.location.line, diag.location.column) == (5, 18)


def test_a_cycle_through_other_flows(write_flow: WriteFlow) -> None:
    write_flow("name: b\n" + RETURNS.format(callee="c"), "b.yaml")
    write_flow("name: c\n" + RETURNS.format(callee="a"), "c.yaml")
    path = write_flow("name: a\n" + RETURNS.format(callee="b"), "a.yaml")
    (diag,) = [d for d in validate_paths([path]).diagnostics if d.code == "call-cycle"]
    assert "itself through other flows: a -> b -> c -> a" in diag.message


def test_nested_calls_without_a_cycle_pass(write_flow: WriteFlow) -> None:
    write_flow("name: b\n" + RETURNS.format(callee="c"), "b.yaml")
    write_flow("name: d\n" + RETURNS.format(callee="c"), "d.yaml")
    write_flow("name: c\nstart: r\nstates:\n  r:\n    return: {}\n", "c.yaml")
    path = write_flow("name: a\n" + RETURNS.format(callee="b"), "a.yaml")
    report = validate_paths([path, path.parent / "d.yaml"])
    assert [d for d in report.diagnostics if d.code == "call-cycle"] == []


# --- missing-input, unknown-input -----------------------------------------------------------


def test_missing_input_without_default(write_flow: WriteFlow) -> None:
    (diag,) = found(write_flow, "{flow: pin-check, inputs: {attempts: 2}}", "missing-input")
    assert "without its input 'account'" in diag.message
    assert diag.location.line == 7  # at `inputs` inside the call mapping


def test_missing_input_when_no_inputs_are_passed(write_flow: WriteFlow) -> None:
    (diag,) = found(write_flow, "{flow: pin-check}", "missing-input")
    assert (diag.location.line, diag.location.column) == (7, 5)  # at the `call` key


@pytest.mark.parametrize(
    "call",
    [
        "{flow: pin-check, inputs: {account: '42'}}",
        "{flow: pin-check, inputs: {account: '{{ vars.ok }}', attempts: 1}}",
    ],
)
def test_inputs_given_or_defaulted_pass(write_flow: WriteFlow, call: str) -> None:
    assert found(write_flow, call, "missing-input") == []
    assert found(write_flow, call, "unknown-input") == []


def test_unknown_input_with_a_misspelling(write_flow: WriteFlow) -> None:
    call = "{flow: pin-check, inputs: {account: '1', attempt: 2}}"
    (diag,) = found(write_flow, call, "unknown-input")
    assert diag.message == "state 's0' passes 'attempt' to 'pin-check', which has no such input"
    assert diag.hint == "Did you mean 'attempts'?"
    assert diag.location.column == 52  # at the key


def test_unknown_input_that_is_a_variable_of_the_sub_flow(write_flow: WriteFlow) -> None:
    (diag,) = found(
        write_flow, "{flow: pin-check, inputs: {account: '1', secret: x}}", "unknown-input"
    )
    assert "'secret' is a variable of 'pin-check', not an input" in (diag.hint or "")


def test_sub_flow_without_inputs_says_so(write_flow: WriteFlow) -> None:
    sub = "name: pin-check\nstart: r\nstates:\n  r:\n    return: {}\n"
    (diag,) = found(write_flow, "{flow: pin-check, inputs: {zzz: 1}}", "unknown-input", sub=sub)
    assert diag.hint == "Inputs of 'pin-check': none."


# --- unknown-output -------------------------------------------------------------------------


def test_unknown_output_with_a_misspelling(write_flow: WriteFlow) -> None:
    call = "{flow: pin-check, inputs: {account: '1'}, outputs: {ok: verifed}}"
    (diag,) = found(write_flow, call, "unknown-output")
    assert "takes 'verifed' from 'pin-check' into 'ok'" in diag.message
    assert diag.hint == "Did you mean 'verified'?"
    assert diag.location.column == 67  # at the value


def test_output_of_a_sub_flow_without_outputs(write_flow: WriteFlow) -> None:
    call = "{flow: pin-check, inputs: {account: '1'}, outputs: {ok: secret}}"
    (diag,) = found(write_flow, call, "unknown-output")
    assert (diag.hint or "").startswith("Outputs of 'pin-check': verified.")


def test_declared_output_passes(write_flow: WriteFlow) -> None:
    call = "{flow: pin-check, inputs: {account: '1'}, outputs: {ok: verified}}"
    assert found(write_flow, call, "unknown-output") == []
