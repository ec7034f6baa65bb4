"""Templates: rendering, native types, readable failures, and every way out of the sandbox
refused twice (by ``inspect`` before a flow is accepted, and by ``render`` during a call)."""

from __future__ import annotations

import contextlib
import time
from types import MappingProxyType
from typing import Any

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowengine import sandbox
from flowengine.errors import TemplateError
from flowengine.templates import evaluate, inspect, is_template, render

CONTEXT: dict[str, Any] = {
    "vars": {"name": "Ann", "tries": 2, "pin": "1234", "codes": ["A", "B"], "items": [1, 2]},
    "call": {"from": "+441234567890", "id": "c-1", "sip_headers": {"X-Tier": "gold"}},
    "flow": {"name": "support", "version": "abc"},
}
BIG: dict[str, Any] = {
    **CONTEXT,
    "vars": {"big": "x" * 60_000, "lines": "x\n" * 30_000, "many": list(range(1000))},
}


def fails(source: str, context: dict[str, Any] = CONTEXT) -> str:
    with pytest.raises(TemplateError) as caught:
        render(source, context)
    return caught.value.reason


# --- rendering --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("plain text", "plain text"),
        ("Hello {{ vars.name }}!", "Hello Ann!"),
        ("{{ vars.tries + 1 }}", 3),
        ("  {{ vars.tries * 2 }} ", 4),
        ("{{- vars.tries -}}", 2),
        ("{{ -1 }}", -1),
        ("{{ vars.codes }}", ["A", "B"]),
        ("{{ vars.codes + ['C'] }}", ["A", "B", "C"]),
        ("{{ vars.tries > 1 }}", True),
        ("{{ none }}", None),
        ("{{ {'a': vars.tries} }}", {"a": 2}),
        ("{{ range(3) }}", [0, 1, 2]),
        ("{{ vars.codes | map('lower') }}", ["a", "b"]),
        ("{{ vars.name | e }}", "Ann"),
        ("try {{ vars.tries }}", "try 2"),
        ("{{ vars.tries }} and {{ vars.tries }}", "2 and 2"),
        ("{{ '}}' }}", "}}"),
        ("{{ call['from'][:3] }}", "+44"),
        ("{{ call.sip_headers.get('X-Tier') }}", "gold"),
        ("{{ vars.items | length }}", 2),  # a variable named like a dict method wins
        ("{{ '%05.1f' % 3.14159 }}", "003.1"),
        ("{{ vars.pin.zfill(6) }}", "001234"),
        ("{% for c in vars.codes %}{{ loop.index }}{{ c }}{% endfor %}", "1A2B"),
        ("{% if vars.tries is even %}even{% else %}odd{% endif %}", "even"),
        ("{{ vars.missing | default('none') }}", "none"),
    ],
)
def test_render(source: str, expected: Any) -> None:
    assert render(source, CONTEXT) == expected


def test_a_lone_expression_keeps_its_type() -> None:
    assert type(render("{{ vars.tries }}", CONTEXT)) is int
    assert type(render("{{ vars.tries / 4 }}", CONTEXT)) is float
    assert type(render("{{ vars.name | e }}", CONTEXT)) is str  # not Markup


def test_render_walks_lists_and_mappings() -> None:
    body = MappingProxyType({"who": "{{ vars.name }}", "n": ["{{ vars.tries }}", 7], "k": True})
    assert render(body, CONTEXT) == {"who": "Ann", "n": [2, 7], "k": True}


@pytest.mark.parametrize("value", [None, 3, 2.5, True, "no braces", "{# a comment #}"])
def test_non_templates_pass_through(value: Any) -> None:
    assert render(value, CONTEXT) == value


def test_is_template() -> None:
    assert is_template("{{ x }}")
    assert is_template("{% if x %}{% endif %}")
    assert not is_template("{ x }")
    assert not is_template(42)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("vars.tries > 1", True),
        ("vars.tries > 5", False),
        ("call.from.startswith('+44')", True),
        ("vars.pin == '1234' and vars.tries < 3", True),
        ("vars.missing is defined", False),
        ("'B' in vars.codes", True),
    ],
)
def test_evaluate(condition: str, expected: bool) -> None:
    assert evaluate(condition, CONTEXT) is expected


# --- readable failures ------------------------------------------------------------------------


def test_an_unset_variable_names_itself() -> None:
    assert fails("{{ vars.nope }}") == "'nope' is not set"
    with pytest.raises(TemplateError, match="'nope' is not set"):
        evaluate("vars.nope > 1", CONTEXT)


def test_a_bare_name_points_at_vars() -> None:
    assert fails("Hi {{ pin }}") == "'pin' is undefined (variables are read as vars.pin)"


