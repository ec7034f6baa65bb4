"""play, say, collect and menu: prompts, digits, timers, attempts and their outcomes."""

from __future__ import annotations

import pytest

from flowengine.runtime import CommandResult, FakeTelephony
from flowengine.runtime.commands import Play, Say, StopPlay

from .conftest import kinds

PLAY = """
name: play-test
start: hello
on: {hangup: bye, error: bye}
prompts: {a: "A", b: "Hello {{ vars.who }}"}
vars: {who: Ada}
states:
  hello:
    play: {prompt: [a, b], barge_in: true}
    on: {done: say}
  say:
    say: "Goodbye {{ vars.who }}"
    on: {done: bye}
  bye:
    hangup: {reason: finished}
"""

UNFINISHED = {"play": CommandResult.success(), "say": CommandResult.success()}
"""The fake answers prompts as started, not finished: the test sends play.done itself."""


def plays(commands: list[object]) -> list[str]:
    return [c.prompt for c in commands if isinstance(c, Play)]


def test_play_plays_each_prompt_then_done(flow, sim) -> None:
    s = sim(flow(PLAY))
    assert plays(s.commands) == ["a", "b"]
    assert [c.text for c in s.commands if isinstance(c, Play)] == ["A", "Hello Ada"]
    assert [c.text for c in s.commands if isinstance(c, Say)] == ["Goodbye Ada"]
    assert s.ended
    assert s.outcome == "hangup"
    assert s.commands[-1].reason == "finished"
    assert s.path == ["hello", "say", "bye"]


def test_play_waits_for_every_prompt(flow, sim) -> None:
    s = sim(flow(PLAY), telephony=FakeTelephony(results=UNFINISHED))
    first, second = (c.key for c in s.commands)
    s.send("play.done", key=second)
    assert s.state == "hello"
    s.send("play.done", key="unknown-key")
    assert s.state == "hello"
    s.send("play.done", key=first)
    assert s.state == "say"
    s.send("play.done")  # without a key: the oldest prompt playing
    assert s.ended


def test_play_barge_in_stops_the_prompt(flow, sim) -> None:
    s = sim(flow(PLAY), telephony=FakeTelephony(results=UNFINISHED))
    new = s.dtmf("5")
    assert isinstance(new[0], StopPlay)
    assert s.state == "say"


def test_a_failed_prompt_does_not_trap_the_call(flow, sim) -> None:
    fake = FakeTelephony(results={"play": CommandResult.failure("no audio")})
    s = sim(flow(PLAY), telephony=fake)
    assert s.path == ["hello", "say", "bye"]
    assert any("prompt failed" in (t.note or "") for t in s.trace)


COLLECT = """
name: collect-test
start: pin
on: {hangup: bye, error: bye}
prompts: {ask: "Enter", ask2: "Again", ask3: "Last", ni: "Nothing heard", nm: "Not valid"}
vars: {pin: ""}
states:
  pin:
    collect:
      prompt: [ask, ask2, ask3]
      into: pin
      min_digits: 4
      max_digits: 6
      timeouts: {first_digit: 5s, inter_digit: 3s, total: 20s}
      pattern: "[0-9]+"
      attempts: %(attempts)s
      no_input_prompt: ni
      no_match_prompt: nm
      barge_in: %(barge_in)s
    on: {ok: good, %(exhausted)s: bad}
  good:
    hangup: {reason: ok}
  bad:
    hangup: {reason: bad}
  bye:
    end: {}
"""


def collect(attempts: int = 3, barge_in: str = "true", exhausted: str = "max_attempts") -> str:
    return COLLECT % {"attempts": attempts, "barge_in": barge_in, "exhausted": exhausted}


def test_collect_terminator_ends_input(flow, sim) -> None:
    s = sim(flow(collect()))
    assert plays(s.commands) == ["ask"]
    s.dtmf("1234#")
    assert s.vars["pin"] == "1234"
    assert s.path == ["pin", "good"]
    assert s.ended


def test_collect_max_digits_ends_input(flow, sim) -> None:
    s = sim(flow(collect()))
    s.dtmf("123456")
    assert s.vars["pin"] == "123456"
    assert s.state == "good"


def test_collect_inter_digit_timeout_ends_input(flow, sim) -> None:
    s = sim(flow(collect()))
    s.dtmf("12345")
    s.advance(2.9)
    assert s.state == "pin"
    s.advance(0.1)
    assert s.vars["pin"] == "12345"
    assert s.state == "good"


def test_collect_first_digit_timeout_retries_with_escalating_prompts(flow, sim) -> None:
    s = sim(flow(collect()))
    s.advance(4.9)
    assert s.state == "pin"
    assert plays(s.commands) == ["ask"]
    s.advance(0.1)
    assert plays(s.commands) == ["ask", "ni", "ask2"]
    assert s.session.attempt == 2
    s.advance(5)
    assert plays(s.commands) == ["ask", "ni", "ask2", "ni", "ask3"]
    s.advance(5)
    assert s.state == "bad"  # no_input not routed: max_attempts


def test_collect_exhaustion_takes_the_specific_outcome_when_routed(flow, sim) -> None:
    s = sim(flow(collect(attempts=1, exhausted="no_input")))
    s.advance(5)
    assert s.path == ["pin", "bad"]


