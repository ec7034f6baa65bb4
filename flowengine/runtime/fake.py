"""An offline Telephony port: records every command and answers like Daily would, by script.

Used by the simulator, ``flowengine test`` scenarios and the runtime's own tests. Each kind of
command has a configurable behaviour (the names match scenario files' ``daily:`` keys), and
answers may carry the webhooks Daily would send next (``CommandResult.follow``): a dial-out
that is ``answered`` returns its session id, then ``dialout.connected`` and
``dialout.answered``. Session ids are deterministic: ``dialout-1``, ``dialout-2``...; the
caller's is ``<call id>-caller``. HTTP requests go to a ``FakeHttp`` of stubs.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .commands import (
    Answer,
    Command,
    HttpRequest,
    Play,
    Say,
    SendDtmf,
    SipCallTransfer,
    SipRefer,
    StartDialOut,
    StopDialOut,
)
from .events import Event
from .ports import CommandResult

Responder = CommandResult | Callable[[Command], CommandResult]
HttpHandler = Callable[[HttpRequest], "CommandResult | Awaitable[CommandResult]"]

DIAL_OUT = ("answered", "no_answer", "busy", "failed")
TRANSFER = ("answered", "failed")
REFER = ("accepted", "failed")
ANSWER = ("connected", "failed")
OK = ("ok", "failed")


def caller_session_id(call_id: str) -> str:
    """The session id the fake gives a call's caller leg."""
    return f"{call_id}-caller"


@dataclass(slots=True)
class HttpStub:
    """One scripted answer: for requests whose method and URL (a glob) match."""

    url: str = "*"
    method: str | None = None
    status: int = 200
    json: Any = None
    text: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: bool = False
    """This attempt times out (``command.failed`` with error ``timeout``)."""
    error: str | None = None
    """This attempt fails at the transport level with this error."""
    hang: bool = False
    """Never answer (a silent result: the runtime's guard timer gives up on it)."""
    repeat: bool = False
    """Answer every matching request, not just the first."""

    @classmethod
    def parse(cls, match: str, **answer: Any) -> HttpStub:
        """A stub from a scenario's ``"GET https://host/path/*"`` (the method is optional)."""
        method, _, url = match.strip().partition(" ")
        if not url:
            method, url = "", method
        return cls(url=url.strip(), method=method.upper() or None, **answer)

    def matches(self, request: HttpRequest) -> bool:
        """True when this stub answers ``request``."""
        if self.method is not None and self.method != request.method.upper():
            return False
        return fnmatch.fnmatchcase(request.url, self.url)


class FakeHttp:
    """Business systems on script: the first unused matching stub answers each request."""

    def __init__(self, stubs: Iterable[HttpStub] = (), *, default: HttpStub | None = None) -> None:
        self.stubs = list(stubs)
        self.default = default
        """Answers what no stub matches (None: such a request fails, and is in ``unmatched``)."""
        self.requests: list[HttpRequest] = []
        self.unmatched: list[HttpRequest] = []
        self._used: set[int] = set()

    async def __call__(self, request: HttpRequest) -> CommandResult:
        """Answer one request."""
        self.requests.append(request)
        stub = self._find(request)
        if stub is None:
            self.unmatched.append(request)
            return CommandResult.failure(f"no stub matches {request.method} {request.url}")
        if stub.hang:
            return CommandResult(silent=True)
        if stub.timeout:
            return CommandResult.failure("timeout")
        if stub.error is not None:
            return CommandResult.failure(stub.error)
        data = {"status": stub.status, "json": stub.json, "text": stub.text}
        return CommandResult.success(data | {"headers": dict(stub.headers)})

    def _find(self, request: HttpRequest) -> HttpStub | None:
        for i, stub in enumerate(self.stubs):
            if (stub.repeat or i not in self._used) and stub.matches(request):
                self._used.add(i)
                return stub
        return self.default


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return value


