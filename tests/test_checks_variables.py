"""Variable checks: template-syntax, unsafe-template, undefined-variable and
maybe-undefined-variable, each with the flows that must not be reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flowengine.errors import Diagnostic
from flowengine.project import validate_paths

WriteFlow = Callable[..., Path]
CODES = ("template-syntax", "unsafe-template", "undefined-variable", "maybe-undefined-variable")


def flow(states: str, head: str = "") -> str:
    """A flow: ``head`` lines at the top, ``states`` under ``states:`` (indented by 2)."""
    return (
        "name: t\n"
        'match: {dialin: ["+14155550100"]}\n'
        "allowed_hosts: [crm.example.com]\n"
        f"{head}\n"
        "start: s0\n"
        "on: {hangup: bye, error: bye}\n"
        "states:\n"
        f"{states}"
        "  bye:\n"
        "    hangup: {}\n"
    )


def found(write_flow: WriteFlow, text: str, *, everything: bool = False) -> list[Diagnostic]:
    report = validate_paths([write_flow(text)])
    if everything:
        return list(report.diagnostics)
    return [d for d in report.diagnostics if d.code in CODES]


def say(text: str, name: str = "s0", to: str = "bye") -> str:
    return f"  {name}:\n    say: {text!r}\n    on: {{done: {to}}}\n"


# --- template-syntax ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Hello {{ vars.name", "does not parse"),
        ("{{ vars.name | uper }}", "no filter named 'uper' (did you mean 'upper'?)"),
        ("{% if vars.name %}open", "does not parse"),
        ("{{ vars.name is frob }}", "no test named 'frob'"),
    ],
)
def test_a_template_that_does_not_parse(write_flow: WriteFlow, text: str, reason: str) -> None:
    (diag,) = found(write_flow, flow(say(text), "vars: {name: x}"))
    assert diag.code == "template-syntax"
    assert reason in diag.message
    assert diag.message.startswith("say.text of state 's0'")
    assert (diag.location.line, diag.location.column) == (9, 10)


def test_a_condition_in_braces_gets_a_hint(write_flow: WriteFlow) -> None:
    states = '  s0:\n    choose:\n      when:\n        - {if: "{{ vars.n > 1 }}", goto: bye}\n'
    states += "      otherwise: bye\n"
    (diag,) = found(write_flow, flow(states, "vars: {n: 0}"))
    assert diag.code == "template-syntax"
    assert "choose.when[0].if of state 's0'" in diag.message
    assert "without {{ }}" in (diag.hint or "")


def test_prompt_texts_are_parsed(write_flow: WriteFlow) -> None:
    head = 'prompts: {hi: {en-US: {text: "Hi {{ vars.name"}}}\nvars: {name: x}'
    (diag,) = found(write_flow, flow("  s0:\n    play: hi\n    on: {done: bye}\n", head))
    assert diag.code == "template-syntax"
    assert diag.message.startswith("prompt 'hi' (en-US) does not parse")


# --- unsafe-template ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{{ vars.name.__class__ }}", "the attribute '__class__'"),
        ("{% include 'x' %}", "{% include %}"),
        ("{{ lipsum() }}", "the name 'lipsum'"),
        ("{{ vars | attr('x') }}", "the filter 'attr'"),
        ("{{ 'x' * 10 ** 9 }}", "a constant too large"),
        ("{{ '{0}'.format(vars) }}", "the method 'format'"),
    ],
)
def test_a_refused_template(write_flow: WriteFlow, text: str, reason: str) -> None:
    (diag,) = found(write_flow, flow(say(text), "vars: {name: x}"))
    assert diag.code == "unsafe-template"
    assert reason in diag.message


def test_every_place_a_template_may_stand_is_checked(write_flow: WriteFlow) -> None:
    bad = "{{ x.__class__ }}"
    states = f"""\
  s0:
    send_dtmf: {{tones: "{bad}", leg: agent}}
    on: {{sent: s1}}
  s1:
    dial_out: {{to: "{bad}", display_name: "{bad}", leg: agent}}
    on: {{answered: s2}}
  s2:
    transfer: {{room: "{bad}"}}
    on: {{answered: s3}}
  s3:
    refer: {{to: "{bad}"}}
    on: {{accepted: s4}}
  s4:
    http:
      url: "https://crm.example.com/{bad}"
      headers: {{A: "{bad}"}}
      query: {{q: "{bad}"}}
      body: {{deep: [1, {{k: "{bad}"}}]}}
      save: {{v: "{bad}"}}
    on: {{ok: s5}}
  s5:
    schedule: {{timezone: UTC, hours: {{mon: "09:00-17:00"}}, override: "{bad}"}}
    on: {{open: s6, closed: s6}}
  s6:
    set: {{a: {{b: ["{bad}"]}}}}
    on: {{done: s7}}
  s7:
    choose: {{when: [{{if: "x.__class__", goto: s8}}], otherwise: s8}}
  s8:
    call: {{flow: t, inputs: {{i: "{bad}"}}}}
    on: {{done: bye}}
