"""A local Daily: the REST API, signed webhooks, pinless dial-in, scripted far ends, faults.

For tests (in-process, no sockets) and demos (served with uvicorn on loopback). It sits on
top, beside the daemon: it reuses ``flowengine.daily``'s request models to check what it is
sent and its signing functions for what it sends, and the runtime's ``Clock`` port for time.
Modules: ``emulator`` (``Emulator``), ``rest`` (``/v1``), ``bodies`` (checking them),
``control`` (``/_emulator``), ``network`` (rooms and events), ``dialout``, ``transfers``,
``dialin``, ``farends`` (scripts), ``faults`` (faults and rate limits), ``webhooks`` (the
sender), ``inroom`` (what a participant sees), ``log`` (the request log), ``state``,
``timeline``, ``server`` (uvicorn, ``main``).
docs/emulator.md describes it all.
"""

from __future__ import annotations

from flowengine.emulator.bodies import ApiError
from flowengine.emulator.dialin import NoDialInTargetError
from flowengine.emulator.emulator import (
    BASE_URL,
    DEFAULT_API_KEY,
    DEFAULT_PINLESS_SECRET,
    DEFAULT_WEBHOOK_SECRET,
    DIALIN_URL,
    INGRESS_URL,
    Emulator,
)
from flowengine.emulator.farends import Callee, Caller, FarEnds, Press, RemoteIvr, ScriptError
from flowengine.emulator.faults import NO_FAULTS, Faults, RateLimits, Window
from flowengine.emulator.inroom import InRoomBus, RoomEvent, to_event_handler
from flowengine.emulator.log import LogEntry, RequestLog
from flowengine.emulator.network import Timing
from flowengine.emulator.server import EmulatorServer, main, run
from flowengine.emulator.state import InboundCall, Leg, Room, State
from flowengine.emulator.webhooks import Delivery, SentEvent, Target

__all__ = [
    "BASE_URL",
    "DEFAULT_API_KEY",
    "DEFAULT_PINLESS_SECRET",
    "DEFAULT_WEBHOOK_SECRET",
    "DIALIN_URL",
    "INGRESS_URL",
    "NO_FAULTS",
    "ApiError",
    "Callee",
    "Caller",
    "Delivery",
    "Emulator",
    "EmulatorServer",
    "FarEnds",
    "Faults",
    "InRoomBus",
    "InboundCall",
    "Leg",
    "LogEntry",
    "NoDialInTargetError",
    "Press",
    "RateLimits",
    "RemoteIvr",
    "RequestLog",
    "Room",
    "RoomEvent",
    "ScriptError",
    "SentEvent",
    "State",
    "Target",
    "Timing",
    "Window",
    "main",
    "run",
    "to_event_handler",
]