def test_collect_exhaustion_without_routes_goes_to_the_error_handler(flow, sim) -> None:
    text = collect(attempts=1).replace("max_attempts: bad", "no_match: bad")
    s = sim(flow(text))
    s.advance(5)  # no_input, neither it nor max_attempts routed
    assert s.path == ["pin", "bye"]
    assert s.outcome == "end"


def test_collect_too_few_digits_is_no_match(flow, sim) -> None:
    s = sim(flow(collect()))
    s.dtmf("12#")
    assert plays(s.commands) == ["ask", "nm", "ask2"]
    assert s.state == "pin"
    assert s.vars["pin"] == ""


def test_collect_pattern_mismatch_is_no_match(flow, sim) -> None:
    s = sim(flow(collect()))
    s.dtmf("12*45#")
    assert plays(s.commands)[-2:] == ["nm", "ask2"]


def test_collect_total_timer_ends_a_slow_attempt(flow, sim) -> None:
    text = collect().replace("total: 20s", "total: 5s")
    s = sim(flow(text))
    s.dtmf("12")  # keys at t = 0 and 0.1 (the prompt ended at t = 0)
    s.advance(2)
    s.dtmf("3")  # t = 2.1
    s.advance(2)
    s.dtmf("4")  # t = 4.1: four digits, the inter-digit timer would end input at 7.1
    s.advance(0.8)
    assert s.state == "pin"
    s.advance(0.2)  # the total timer fires at t = 5
    assert s.vars["pin"] == "1234"
    assert s.state == "good"


def test_collect_last_prompt_repeats(flow, sim) -> None:
    text = collect(attempts=5).replace("prompt: [ask, ask2, ask3]", "prompt: [ask, ask2]")
    s = sim(flow(text))
    s.advance(20)
    assert plays(s.commands) == ["ask", "ni", "ask2", "ni", "ask2", "ni", "ask2", "ni", "ask2"]


def test_collect_barge_in_counts_keys_during_the_prompt(flow, sim) -> None:
    s = sim(flow(collect()), telephony=FakeTelephony(results=UNFINISHED))
    new = s.dtmf("1234#")
    assert isinstance(new[0], StopPlay)
    assert s.vars["pin"] == "1234"


def test_collect_without_barge_in_ignores_keys_during_the_prompt(flow, sim) -> None:
    s = sim(flow(collect(barge_in="false")), telephony=FakeTelephony(results=UNFINISHED))
    s.dtmf("99")
    assert s.state == "pin"
    assert not any(isinstance(c, StopPlay) for c in s.commands)
    s.send("play.done")
    s.dtmf("1234#")
    assert s.vars["pin"] == "1234"


def test_collect_timers_start_after_the_prompt(flow, sim) -> None:
    s = sim(flow(collect()), telephony=FakeTelephony(results=UNFINISHED))
    s.advance(60)
    assert s.state == "pin"
    assert s.session.attempt == 1
    s.send("play.done")
    s.advance(5)
    assert s.session.attempt == 2


MENU = """
name: menu-test
start: main
on: {hangup: bye, error: bye}
prompts: {m1: "Menu", m2: "Menu again", ni: "Nothing", nm: "Wrong key"}
vars: {choice: ""}
states:
  main:
    menu:
      prompt: [m1, m2]
      options: {1: one, "#": hash}
      timeout: 4s
      attempts: 2
      no_input_prompt: ni
      no_match_prompt: nm
      into: choice
    on: {no_input: quiet, no_match: wrong, max_attempts: bye}
  one:
    end: {}
  hash:
    end: {}
  quiet:
    hangup: {reason: quiet}
  wrong:
    hangup: {reason: wrong}
  bye:
    end: {}
"""


@pytest.mark.parametrize(("key", "state"), [("1", "one"), ("#", "hash")])
def test_menu_option_goes_to_its_state(flow, sim, key: str, state: str) -> None:
    s = sim(flow(MENU))
    s.dtmf(key)
    assert s.state == state
    assert s.vars["choice"] == key


def test_menu_wrong_key_retries_then_no_match(flow, sim) -> None:
    s = sim(flow(MENU))
    s.dtmf("7")
    assert plays(s.commands) == ["m1", "nm", "m2"]
    s.dtmf("8")
    assert s.state == "wrong"


def test_menu_silence_retries_then_no_input(flow, sim) -> None:
    s = sim(flow(MENU))
    s.advance(4)
    assert plays(s.commands) == ["m1", "ni", "m2"]
    s.advance(4)
    assert s.state == "quiet"
    assert kinds(s.commands)[-1] == "hangup"


def test_menu_mixed_failures_end_in_the_last_reason(flow, sim) -> None:
    s = sim(flow(MENU))
    s.dtmf("9")
    s.advance(4)
    assert s.state == "quiet"


def test_menu_exhaustion_goes_to_max_attempts_when_the_reason_is_not_routed(flow, sim) -> None:
    text = MENU.replace(
        "on: {no_input: quiet, no_match: wrong, max_attempts: bye}", "on: {max_attempts: wrong}"
    )
    s = sim(flow(text))
    s.advance(8)
    assert s.path == ["main", "wrong"]


def test_collect_no_match_routed_at_exhaustion(flow, sim) -> None:
    s = sim(flow(collect(attempts=2, exhausted="no_match")))
    s.dtmf("1#")
    s.dtmf("2#")
    assert s.path == ["pin", "bad"]