def test_the_error_message_quotes_the_template() -> None:
    with pytest.raises(TemplateError) as caught:
        render("{{ vars.nope }}", CONTEXT)
    assert str(caught.value) == "template '{{ vars.nope }}' failed: 'nope' is not set"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ vars.name ", "it does not parse"),
        ("{{ vars.name | uper }}", "no filter named 'uper' (did you mean 'upper'?)"),
        ("{{ 1 / 0 }}", "division by zero"),
        ("{{ '%(a)s' % vars }}", "there is no key 'a'"),
        ("{{ vars.name.upper }}", "the value is a function"),
        ("{{ vars.name + 1 }}", "can only concatenate"),
    ],
)
def test_failures_have_a_reason(source: str, reason: str) -> None:
    assert reason in fails(source)


def test_a_condition_in_braces_does_not_parse() -> None:
    assert inspect("{{ vars.x }}", expression=True).syntax_error is not None
    with pytest.raises(TemplateError, match="does not parse"):
        evaluate("{{ vars.x }}", CONTEXT)


def test_an_expression_is_one_expression() -> None:
    found = inspect("1) }}{% include 'x' %}{{ (1", expression=True)
    assert found.syntax_error is not None


# --- what inspect finds -----------------------------------------------------------------------


def test_inspect_lists_references() -> None:
    found = inspect(
        "{{ vars.a }}{{ vars['b'] }}{{ call.from }}{{ flow.name }}{{ response.json.x }}{{ bare }}"
        "{% for item in vars.c %}{{ item.d }}{{ loop.index }}{% endfor %}{{ range(2) }}"
    )
    assert found.ok
    assert found.refs == {
        ("vars", "a"),
        ("vars", "b"),
        ("vars", "c"),
        ("call", "from"),
        ("flow", "name"),
        ("response", "json"),
        ("response", None),
        ("bare", None),
    }


def test_inspect_marks_guarded_references() -> None:
    found = inspect("vars.a is defined and vars.b | default(1) > vars.c", expression=True)
    assert found.guarded == {("vars", "a"), ("vars", "b")}


def test_a_loop_variable_outside_its_loop_is_free() -> None:
    assert ("x", None) in inspect("{% for x in vars.c %}{% endfor %}{{ x }}").refs


# --- ways out of the sandbox ------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{{ self._TemplateReference__context }}",
    "{{ self }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ joiner() }}",
    "{{ namespace(a=1) }}",
    "{{ dict(a=1) }}",
    "{{ vars['__class__'] }}",
    "{{ vars|attr('__class__') }}",
    "{{ vars|map(attribute='__class__')|list }}",
    "{{ [vars]|selectattr('__class__')|list }}",
    "{{ [1]|map('attr', '__class__')|list }}",
    "{{ vars._private }}",
    "{{ _x }}",
    "{% import 'x' as y %}",
    "{% from 'x' import y %}",
    "{% include 'x' %}",
    "{% extends 'x' %}",
    "{% macro m() %}{% endmacro %}",
    "{% call caller() %}{% endcall %}",
    "{% block b %}{% endblock %}",
    "{% set x = 1 %}",
    "{% with x = 1 %}{% endwith %}",
    "{% filter upper %}x{% endfilter %}",
    "{% autoescape false %}x{% endautoescape %}",
    "{{ config }}",
    "{{ request }}",
    "{{ session }}",
    "{{ '{0.__class__}'.format(vars) }}",
    "{{ '{0}'.format_map(vars) }}",
    "{{ '%s' % vars.__class__ }}",
    "{{ vars.name.encode() }}",
    "{{ (1).to_bytes(8, 'big') }}",
    "{{ vars.items.__len__() }}",
    "{{ loop() }}",
    "{% for x in vars.codes recursive %}{{ loop(x) }}{% endfor %}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_escapes_are_refused_before_a_call(source: str) -> None:
    assert inspect(source).unsafe


@pytest.mark.parametrize("source", ESCAPES)
def test_escapes_are_refused_during_a_call(source: str) -> None:
    assert "refused" in fails(source)


@pytest.mark.parametrize(
    "condition", ["''.__class__", "vars|attr('x')", "lipsum", "'{0.x}'.format(vars)"]
)
def test_conditions_are_refused_too(condition: str) -> None:
    assert inspect(condition, expression=True).unsafe
    with pytest.raises(TemplateError, match="refused"):
        evaluate(condition, CONTEXT)


