"""One scenario played on the runtime's ``Simulator``: steps in, a ``ScenarioResult`` out.

Where it sits: ``scenarios.suite`` calls ``run_scenario`` for each scenario of a file whose
flow loaded cleanly. The call runs on the same engine as production, with a virtual clock and
a fake Daily (``ScenarioTelephony``: the runtime's ``FakeTelephony`` plus what a scenario's
``daily:`` adds: ``pending`` and ``silent`` answers, and prompts that take time). Stubbed HTTP
replies come from ``RecordingHttp``, which remembers which stub answered, so a stub that never
did can be reported. The first failing ``expect`` stops the scenario: later steps would only
repeat the same news.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import model as m
from ..durations import parse_duration
from ..errors import Location
from ..runtime import (
    Command,
    CommandResult,
    Event,
    FakeHttp,
    FakeTelephony,
    FlowSet,
    HttpStub,
    Simulator,
    TraceEntry,
)
from ..runtime import events as ev
from ..runtime.commands import HttpRequest, Play, Say
from ..runtime.fake import ANSWER, DIAL_OUT, OK, REFER, TRANSFER
from ..runtime.ports import Clock
from ..runtime.session import Move
from .coverage import flow_edges
from .expect import Failure, check
from .flows import Target
from .model import Scenario, Step, Stub

MANUAL = ("pending", "silent")
"""Answers a scenario's ``daily:`` adds to the fake's own."""

_KEYS = {
    "answer": "answer",
    "start_dial_out": "dial_out",
    "sip_call_transfer": "transfer",
    "sip_refer": "refer",
    "send_dtmf": "send_dtmf",
    "stop_dial_out": "stop_dial_out",
}
"""A kind of command -> the ``daily:`` key that says how it is answered."""

_ALLOWED = {
    "answer": (*ANSWER, *MANUAL),
    "dial_out": (*DIAL_OUT, *MANUAL),
    "transfer": (*TRANSFER, *MANUAL),
    "refer": (*REFER, *MANUAL),
    "send_dtmf": (*OK, "silent"),
    "stop_dial_out": (*OK, *MANUAL),
}

CALL_ID = "call-1"


class ScenarioTelephony(FakeTelephony):
    """The fake Daily, configured by a scenario's ``daily:`` mapping.

    Besides the fake's own answers: ``pending`` (the request succeeds but none of the webhooks
    that would follow are sent: the scenario sends them with ``event`` steps, or the state's
    timer fires) and ``silent`` (nothing comes back at all). A list answers requests in turn,
    the last answer repeating. ``prompts``: each play or say lasts that long.
    """

    def __init__(self, daily: Mapping[str, Any], http: FakeHttp | None = None) -> None:
        super().__init__(http=http)
        self.answers: dict[tuple[str, str | None], tuple[str, ...]] = {}
        """(daily key, dial-out leg or None for every leg) -> answers, in turn."""
        self.counts: dict[tuple[str, str | None], int] = {}
        self.prompt_seconds = 0.0
        self.clock: Clock | None = None
        """Set once the simulator exists: prompts that take time end on it."""
        self._post: Callable[[str, Event], bool] | None = None
        for key, value in daily.items():
            if key == "dial_out" and isinstance(value, Mapping):
                for leg, each in value.items():
                    self.configure(key, each, leg=leg)
            else:
                self.configure(key, value)

    def configure(self, key: str, value: str | Sequence[str], *, leg: str | None = None) -> None:
        """Set how Daily answers one kind of request (a ``daily:`` key), for one leg or all.

        Raises:
            ValueError: an unknown key, or an answer the key does not take.
        """
        if key == "prompts":
            self.prompt_seconds = parse_duration(str(value))
            return
        if key not in _ALLOWED:
            raise ValueError(f"unknown daily key {key!r}: use {', '.join(_ALLOWED)} or prompts")
        if leg is not None and key != "dial_out":
            raise ValueError("only dial_out is set per leg")
        answers = (value,) if isinstance(value, str) else tuple(value)
        for answer in answers:
            if answer not in _ALLOWED[key]:
                raise ValueError(
                    f"daily {key} is one of {', '.join(_ALLOWED[key])}, not {answer!r}"
                )
        if leg is None:  # one answer for every leg replaces the per-leg ones
            for other in [k for k in self.answers if k[0] == key]:
                del self.answers[other]
        self.answers[(key, leg)] = answers
        self.counts[(key, leg)] = 0

    def bind(self, post: Callable[[str, Event], bool]) -> None:
        """The engine hands over its ``post``: how a prompt's end is delivered later."""
        self._post = post

    def answer_for(self, command: Command) -> str | None:
        """The answer this request gets (and count it), or None for the fake's default."""
        key = _KEYS.get(command.kind)
        if key is None:
            return None
        leg = getattr(command, "leg", None) if key == "dial_out" else None
        found = (key, leg) if (key, leg) in self.answers else (key, None)
        answers = self.answers.get(found)
        if not answers:
            return None
        turn = self.counts[found]
        self.counts[found] = turn + 1
        return answers[min(turn, len(answers) - 1)]

    async def execute(self, command: Command) -> CommandResult:
        """Record and answer one command."""
        clock, post = self.clock, self._post
        if isinstance(command, Play | Say) and self.prompt_seconds > 0 and clock and post:
            self.commands.append(command)
            clock.call_later(self.prompt_seconds, post, command.call_id, ev.play_done(command.key))
            return CommandResult.success()
        how = self.answer_for(command)
        if how == "silent":
            self.commands.append(command)
            return CommandResult(silent=True)
        key = _KEYS.get(command.kind)
        if key is not None:
            # The fake reads its settings as it answers: give it this request's answer (a
            # pending request is answered as a success whose webhooks are then held back).
            success = _ALLOWED[key][0]
            setattr(self, key, success if how in (None, "pending") else how)
        result = await super().execute(command)
        return dataclasses.replace(result, follow=()) if how == "pending" else result