"""
    labels = {d.message.split(" is refused")[0] for d in found(write_flow, flow(states))}
    assert labels == {
        "send_dtmf.tones of state 's0'",
        "dial_out.to of state 's1'",
        "dial_out.display_name of state 's1'",
        "transfer.room of state 's2'",
        "refer.to of state 's3'",
        "http.url of state 's4'",
        "http.headers.A of state 's4'",
        "http.query.q of state 's4'",
        "http.body.deep[1].k of state 's4'",
        "http.save.v of state 's4'",
        "schedule.override of state 's5'",
        "set.a.b[0] of state 's6'",
        "choose.when[0].if of state 's7'",
        "call.inputs.i of state 's8'",
    }


# --- undefined-variable ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("{{ vars.acount }}", "reads vars.acount, but no variable", "Did you mean vars.account?"),
        ("{{ vars.zzz }}", "no variable 'zzz' is declared or assigned", "Declare it under vars:"),
        ("{{ account }}", "reads 'account', but templates have no such name", "vars.account?"),
        ("{{ var.account }}", "reads 'var'", "Did you mean vars?"),
        ("{{ from }}", "reads 'from'", "Did you mean call.from?"),
        ("{{ call.caller }}", "a call has no field 'caller'", "Call fields: id, from"),
        ("{{ call.form }}", "a call has no field 'form'", "Did you mean call.from?"),
        ("{{ flow.nmae }}", "a flow has no field 'nmae'", "Did you mean flow.name?"),
        ("{{ response.json.x }}", "only an http state's save can read", "Save what you need"),
    ],
)
def test_an_unknown_name(write_flow: WriteFlow, text: str, message: str, hint: str) -> None:
    (diag,) = found(write_flow, flow(say(text), "vars: {account: '1'}"))
    assert diag.code == "undefined-variable"
    assert message in diag.message
    assert hint in (diag.hint or "")


def test_response_fields_in_save(write_flow: WriteFlow) -> None:
    states = """\
  s0:
    http:
      url: https://crm.example.com/a
      save: {a: "{{ response.json.name }}", b: "{{ response.status }}", c: "{{ response.body }}"}
    on: {ok: bye}
"""
    (diag,) = found(write_flow, flow(states))
    assert diag.code == "undefined-variable"
    assert "http.save.c of state 's0' reads response.body" in diag.message


@pytest.mark.parametrize(
    "text",
    [
        "{{ vars.account }} {{ vars['account'] }}",
        "{{ call.from }} {{ call.id }} {{ call.sip_headers.get('X') }} {{ flow.name }}",
        "{% for c in vars.account %}{{ c }}{{ loop.index }}{% endfor %}",
        "{{ range(3) | join(',') }}",
        "no template at all",
    ],
)
def test_known_names_are_not_reported(write_flow: WriteFlow, text: str) -> None:
    assert found(write_flow, flow(say(text), "vars: {account: '1'}")) == []


def test_sub_flow_inputs_are_variables(write_flow: WriteFlow) -> None:
    text = (
        "name: sub\ninputs: {account: {type: string}}\nstart: s0\nstates:\n"
        '  s0:\n    say: "{{ vars.account }}"\n    on: {done: out}\n  out:\n    return: {}\n'
    )
    assert found(write_flow, text) == []


# --- maybe-undefined-variable ---------------------------------------------------------------

ASK = "  s0:\n    collect: {prompt: p, into: pin, max_digits: 4}\n    on: {ok: s1, no_input: s2}\n"
PROMPTS = 'prompts: {p: "Enter it."}'


def test_a_variable_set_on_one_route_only(write_flow: WriteFlow) -> None:
    states = ASK + say("{{ vars.pin }}", "s1", "s2") + say("You typed {{ vars.pin }}", "s2")
    (diag,) = found(write_flow, flow(states, PROMPTS))
    assert diag.code == "maybe-undefined-variable"
    assert diag.message == (
        "say.text of state 's2' reads vars.pin, which is not set on every path to 's2': "
        "s0 --no_input--> s2 does not set it"
    )


def test_a_variable_set_before_every_read_is_not_reported(write_flow: WriteFlow) -> None:
    states = ASK + say("{{ vars.pin }}", "s1") + say("Bye", "s2")
    assert found(write_flow, flow(states, PROMPTS)) == []


def test_a_default_under_vars_covers_every_path(write_flow: WriteFlow) -> None:
    states = ASK + say("{{ vars.pin }}", "s1", "s2") + say("You typed {{ vars.pin }}", "s2")
    assert found(write_flow, flow(states, PROMPTS + "\nvars: {pin: ''}")) == []


def test_a_guarded_read_is_not_reported(write_flow: WriteFlow) -> None:
    text = "{{ vars.pin | default('nothing') }}{% if vars.pin is defined %}!{% endif %}"
    states = ASK + say("{{ vars.pin }}", "s1", "s2") + say(text, "s2")
    assert found(write_flow, flow(states, PROMPTS)) == []


def test_both_branches_assign(write_flow: WriteFlow) -> None:
    states = """\
  s0:
    menu: {prompt: p, options: {"1": a, "2": b}}
    on: {max_attempts: bye}
  a:
    set: {who: sales}
    on: {done: join}
  b:
    set: {who: support}
    on: {done: join}
