"""Prompt checks: unknown prompt ids and prompts missing a promised locale."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flowengine.errors import Diagnostic, Severity
from flowengine.project import validate_paths

WriteFlow = Callable[..., Path]


def flow(
    action: str, *, head: str = 'prompts: {welcome: "Welcome.", menu_main: "Press 1."}'
) -> str:
    return (
        "name: t\n"
        f"{head}\n"
        "start: s0\n"
        "on: {hangup: bye, error: bye}\n"
        "states:\n"
        "  s0:\n"
        f"    {action}\n"
        "  bye:\n"
        "    hangup: {}\n"
    )


def found(write_flow: WriteFlow, text: str, code: str) -> list[Diagnostic]:
    report = validate_paths([write_flow(text)])
    return [d for d in report.diagnostics if d.code == code]


# --- unknown-prompt -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "needle", "column"),
    [
        ("play: welcom", "plays the prompt 'welcom'", 11),
        ("play: {prompt: [welcome, welcom]}", "plays the prompt 'welcom'", 30),
        ("collect: {prompt: welcom, into: pin, max_digits: 4}", "the prompt 'welcom'", 23),
        (
            "collect: {prompt: welcome, into: pin, max_digits: 4, no_input_prompt: welcom}",
            "'welcom' as its no_input_prompt",
            75,
        ),
        (
            'menu: {prompt: menu_main, options: {"1": bye}, no_match_prompt: [welcome, welcom]}',
            "'welcom' as its no_match_prompt",
            79,
        ),
    ],
)
def test_unknown_prompt_is_reported_where_it_is_used(
    write_flow: WriteFlow, action: str, needle: str, column: int
) -> None:
    (diag,) = found(write_flow, flow(action), "unknown-prompt")
    assert needle in diag.message
    assert diag.severity is Severity.ERROR
    assert (diag.location.line, diag.location.column) == (7, column)
    assert diag.hint == "Did you mean 'welcome'?"


def test_unknown_prompt_without_a_close_match_says_where_to_add_it(write_flow: WriteFlow) -> None:
    (diag,) = found(write_flow, flow("play: goodbye"), "unknown-prompt")
    assert diag.hint == 'Add it to prompts: goodbye: "<text to speak>".'


@pytest.mark.parametrize(
    "action",
    [
        "play: welcome",
        "play: {prompt: [welcome, menu_main]}",
        "collect: {prompt: welcome, into: pin, max_digits: 4, no_input_prompt: menu_main}",
        'menu: {prompt: menu_main, options: {"1": bye}, no_match_prompt: welcome}',
        'say: "welcom is text, not a prompt id"',
    ],
)
def test_known_prompts_pass(write_flow: WriteFlow, action: str) -> None:
    assert found(write_flow, flow(action), "unknown-prompt") == []


def test_prompts_from_the_catalogue_file_are_known(write_flow: WriteFlow) -> None:
    write_flow('goodbye: "Goodbye."\n', "shared.prompts.yaml")
    text = flow("play: goodbye", head="catalogue: shared.prompts.yaml")
    assert found(write_flow, text, "unknown-prompt") == []


def test_hint_mentions_the_catalogue_file_when_there_is_one(write_flow: WriteFlow) -> None:
    write_flow('goodbye: "Goodbye."\n', "shared.prompts.yaml")
    (diag,) = found(
        write_flow, flow("play: farewell", head="catalogue: shared.prompts.yaml"), "unknown-prompt"
    )
    assert "catalogue file" in (diag.hint or "")


# --- missing-locale -------------------------------------------------------------------------


def test_plain_text_prompt_lacks_the_other_locales(write_flow: WriteFlow) -> None:
    head = 'locales: [en-US, fr-FR, de-DE]\nprompts: {welcome: "Welcome."}'
    (diag,) = found(write_flow, flow("play: welcome", head=head), "missing-locale")
    assert diag.severity is Severity.WARNING
    assert diag.message == "prompt 'welcome' has no fr-FR, de-DE version"
    assert (diag.location.line, diag.location.column) == (3, 11)
    assert "counts as the flow's locale en-US" in (diag.hint or "")


def test_mapping_prompt_lacks_a_locale(write_flow: WriteFlow) -> None:
    head = 'locales: [en-US, fr-FR]\nprompts:\n  welcome: {en-US: "Welcome."}'
    (diag,) = found(write_flow, flow("play: welcome", head=head), "missing-locale")
    assert diag.message == "prompt 'welcome' has no fr-FR version"
    assert diag.location.line == 4
    assert (diag.hint or "").startswith('Add fr-FR: "<text>"')


@pytest.mark.parametrize(
    "head",
    [
        'prompts: {welcome: "Welcome."}',
        'locales: [en-US]\nprompts: {welcome: "Welcome."}',
        'locale: fr-FR\nlocales: [fr-FR]\nprompts: {welcome: "Bienvenue."}',
        'locales: [en-US, fr-FR]\nprompts: {welcome: {en-US: "Hi.", fr-FR: {audio: w.wav}}}',
        'locale: fr-FR\nlocales: [en-US, fr-FR]\nprompts: {welcome: {en-US: "Hi.", fr-FR: "Oui."}}',
    ],
)
def test_prompts_with_every_locale_pass(write_flow: WriteFlow, head: str) -> None:
    assert found(write_flow, flow("play: welcome", head=head), "missing-locale") == []


def test_unused_catalogue_prompts_are_not_reported(write_flow: WriteFlow) -> None:
    write_flow('welcome: {en-US: "Welcome."}\nother: "Other."\n', "shared.prompts.yaml")
    head = "locales: [en-US, fr-FR]\ncatalogue: shared.prompts.yaml"
    (diag,) = found(write_flow, flow("play: welcome", head=head), "missing-locale")
    assert "prompt 'welcome' (from the catalogue 'shared.prompts.yaml')" in diag.message
    assert diag.location.line == 3  # at the flow's `catalogue` value


def test_unused_inline_prompts_are_reported(write_flow: WriteFlow) -> None:
    head = 'locales: [en-US, fr-FR]\nprompts: {welcome: {en-US: "W.", fr-FR: "B."}, spare: "S."}'
    (diag,) = found(write_flow, flow("play: welcome", head=head), "missing-locale")
    assert "'spare'" in diag.message
