"""The behaviour of each state kind, as plain functions; the core looks them up here.

Each kind has an *enter* function, run when a call enters the state (it emits commands and
returns an outcome at once, or ``None`` to wait), and an *event* function, run for each event
while the call is in the state (it returns an outcome, ``STAY``, or ``None`` when the event is
not the state's business). Final kinds (hangup, end, return) are handled by the core itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ... import model as m
from ..events import Event
from ..step import Step
from . import legs, logic, media

Enter = Callable[[Step, Any], "str | None"]
OnEvent = Callable[[Step, Any, Event], "str | None"]


def _never(step: Step, action: Any, event: Event) -> str | None:
    return None


KINDS: dict[type, tuple[Enter, OnEvent]] = {
    m.Answer: (legs.enter_answer, legs.on_answer),
    m.Play: (media.enter_play, media.on_play),
    m.Say: (media.enter_say, media.on_play),
    m.Collect: (media.enter_input, media.on_input),
    m.Menu: (media.enter_input, media.on_input),
    m.SendDtmf: (legs.enter_send_dtmf, legs.on_send_dtmf),
    m.DialOut: (legs.enter_dial_out, legs.on_dial_out),
    m.StopDialOut: (legs.enter_stop_dial_out, legs.on_stop_dial_out),
    m.Transfer: (legs.enter_transfer, legs.on_transfer),
    m.Refer: (legs.enter_refer, legs.on_refer),
    m.Wait: (logic.enter_wait, logic.on_wait),
    m.Choose: (logic.enter_choose, _never),
    m.SetVars: (logic.enter_set, _never),
    m.Http: (logic.enter_http, logic.on_http),
    m.Schedule: (logic.enter_schedule, _never),
    m.CallFlow: (logic.enter_call, _never),
}
"""Action class -> (enter, on_event)."""
