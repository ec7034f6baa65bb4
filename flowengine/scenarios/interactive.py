"""``flowengine simulate FLOW`` without a script: a designer plays the caller and Daily.

Where it sits: the CLI reads lines and hands each to ``Console.handle``, which drives a
``Simulator`` (the scenario runner's fake Daily, by default waiting for the designer to say
what Daily does) and returns what to print: the trace entries the line caused. Bad input is a
one-line error, never a traceback. HTTP requests wait for an answer typed at the prompt
(``http 200 {"status": "active"}``), so a designer can try every reply a system might give.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .. import model as m
from ..durations import format_duration, parse_duration
from ..runtime import CommandResult, Event, FakeHttp, Simulator
from ..runtime import events as ev
from ..runtime.commands import HttpRequest
from .coverage import flow_edges
from .flows import Target
from .report import entry_lines
from .runner import CALL_ID, ScenarioTelephony

HELP = """\
What happens next (the call runs until it waits for something):
  dtmf KEYS                 the caller presses keys: dtmf 1, dtmf 1234#
  answer [LEG]              what the flow waits for answers: the caller connects, the
                            dial-out rings through, the transfer or refer is taken
  hangup                    the caller hangs up
  wait DURATION             time passes (timers fire): wait 10s, wait 1m30s
  event NAME [LEG] [JSON]   a Daily event: event dialout.stopped agent,
                            event dialout.error agent {"error_msg": "486 Busy Here"}
  fault [REASON]            something goes wrong inside the current state (error path)
  http STATUS [JSON]        answer the waiting HTTP request: http 200 {"status": "active"}
  http timeout | http error [TEXT]
  daily KEY VALUE [LEG]     how Daily answers from now on: daily transfer failed,
                            daily dial_out busy agent, daily answer connected
Looking:
  state | vars | trace | help | quit (or end of input)"""

DEFAULT_DAILY = {
    "answer": "pending",
    "dial_out": "pending",
    "transfer": "pending",
    "refer": "pending",
}
"""Interactive calls wait for the designer to say what Daily does (``--auto``: it answers)."""


class InputError(Exception):
    """A line the console cannot carry out; its text is shown as is."""


class WaitingHttp(FakeHttp):
    """Business systems that answer only when the designer types the answer."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[HttpRequest] = []

    async def __call__(self, request: HttpRequest) -> CommandResult:
        """Keep the request until ``http ...`` answers it."""
        self.requests.append(request)
        self.waiting.append(request)
        return CommandResult(silent=True)


