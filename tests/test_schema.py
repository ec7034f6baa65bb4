"""Schema problems become diagnostics with a code, a message for a designer and a location."""

from __future__ import annotations

import json
import textwrap

import pytest

from flowengine.errors import Severity
from flowengine.loader import parse_flow_text
from flowengine.model import FINAL_KINDS
from flowengine.schema import (
    action_kinds,
    flow_schema,
    prompt_diagnostics,
    schema_diagnostics,
)

from .conftest import ROOT

HEAD = """\
name: demo
start: a
states:
"""


def problems(text: str, *, head: str = HEAD) -> list[str]:
    """Each schema diagnostic as ``line:col code: message | hint``, in order."""
    doc = parse_flow_text(head + text, "flow.yaml")
    assert doc.diagnostics == ()
    found = sorted(schema_diagnostics(doc), key=lambda d: d.sort_key())
    assert all(d.severity is Severity.ERROR for d in found)
    return [
        f"{d.location.line}:{d.location.column} {d.code}: {d.message}"
        + (f" | {d.hint}" if d.hint else "")
        for d in found
    ]


def state(body: str) -> str:
    """A state 'a' with the given (indented) body."""
    return "  a:\n" + textwrap.indent(textwrap.dedent(body).lstrip("\n"), "    ")


def test_a_minimal_flow_is_valid() -> None:
    assert problems(state("hangup: {}")) == []


def test_the_packaged_schema_equals_the_published_one() -> None:
    published = json.loads((ROOT / "schemas" / "flow.schema.json").read_text(encoding="utf-8"))
    assert flow_schema() == published


def test_action_kinds_cover_the_final_kinds_and_exclude_state_keys() -> None:
    kinds = action_kinds()
    assert set(kinds) >= FINAL_KINDS
    assert not {"on", "description", "max_visits"} & set(kinds)


def test_a_document_that_did_not_parse_has_no_schema_problems() -> None:
    doc = parse_flow_text("a: [", "flow.yaml")
    assert schema_diagnostics(doc) == []


class TestUnknownKey:
    def test_misspelt_state_key_suggests_the_right_one(self) -> None:
        assert problems(state("hangup: {}\ndescripton: bye")) == [
            "6:5 unknown-key: unknown key 'descripton' in state 'a' | Did you mean 'description'?"
        ]

    def test_misspelt_action_key_suggests_the_right_one(self) -> None:
        assert problems(state("menu: {prompt: p, options: {1: a}, timout: 5s}")) == [
            "5:40 unknown-key: unknown key 'timout' in state 'a' at 'menu' | "
            "Did you mean 'timeout'?"
        ]

    def test_unknown_top_level_key_is_located_at_the_key(self) -> None:
        assert problems(
            state("hangup: {}"), head="name: demo\nstart: a\nflavour: x\nstates:\n"
        ) == [
            "3:1 unknown-key: unknown key 'flavour' in the flow | Allowed keys: allowed_hosts, "
            "catalogue, description, inputs, limits, locale, locales, match, name, on, outputs, "
            "prompts, start, states, vars."
        ]

    def test_unknown_key_inside_an_anyof_branch_picks_the_mapping_branch(self) -> None:
        assert problems(state("play: {prompt: hello, barge: true}\non: {done: a}")) == [
            "5:27 unknown-key: unknown key 'barge' in state 'a' at 'play' | "
            "Did you mean 'barge_in'?"
        ]


class TestMissingKey:
    def test_missing_top_level_key_is_located_at_the_start(self) -> None:
        assert problems("", head="name: demo\nstates:\n  a: {hangup: {}}\n") == [
            "1:1 missing-key: the flow needs the key 'start'"
        ]

    def test_missing_action_key_is_located_at_the_action(self) -> None:
        assert problems(state("collect: {prompt: p, into: pin}")) == [
            "5:5 missing-key: state 'a' at 'collect' needs the key 'max_digits'"
        ]

    def test_every_missing_key_is_reported(self) -> None:
        assert problems(state("collect: {prompt: p}")) == [
            "5:5 missing-key: state 'a' at 'collect' needs the key 'into'",
            "5:5 missing-key: state 'a' at 'collect' needs the key 'max_digits'",
        ]


class TestWrongType:
    def test_text_for_a_number(self) -> None:
        assert problems(state('collect: {prompt: p, into: pin, max_digits: "4"}')) == [
            "5:49 wrong-type: state 'a' at 'collect.max_digits' must be a whole number, not text"
        ]

    def test_bare_number_for_a_duration_names_the_duration(self) -> None:
        assert problems(state("answer: {timeout: 30}")) == [
            "5:23 wrong-type: state 'a' at 'answer.timeout' must be a duration, not a whole "
            "number | Write a number with a unit: 5s, 500ms, 1m30s."
        ]

    def test_list_for_a_mapping(self) -> None:
        assert problems("", head="name: demo\nstart: a\nstates: [a, b]\n") == [
            "3:9 wrong-type: 'states' must be a mapping, not a list"
        ]

    def test_value_fitting_no_branch_lists_every_form(self) -> None:
        assert problems(state("hangup: 5")) == [
            "5:13 wrong-type: state 'a' at 'hangup' must be empty or a mapping, not a whole number"
        ]
        assert problems(state("play: [hello]")) == [
            "5:11 wrong-type: state 'a' at 'play' must be a prompt id or a mapping, not a list"
        ]

    def test_empty_state_is_a_wrong_type_only(self) -> None:
        assert problems("  a:\n") == ["4:5 wrong-type: state 'a' must be a mapping, not empty"]

    def test_empty_file_is_not_a_flow(self) -> None:
        assert problems("", head="") == ["1:1 wrong-type: the flow must be a mapping, not empty"]


