"""The call runtime: a pure synchronous core and an async shell around it.

Where it sits: loader -> schema -> model -> checks -> **runtime**; the daemon, the CLI's
``simulate``/``test`` and ``daily/`` build on it. It imports the model, templates, errors and
addresses, never the CLI, the project loader or Daily's clients; only ``compiler.py`` (and
``session.py``, should it need to) import ``transitions``.

- ``events``: the event vocabulary (``Event``) and how Daily's events are normalised;
- ``commands``: commands as data, each with an idempotency key;
- ``compiler``: a flow -> one shared ``transitions.Machine`` (``compile_flow``, ``FlowSet``);
- ``session``: one call's state, JSON in and out (``Session``);
- ``core``: ``Runtime.handle(session, event, now) -> commands``, no I/O;
- ``engine``: ``Engine``, the asyncio shell (per-call queues, timers, command execution);
- ``ports``: the ``Telephony`` and ``Clock`` ports, ``VirtualClock``;
- ``fake`` / ``simulator``: an offline Daily and a synchronous ``Simulator`` on top of it.
"""

from __future__ import annotations

from .commands import Command, command_from_dict
from .compiler import CompiledFlow, CompileError, FlowSet, compile_flow
from .core import Runtime, UnknownFlowError
from .engine import CallExistsError, Engine
from .events import Event
from .fake import FakeHttp, FakeTelephony, HttpStub
from .ports import AsyncioClock, Clock, CommandResult, Telephony, VirtualClock
from .session import RestoreError, Session, TraceEntry
from .simulator import Simulator

__all__ = [
    "AsyncioClock",
    "CallExistsError",
    "Clock",
    "Command",
    "CommandResult",
    "CompileError",
    "CompiledFlow",
    "Engine",
    "Event",
    "FakeHttp",
    "FakeTelephony",
    "FlowSet",
    "HttpStub",
    "RestoreError",
    "Runtime",
    "Session",
    "Simulator",
    "Telephony",
    "TraceEntry",
    "UnknownFlowError",
    "VirtualClock",
    "command_from_dict",
    "compile_flow",
]