class Console:
    """One interactive call."""

    def __init__(
        self,
        target: Target,
        *,
        at: datetime | None = None,
        call: Mapping[str, Any] | None = None,
        variables: Mapping[str, Any] | None = None,
        auto: bool = False,
    ) -> None:
        self.http = WaitingHttp()
        self.telephony = ScenarioTelephony({} if auto else DEFAULT_DAILY, self.http)
        self.sim = Simulator(
            list(target.flows.values()),
            target.flow.name,
            telephony=self.telephony,
            at=at,
            call=call,
            variables=variables,
            call_id=CALL_ID,
            start=False,
        )
        self.telephony.clock = self.sim.clock
        self.root = target.flow.name
        self.labels = {
            (flow.name, edge.source, edge.trigger): edge.label
            for flow in target.family
            for edge in flow_edges(flow)
        }
        self.started = self.sim.now
        self.shown = 0
        self.sim.send(ev.start())
        self._commands: dict[str, Callable[[list[str], str], list[str]]] = {
            "dtmf": self._dtmf,
            "answer": self._answer,
            "hangup": self._hangup,
            "wait": self._wait,
            "event": self._event,
            "http": self._http,
            "fault": self._fault,
            "daily": self._daily,
            "state": self._state,
            "vars": self._vars,
            "trace": self._trace,
            "help": lambda args, rest: HELP.splitlines(),
        }

    @property
    def prompt(self) -> str:
        """``flow:state> `` for the prompt."""
        return f"{self.sim.flow}:{self.sim.state}> "

    def close(self) -> None:
        """End the simulation."""
        self.sim.close()

    def news(self) -> list[str]:
        """Trace entries not shown yet, and what the call waits for."""
        trace = self.sim.trace
        lines: list[str] = []
        for entry in trace[self.shown :]:
            lines += entry_lines(entry, self.started, self.root, verbose=False, labels=self.labels)
        self.shown = len(trace)
        if self.sim.ended:
            lines.append(f"the call has ended: {self.sim.outcome}")
        elif self.http.waiting:
            request = self.http.waiting[-1]
            lines.append(f"waiting for the answer to {request.method} {request.url}: http ...")
        return lines

    def handle(self, line: str) -> list[str]:
        """Carry out one line; returns what to print.

        Raises:
            InputError: the line is not a command, or its arguments are wrong.
        """
        word, _, rest = line.strip().partition(" ")
        if not word or word.startswith("#"):
            return []
        command = self._commands.get(word.lower())
        if command is None:
            raise InputError(f"unknown command {word!r}: type help")
        try:
            args = shlex.split(rest) if word.lower() != "event" else rest.split(None, 2)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        return command(args, rest.strip())

    # -- what happens ------------------------------------------------------------------------

    def _dtmf(self, args: list[str], rest: str) -> list[str]:
        keys = "".join(args)
        if not keys or any(k not in "0123456789ABCD*#" for k in keys):
            raise InputError("dtmf takes keys 0-9, A-D, * and #: dtmf 1234#")
        self.sim.dtmf(keys)
        return self.news()

    def _answer(self, args: list[str], rest: str) -> list[str]:
        state = self.sim.session.state
        flow = self.sim.engine.runtime.flows.get(self.sim.flow)
        action = flow.states[state].action if flow and state in flow.states else None
        leg = args[0] if args else None
        if isinstance(action, m.Answer):
            sid = self.sim.session.call.get("session_id")
            self.sim.send(Event("dialin.connected", {"session_id": sid}))
        elif isinstance(action, m.DialOut):
            self.sim.send("dialout.answered", leg=leg or action.leg)
        elif isinstance(action, m.Transfer):
            self.sim.send("calltransfer.answered", leg=leg)
        elif isinstance(action, m.Refer):
            self.sim.send("calltransfer.initiated", leg=leg, is_sip_refer=True)
        else:
            raise InputError(f"nothing is waiting to be answered in {state!r}: try event NAME")
        return self.news()

    def _hangup(self, args: list[str], rest: str) -> list[str]:
        self.sim.hangup()
        return self.news()

    def _wait(self, args: list[str], rest: str) -> list[str]:
        try:
            seconds = float(rest) if rest.replace(".", "", 1).isdigit() else parse_duration(rest)
        except ValueError as exc:
            raise InputError(f"wait takes a duration: wait 10s ({exc})") from exc
        self.sim.advance(seconds)
        return self.news()

    def _event(self, args: list[str], rest: str) -> list[str]:
        if not args:
            raise InputError("event takes a name: event dialout.answered [LEG] [JSON]")
        name, leg, payload = args[0], None, {}
        tail = rest[len(name) :].strip()
        if tail and not tail.startswith("{"):
            leg, _, tail = tail.partition(" ")
            tail = tail.strip()
        if tail:
            payload = _json_object(tail)
        self.sim.send(Event(name, payload, leg))
        return self.news()

    def _fault(self, args: list[str], rest: str) -> list[str]:
        self.sim.send(Event(ev.FAULT, {"reason": rest or "reported at the prompt"}))
        return self.news()

    def _http(self, args: list[str], rest: str) -> list[str]:
        if not self.http.waiting:
            raise InputError("no HTTP request is waiting for an answer")
        if not args:
            raise InputError("http takes a status (and JSON), timeout, or error")
        request = self.http.waiting.pop()
        what = args[0].lower()
        if what in ("timeout", "error"):
            error = "timeout" if what == "timeout" else (rest[len(what) :].strip() or "refused")
            event = ev.command_failed(request.key, request.kind, error)
        elif what.isdigit():
            body = rest[len(what) :].strip()
            answer = {"status": int(what), "json": _json(body) if body else None, "text": ""}
            event = ev.command_ok(request.key, request.kind, answer | {"headers": {}})
        else:
            self.http.waiting.append(request)
            raise InputError("http takes a status (and JSON), timeout, or error")
        self.sim.send(event)
        return self.news()

    def _daily(self, args: list[str], rest: str) -> list[str]:
        if len(args) not in (2, 3):
            raise InputError("daily takes KEY VALUE [LEG]: daily transfer failed")
        try:
            self.telephony.configure(args[0], args[1], leg=args[2] if len(args) == 3 else None)
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        return [f"Daily now answers {args[0]} with {args[1]}"]

    # -- looking -----------------------------------------------------------------------------

    def _state(self, args: list[str], rest: str) -> list[str]:
        session = self.sim.session
        lines = [f"flow {session.flow}, state {session.state}"]
        if session.ended:
            lines.append(f"ended: {session.outcome}")
        for timer in sorted(session.timers.values(), key=lambda t: t.deadline):
            due = format_duration(max(0.0, timer.deadline - self.sim.now))
            lines.append(f"timer {timer.purpose} in {due}")
        lines += [f"leg {name}: {sid}" for name, sid in session.legs.items()]
        return lines

    def _vars(self, args: list[str], rest: str) -> list[str]:
        return json.dumps(self.sim.vars, indent=2, ensure_ascii=False).splitlines()

    def _trace(self, args: list[str], rest: str) -> list[str]:
        lines: list[str] = []
        for entry in self.sim.trace:
            lines += entry_lines(entry, self.started, self.root, verbose=True, labels=self.labels)
        return lines


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"not JSON: {exc}") from exc


def _json_object(text: str) -> dict[str, Any]:
    value = _json(text)
    if not isinstance(value, dict):
        raise InputError("the payload must be a JSON object: {...}")
    return value