class RecordingHttp(FakeHttp):
    """``FakeHttp`` that remembers which stubs answered (by their place in the file)."""

    def __init__(self, stubs: tuple[Stub, ...]) -> None:
        super().__init__(HttpStub.parse(s.match, **dict(s.answer)) for s in stubs)
        self.locations = [s.location for s in stubs]
        self.answered: set[Location] = set()

    def _find(self, request: HttpRequest) -> HttpStub | None:
        stub = super()._find(request)
        for i, candidate in enumerate(self.stubs):
            if candidate is stub:
                self.answered.add(self.locations[i])
        return stub


@dataclass
class ScenarioResult:
    """How one scenario went."""

    file: str
    scenario: Scenario
    flow: str
    failures: list[Failure] = field(default_factory=list)
    trace: list[TraceEntry] = field(default_factory=list)
    started_at: float = 0.0
    answered_stubs: set[Location] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    """Every HTTP request the flow made, as ``METHOD URL``."""
    labels: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """(flow, state, trigger) -> how the flow writes it (``when vars.x > 1`` for ``when 0``)."""
    marks: list[tuple[Step, int]] = field(default_factory=list)
    failed_step: Step | None = None
    """The ``expect`` step that failed."""
    failed_end: bool = False
    """The ``end`` expectation failed."""
    """Each step run, with the length of the trace before it (to show steps in the trace)."""

    @property
    def passed(self) -> bool:
        """True when every expectation held and every request found its stub."""
        return not self.failures

    @property
    def moves(self) -> list[Move]:
        """Every move the call made, in order (for coverage)."""
        return [move for entry in self.trace for move in entry.moves]


def _flowset(scenario: Scenario, target: Target) -> FlowSet:
    flow = target.flow
    if scenario.limits:
        limits = m.Limits(
            max_steps=int(scenario.limits.get("max_steps", flow.limits.max_steps)),
            max_duration=scenario.limits.get("max_duration", flow.limits.max_duration),
        )
        flow = dataclasses.replace(flow, limits=limits)
    others = [f for name, f in target.flows.items() if name != flow.name]
    return FlowSet([*others, flow])


def start(scenario: Scenario, target: Target) -> tuple[Simulator, RecordingHttp]:
    """A simulator with the scenario's call set up and started."""
    http = RecordingHttp(scenario.stubs)
    telephony = ScenarioTelephony(scenario.daily, http)
    variables = {**scenario.vars, **scenario.inputs}
    sim = Simulator(
        _flowset(scenario, target),
        target.flow.name,
        telephony=telephony,
        at=scenario.at,
        call=scenario.call,
        variables=variables,
        call_id=CALL_ID,
        start=False,
    )
    telephony.clock = sim.clock
    sim.send(ev.start())
    return sim, http


def play(sim: Simulator, step: Step) -> None:
    """Carry out one step that is not an ``expect``."""
    if step.kind == "dtmf":
        sim.dtmf(step.keys)
    elif step.kind == "wait":
        sim.advance(step.seconds)
    elif step.kind == "event":
        sim.send(Event(step.event, dict(step.payload), step.leg))
    elif step.kind == "hangup":
        sim.hangup()
    elif step.kind == "fault":
        sim.send(Event(ev.FAULT, {"reason": step.event}))


def run_scenario(file: str, scenario: Scenario, target: Target) -> ScenarioResult:
    """Play every step, checking each ``expect`` and the ``end``; stop at the first failure."""
    sim, http = start(scenario, target)
    result = ScenarioResult(file, scenario, target.flow.name, started_at=sim.now)
    result.labels = {
        (flow.name, edge.source, edge.trigger): edge.label
        for flow in target.family
        for edge in flow_edges(flow)
        if edge.label != edge.trigger
    }
    try:
        since = 0
        for step in scenario.steps:
            result.marks.append((step, len(sim.trace)))
            if step.expect is None:
                play(sim, step)
                continue
            result.failures = check(step.expect, sim, since)
            since = len(sim.commands)
            if result.failures:
                result.failed_step = step
                break
        else:
            if scenario.end is not None:
                result.failures = check(scenario.end, sim, since)
                result.failed_end = bool(result.failures)
        for request in http.unmatched:
            result.failures.append(
                Failure(
                    scenario.location,
                    f"no stub answers {request.method} {request.url}",
                    (
                        "Add one under `http:` (match: METHOD URL-glob), e.g.",
                        f'  - match: "{request.method} {request.url}"',
                    ),
                )
            )
        result.trace = list(sim.trace)
        result.answered_stubs = http.answered
        result.requests = [f"{r.method} {r.url}" for r in http.requests]
    finally:
        sim.close()
    return result