class FakeTelephony:
    """Records commands in ``commands`` and answers them as configured."""

    def __init__(
        self,
        *,
        answer: str = "connected",
        dial_out: str | Mapping[str, str] = "answered",
        transfer: str = "answered",
        refer: str = "accepted",
        send_dtmf: str = "ok",
        stop_dial_out: str = "ok",
        http: HttpHandler | None = None,
        results: Mapping[str, Responder] | None = None,
    ) -> None:
        self.answer = _choice(answer, ANSWER, "answer")
        self.dial_out: dict[str, str] | str = (
            _choice(dial_out, DIAL_OUT, "dial_out")
            if isinstance(dial_out, str)
            else {leg: _choice(v, DIAL_OUT, f"dial_out.{leg}") for leg, v in dial_out.items()}
        )
        self.transfer = _choice(transfer, TRANSFER, "transfer")
        self.refer = _choice(refer, REFER, "refer")
        self.send_dtmf = _choice(send_dtmf, OK, "send_dtmf")
        self.stop_dial_out = _choice(stop_dial_out, OK, "stop_dial_out")
        self.http: HttpHandler = http or FakeHttp(default=HttpStub())
        self.results = dict(results or {})
        """Per command kind: a fixed result, or a function of the command (wins over the rest)."""
        self.commands: list[Command] = []
        self._dialled = 0

    async def execute(self, command: Command) -> CommandResult:
        """Record and answer one command."""
        self.commands.append(command)
        custom = self.results.get(command.kind)
        if custom is not None:
            return custom if isinstance(custom, CommandResult) else custom(command)
        if isinstance(command, HttpRequest):
            answer = self.http(command)
            return await answer if inspect.isawaitable(answer) else answer
        return self._telephony(command)

    def dial_out_behaviour(self, leg: str) -> str:
        """What a dial-out on ``leg`` does."""
        if isinstance(self.dial_out, str):
            return self.dial_out
        return self.dial_out.get(leg, "answered")

    def _telephony(self, command: Command) -> CommandResult:  # noqa: C901 - one case per kind
        ok = CommandResult.success
        if isinstance(command, (Play, Say)):
            return ok(finished=True)
        if isinstance(command, Answer):
            if self.answer == "failed":
                return CommandResult.failure("the caller could not be connected")
            sid = caller_session_id(command.call_id)
            return ok(follow=(Event("dialin.connected", {"session_id": sid}),))
        if isinstance(command, StartDialOut):
            self._dialled += 1
            sid = f"dialout-{self._dialled}"
            return ok({"sessionId": sid}, follow=self._dial_events(command.leg, sid))
        if isinstance(command, StopDialOut):
            if self.stop_dial_out == "failed":
                return CommandResult.failure("stopDialOut failed")
            return ok(follow=(Event("dialout.stopped", {"session_id": command.session_id}),))
        if isinstance(command, SendDtmf):
            return ok() if self.send_dtmf == "ok" else CommandResult.failure("sendDTMF failed")
        if isinstance(command, SipCallTransfer):
            if self.transfer == "failed":
                return CommandResult.failure("sipCallTransfer failed")
            return ok(follow=self._transfer_events(command.session_id, refer=False))
        if isinstance(command, SipRefer):
            if self.refer == "failed":
                return CommandResult.failure("sipRefer failed")
            return ok(follow=self._transfer_events(command.session_id, refer=True))
        return ok()

    def _dial_events(self, leg: str, sid: str) -> tuple[Event, ...]:
        behaviour = self.dial_out_behaviour(leg)
        ringing = Event("dialout.connected", {"session_id": sid})
        if behaviour == "answered":
            return ringing, Event("dialout.answered", {"session_id": sid})
        if behaviour == "no_answer":
            return (ringing,)
        reason = "486 Busy Here" if behaviour == "busy" else "503 Service Unavailable"
        return (Event("dialout.error", {"session_id": sid, "error_msg": reason}),)

    def _transfer_events(self, sid: str | None, *, refer: bool) -> tuple[Event, ...]:
        about: dict[str, Any] = {"session_id": sid, "is_sip_refer": refer}
        # The moved leg leaves the room: a dial-in's ends with dialin.stopped, a dial-out's
        # with dialout.stopped.
        kind = "dialout" if (sid or "").startswith("dialout-") else "dialin"
        left = Event(f"{kind}.stopped", {"session_id": sid})
        if refer:
            return (
                Event("calltransfer.triggered", about),
                left,
                Event("calltransfer.initiated", about),
            )
        return (
            Event("calltransfer.triggered", about),
            Event("calltransfer.initiated", about),
            left,
            Event("calltransfer.answered", {"session_id": sid}),
        )
