"""What the caller hears and presses: play, say, collect and menu.

Prompts are ``Play`` commands; each one's end comes back as ``play.done`` with its key (or a
``command.failed``, after which the flow goes on as if it had played: a broken prompt must not
trap a call). Collect and menu run *attempts*: attempt N plays the Nth prompt of the list (the
last repeats), preceded from the second attempt on by the Nth ``no_input``/``no_match`` prompt;
digit timers start when the last prompt of the attempt ends, or at the first key when barge-in
is on.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ... import model as m
from ..commands import Say, StopPlay
from ..events import COMMAND_FAILED, COMMAND_OK, DTMF, PLAY_DONE, TIMER, Event
from ..step import GONE, STAY, Step, nth

TONES = frozenset("0123456789ABCD*#")


def _playback(step: Step, event: Event) -> bool | None:
    """Account for the end of a prompt: None if the event is not about our prompts, else
    whether all of them have now finished."""
    playing: list[str] = step.session.scratch.get("playing", [])
    key = event.payload.get("key")
    if event.name == PLAY_DONE:
        if key is None and playing:
            key = playing[0]
        if key not in playing:
            return None
    elif event.name in (COMMAND_OK, COMMAND_FAILED) and key in playing:
        if event.name == COMMAND_OK:
            return False  # the adapter started it; play.done follows
        step.note(f"prompt failed: {event.payload.get('error')}; going on")
    else:
        return None
    playing.remove(key)
    return not playing


def enter_play(step: Step, action: m.Play) -> str | None:
    """Play each prompt in turn; ``done`` after the last."""
    if step.session.caller_gone:
        step.note("the caller is gone: nothing to play")
        return "done"
    step.session.scratch["playing"] = [
        step.play(p, barge_in=action.barge_in) for p in action.prompts
    ]
    return None if action.prompts else "done"


def enter_say(step: Step, action: m.Say) -> str | None:
    """Speak the rendered text; ``done`` when it has been spoken."""
    if step.session.caller_gone:
        step.note("the caller is gone: nothing to say")
        return "done"
    text = str(step.render(action.text))
    locale = action.locale or step.session.call.get("locale") or step.flow.locale
    key = step.emit(Say, text=text, voice=action.voice, locale=locale, barge_in=action.barge_in).key
    step.session.scratch["playing"] = [key]
    return None


def on_play(step: Step, action: m.Play | m.Say, event: Event) -> str | None:
    """Prompt ends; a key press stops the prompt when barge-in is on."""
    finished = _playback(step, event)
    if finished is not None:
        return "done" if finished else STAY
    if event.name == DTMF and action.barge_in and _from_caller(step):
        step.emit(StopPlay)
        return "done"
    return None


def _from_caller(step: Step) -> bool:
    sid, caller = step.event_session(), step.leg_session("caller")
    return sid is None or caller is None or sid == caller


# -- collect and menu ------------------------------------------------------------------------


def enter_input(step: Step, action: m.Collect | m.Menu) -> str | None:
    """Start attempt 1 of a collect or menu."""
    if step.session.caller_gone:
        step.note("the caller is gone: no keys will come")
        return GONE
    step.session.attempt = 1
    _prompt(step, action, None)
    return None


def _barge_in(action: m.Collect | m.Menu) -> bool:
    return action.barge_in if isinstance(action, m.Collect) else True


def _prompt(step: Step, action: m.Collect | m.Menu, extra: str | None) -> None:
    scratch = step.session.scratch
    barge_in = _barge_in(action)
    keys = [step.play(extra, barge_in=barge_in)] if extra else []
    main = nth(action.prompts, step.session.attempt - 1)
    if main is not None:
        keys.append(step.play(main, barge_in=barge_in))
    scratch.update(playing=keys, digits="", listening=False)
    if not keys:
        _listen(step, action, key_pressed=False)


def _listen(step: Step, action: m.Collect | m.Menu, *, key_pressed: bool) -> None:
    step.session.scratch["listening"] = True
    if isinstance(action, m.Menu):
        if not key_pressed:
            step.start_timer("menu", action.timeout)
        return
    if not key_pressed:
        step.start_timer("first_digit", action.first_digit)
    if action.total is not None:
        step.start_timer("total", action.total)


def on_input(step: Step, action: m.Collect | m.Menu, event: Event) -> str | None:
    """Prompt ends, keys and timers of a collect or menu."""
    scratch = step.session.scratch
    finished = _playback(step, event)
    if finished is not None:
        if finished and not scratch.get("listening"):
            _listen(step, action, key_pressed=False)
        return STAY
    if event.name == DTMF:
        if not _from_caller(step):
            return None
        tone = str(event.payload.get("tone", event.payload.get("digit", ""))).upper()
        if tone not in TONES or len(tone) != 1:
            step.note(f"{tone!r} is not a DTMF key")
            return STAY
        if not scratch.get("listening"):
            if not _barge_in(action):
                step.note(f"key {tone} pressed during the prompt; barge-in is off")
                return STAY
            step.emit(StopPlay)
            scratch["playing"] = []
            _listen(step, action, key_pressed=True)
        if isinstance(action, m.Menu):
            return _option(step, action, tone)
        return _digit(step, action, tone)
    if event.name == TIMER:
        purpose = event.payload.get("purpose")
        if purpose in ("first_digit", "menu"):
            return _retry(step, action, "no_input")
        if purpose in ("inter_digit", "total") and isinstance(action, m.Collect):
            return _finish(step, action)
    return None


def _option(step: Step, action: m.Menu, tone: str) -> str:
    if tone not in action.options:
        step.note(f"key {tone} is not an option")
        return _retry(step, action, "no_match")
    if action.into:
        step.set_var(action.into, tone)
    return f"option {tone}"


def _digit(step: Step, action: m.Collect, tone: str) -> str:
    scratch = step.session.scratch
    if action.terminator and tone == action.terminator:
        return _finish(step, action)
    scratch["digits"] += tone
    step.cancel_timers("first_digit", "inter_digit")
    if len(scratch["digits"]) >= action.max_digits:
        return _finish(step, action)
    step.start_timer("inter_digit", action.inter_digit)
    return STAY


def _finish(step: Step, action: m.Collect) -> str:
    digits: str = step.session.scratch["digits"]
    if not digits:
        return _retry(step, action, "no_input")
    if len(digits) < action.min_digits:
        step.note(f"{len(digits)} digits, at least {action.min_digits} wanted")
        return _retry(step, action, "no_match")
    if action.pattern is not None and not _pattern(action.pattern).fullmatch(digits):
        step.note(f"{digits!r} does not match {action.pattern!r}")
        return _retry(step, action, "no_match")
    step.cancel_timers()
    step.set_var(action.into, digits)
    return "ok"


def _retry(step: Step, action: m.Collect | m.Menu, reason: str) -> str:
    session = step.session
    step.cancel_timers()
    if session.attempt >= action.attempts:
        return step.exhausted(reason)
    session.attempt += 1
    extras = action.no_input_prompts if reason == "no_input" else action.no_match_prompts
    step.note(f"{reason}: attempt {session.attempt} of {action.attempts}")
    _prompt(step, action, nth(extras, session.attempt - 2))
    return STAY


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)