class TestInvalidValue:
    def test_duration_pattern(self) -> None:
        assert problems(state("menu: {prompt: p, options: {1: a}, timeout: 5 seconds}")) == [
            "5:49 invalid-value: '5 seconds' in state 'a' at 'menu.timeout' is not a duration | "
            "Write a number with a unit: 5s, 500ms, 1m30s."
        ]

    def test_flow_name_pattern(self) -> None:
        assert problems(state("hangup: {}"), head="name: Support Line\nstart: a\nstates:\n") == [
            "1:7 invalid-value: 'Support Line' in 'name' is not a flow name | "
            "Use lower-case letters, digits, _ and -."
        ]

    def test_enum_suggests_the_same_word_in_capitals(self) -> None:
        assert problems(state("http: {url: 'https://x.example.com', method: post}")) == [
            "5:50 invalid-value: 'post' in state 'a' at 'http.method' is not one of the allowed "
            "values | Did you mean 'POST'?"
        ]

    def test_enum_suggests_a_close_value(self) -> None:
        assert problems(state("http: {url: 'https://x.example.com', method: GETT}"))[0].endswith(
            "| Did you mean 'GET'?"
        )

    def test_enum_lists_the_values_when_nothing_is_close(self) -> None:
        assert problems(state("send_dtmf: {tones: '1', method: shout}")) == [
            "5:37 invalid-value: 'shout' in state 'a' at 'send_dtmf.method' is not one of the "
            "allowed values | Use one of: telephone-event, sip-info, auto."
        ]

    def test_number_out_of_range(self) -> None:
        assert problems(state("menu: {prompt: p, options: {1: a}, attempts: 0}")) == [
            "5:50 invalid-value: state 'a' at 'menu.attempts' must be at least 1, not 0"
        ]
        assert problems(state("menu: {prompt: p, options: {1: a}, attempts: 11}")) == [
            "5:50 invalid-value: state 'a' at 'menu.attempts' must be at most 10, not 11"
        ]

    def test_empty_mapping_that_needs_entries(self) -> None:
        assert problems("", head="name: demo\nstart: a\nstates: {}\n") == [
            "3:9 invalid-value: 'states' needs at least one entry"
        ]

    def test_bad_key_is_located_at_the_key(self) -> None:
        assert problems(state("hangup: {}\non: {Hangup: a}")) == [
            "6:10 invalid-value: key 'Hangup' in state 'a' at 'on' is not an outcome or event "
            "name | Use lower-case names like no_input or dialout.answered."
        ]

    def test_bad_state_name_is_located_at_the_name(self) -> None:
        assert problems("  a: {hangup: {}}\n  good bye: {hangup: {}}\n") == [
            "5:3 invalid-value: key 'good bye' in 'states' is not a state name | "
            "Use letters, digits, _ and -, not starting with a digit."
        ]

    def test_bad_day_names_the_forms_of_a_day(self) -> None:
        assert problems(state("schedule: {timezone: UTC, hours: {monday: '09:00-17:00'}}")) == [
            "5:39 invalid-value: key 'monday' in state 'a' at 'schedule.hours' is not a day or a "
            "range of days | Use mon, tue, wed, thu, fri, sat, sun, or a range like mon-fri."
        ]

    def test_exactly_one_of_with_two(self) -> None:
        assert problems(state("transfer: {room: a, phone: '+14155550100'}")) == [
            "5:5 invalid-value: state 'a' at 'transfer' needs exactly one of room, sip, phone, "
            "but has room, phone"
        ]

    def test_exactly_one_of_with_none(self) -> None:
        assert problems(state("wait: {timeout: 5s}")) == [
            "5:5 invalid-value: state 'a' at 'wait' needs exactly one of for, events, "
            "but has none of them"
        ]


class TestStateKind:
    def test_state_without_an_action(self) -> None:
        assert problems(state("on: {done: a}")) == [
            "4:3 state-kind: state 'a' has no action | Give it one of: "
            + ", ".join(action_kinds())
            + "."
        ]

    def test_state_with_two_actions_is_located_at_the_second(self) -> None:
        assert problems(state("play: hello\nsay: hi\non: {done: a}")) == [
            "6:5 state-kind: state 'a' has 2 actions (play, say); a state does exactly one thing"
            " | Split it into states chained with `on`."
        ]

    @pytest.mark.parametrize("kind", action_kinds())
    def test_every_kind_with_hangup_is_two_actions(self, kind: str) -> None:
        if kind == "hangup":
            return
        found = problems(state(f"hangup: {{}}\n{kind}: {{}}"))
        assert any(p.split(" ")[1] == "state-kind:" for p in found), found


class TestPromptCatalogue:
    def test_catalogue_entries_are_checked(self) -> None:
        doc = parse_flow_text("hello: Hello\n1bad: x\nbye: {en-US: {sound: a.wav}}\n", "c.yaml")
        found = [(d.location.line, d.code, d.message) for d in prompt_diagnostics(doc)]
        assert found == [
            (2, "invalid-value", "key '1bad' in the catalogue is not a prompt id"),
            (3, "unknown-key", "unknown key 'sound' in 'bye.en-US'"),
        ]