"""
    states += say("To {{ vars.who }}", "join")
    assert found(write_flow, flow(states, PROMPTS)) == []
    one_branch = states.replace("set: {who: support}", "set: {other: 1}")
    (diag,) = found(write_flow, flow(one_branch, PROMPTS))
    assert "s0 --option 2--> b --done--> join does not set it" in diag.message


def test_a_loop_keeps_what_was_set_before_it(write_flow: WriteFlow) -> None:
    states = """\
  s0:
    set: {n: 0}
    on: {done: loop}
  loop:
    set: {n: "{{ vars.n + 1 }}"}
    max_visits: 3
    on: {done: loop, max_visits: bye}
"""
    assert found(write_flow, flow(states)) == []


def test_set_values_see_earlier_keys_only(write_flow: WriteFlow) -> None:
    states = "  s0:\n    set: {a: 1, b: '{{ vars.a + 1 }}', c: '{{ vars.d }}', d: 2}\n"
    states += "    on: {done: bye}\n"
    (diag,) = found(write_flow, flow(states))
    assert diag.code == "maybe-undefined-variable"
    assert diag.message.startswith("set.c of state 's0' reads vars.d")


def test_http_save_holds_only_on_ok(write_flow: WriteFlow) -> None:
    states = """\
  s0:
    http:
      url: https://crm.example.com/a
      save: {name: "{{ response.json.name }}", hi: "Hi {{ vars.name }}"}
    on: {ok: s1, timeout: s1}
"""
    states += say("{{ vars.hi }}", "s1")
    (diag,) = found(write_flow, flow(states))
    assert "s0 --timeout--> s1 does not set it" in diag.message


def test_the_error_handler_is_a_path_too(write_flow: WriteFlow) -> None:
    states = ASK.replace("ok: s1, no_input: s2", "ok: s2") + say("{{ vars.pin }}", "s1")
    states += say("{{ vars.pin }}", "s2")
    text = flow(states, PROMPTS).replace("error: bye", "error: s1")
    (diag,) = found(write_flow, text)
    assert "s0 --error--> s1" in diag.message


def test_menu_into_and_call_outputs_assign(write_flow: WriteFlow) -> None:
    sub = "name: sub\noutputs: [r]\nvars: {r: 1}\nstart: s0\nstates:\n  s0:\n    return: {}\n"
    write_flow(sub, "sub.yaml")
    states = """\
  s0:
    menu: {prompt: p, options: {"1": s1}, into: key}
    on: {max_attempts: bye}
  s1:
    call: {flow: sub, outputs: {got: r}}
    on: {done: s2}
"""
    states += say("{{ vars.key }} {{ vars.got }}", "s2")
    assert found(write_flow, flow(states, PROMPTS)) == []


def test_a_prompt_is_checked_where_it_plays(write_flow: WriteFlow) -> None:
    head = 'prompts: {p: "Enter it.", bye: "Goodbye {{ vars.pin }}"}'
    states = ASK + "  s1:\n    play: bye\n    on: {done: bye}\n" + say("x", "s2", "s1")
    (diag,) = found(write_flow, flow(states, head))
    assert diag.message.startswith("prompt 'bye', played by state 's1', reads vars.pin")
    assert "s0 --no_input--> s2 --done--> s1" in diag.message


def test_unreachable_states_are_left_to_their_own_check(write_flow: WriteFlow) -> None:
    states = ASK + say("{{ vars.pin }}", "s1") + say("x", "s2") + say("{{ vars.pin }}", "lost")
    assert found(write_flow, flow(states, PROMPTS)) == []


def test_the_example_flows_are_clean() -> None:
    root = Path(__file__).resolve().parent.parent
    report = validate_paths([root / "flows"])
    assert [d for d in report.diagnostics if d.code in CODES] == []


def test_catalogue_prompts_are_checked_when_played(write_flow: WriteFlow) -> None:
    write_flow('hi: "Hi {{ vars.nme }}"\nother: "{{ vars.zzz.__class__ }}"\n', "c.prompts.yaml")
    head = "catalogue: c.prompts.yaml\nvars: {name: x}"
    (diag,) = found(write_flow, flow("  s0:\n    play: hi\n    on: {done: bye}\n", head))
    assert diag.code == "undefined-variable"
    assert diag.message.startswith("prompt 'hi' of the catalogue reads vars.nme")
    assert diag.hint == "Did you mean vars.name?"
    assert diag.location.line == 4  # the catalogue key of the flow