@pytest.mark.parametrize(
    "source",
    [
        "{{ vars['__cla' ~ 'ss__'] }}",  # a computed name: only the run time can see it
        "{{ vars.name['_' * 2 ~ 'class__'] }}",
        "{{ vars | dictsort | map(attribute='_' ~ '_class__') | list }}",
    ],
)
def test_computed_private_names_are_refused_by_the_sandbox(source: str) -> None:
    assert inspect(source).ok
    assert "refused" in fails(source)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ '{0.__class__}'.format(vars) }}",
        "{{ vars.name.encode() }}",
        "{{ lipsum }}",
        "{{ cycler }}",
        "{{ 'a' * 10 ** 9 }}",
        "{{ range(10 ** 9) | list }}",
        "{{ 2 ** 100000 }}",
        "{{ '%0999999999d' % 1 }}",
        "{{ 'a' | center(10 ** 9) }}",
    ],
)
def test_the_sandbox_alone_refuses_what_inspect_would(source: str) -> None:
    env = sandbox.Sandbox()  # without the static layer
    refused = (jinja2.exceptions.SecurityError, jinja2.exceptions.UndefinedError)
    with sandbox.budget(), pytest.raises(refused):
        env.from_string(source).render(vars={"name": "x"})


# --- resource bombs ---------------------------------------------------------------------------

STATIC_BOMBS = [
    "{{ 'a' * 10 ** 9 }}",
    "{{ [0] * 10 ** 9 }}",
    "{{ 10 ** (10 ** 6) }}",
    "{{ 2 ** 100000 }}",
    "{{ range(10 ** 9) }}",
    "{{ range(1000000) | list }}",
    "{{ 'a'.ljust(10 ** 9) }}",
    "{% for a in range(999) %}{% for b in range(999) %}x{% endfor %}{% endfor %}",
]
RUNTIME_BOMBS = [
    "{{ vars.big * 3 }}",
    "{{ vars.big ~ vars.big ~ vars.big }}",
    "{{ vars.big + vars.big }}",
    "{{ vars.big.replace('x', 'xxxx') }}",
    "{{ vars.big | replace('x', 'xxxx') }}",
    "{{ vars.big | join('yy') }}",
    "{{ 'yy'.join(vars.big) }}",
    "{{ vars.big | center(200000) }}",
    "{{ vars.lines | indent(100) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '%*d' % (999999999, 1) }}",
    "{{ '%999999999s' | format(1) }}",
    "{{ 'a' | center(999999999) }}",
    "{{ vars.many | batch(999999999, 'x') | list }}",
    "{{ vars.many | slice(999999999) | list }}",
    "{{ vars.many | batch(linecount=999999999, fill_with='x') | list }}",
    "{{ vars.many | map('string') | sum(start='') }}",
    "{{ vars | tojson(indent=999999999) }}",
    "{% for i in vars.many %}{{ vars.big }}{% endfor %}",
    "{% for i in vars.many %}{{ vars.many | sort | sum }}{% endfor %}",
    "{% for i in vars.many %}{{ vars.many | map('center', 9999) | list | length }}{% endfor %}",
    "{{ range(vars.many | length * 1000) }}",
    "{{ 10 ** (vars.many | length * 1000) }}",
]


@pytest.mark.parametrize("source", STATIC_BOMBS)
def test_constant_bombs_are_refused_before_a_call(source: str) -> None:
    assert inspect(source).unsafe
    assert "refused" in fails(source, BIG)


@pytest.mark.parametrize("source", RUNTIME_BOMBS)
def test_bombs_on_call_data_are_stopped_quickly(source: str) -> None:
    started = time.perf_counter()
    assert "refused" in fails(source, BIG)
    assert time.perf_counter() - started < 2.0


def test_ordinary_work_fits_the_bounds() -> None:
    text = "{% for i in vars.many %}{{ i }},{% endfor %}"
    assert render(text, BIG).count(",") == 1000
    assert len(render("{{ vars.big ~ 'y' }}", BIG)) == 60_001


# --- any text at all --------------------------------------------------------------------------

_PIECES = st.sampled_from(
    [*"{}%#()[]|.~*+-/ '\"_:,=!<>0123456789abcxyz"]
    + ["{{", "}}", "{%", "%}", "for ", " in ", "endfor", "if ", "endif", "vars", "call"]
    + ["range", "loop", "__class__", "**", "join", "9999999", "set ", "include"]
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_PIECES, max_size=30).map("".join)))
def test_any_text_is_inspected_and_rendered_without_surprises(text: str) -> None:
    inspect(text)
    inspect(text, expression=True)
    # Anything but a TemplateError escaping would fail the test.
    with contextlib.suppress(TemplateError):
        render(text, CONTEXT)
    with contextlib.suppress(TemplateError):
        evaluate(text, CONTEXT)
