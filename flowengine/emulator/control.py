"""The emulator's own control API, under ``/_emulator`` (not Daily's; never under ``/v1``).

For a running emulator (``flowengine emulator``) driven from another process: end-to-end
tests and the demo place calls, script far ends, switch faults, read the request log, the
webhooks and the state, and the in-room side polls the events daily-python would deliver
(caller key presses above all). It takes the same ``Bearer`` key as ``/v1`` and is not
written to the request log, so counts of Daily requests stay exact.

========  ==========================  =================================================
method    path                        what
========  ==========================  =================================================
GET       /_emulator/state            rooms, legs and inbound calls
GET       /_emulator/log              the request log (``?endpoint=dialOut/start``)
GET       /_emulator/webhooks         events caused and deliveries made
GET       /_emulator/room-events      in-room events: ``?after=<seq>&wait=<s>&room=``
POST      /_emulator/calls            place a call: ``{to, from, sipHeaders, caller}``
POST      /_emulator/numbers          script callees: ``{numbers: {address: callee}}``
POST      /_emulator/faults           replace the faults: ``{rest_429: 0.1, ...}``
========  ==========================  =================================================
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flowengine.emulator.farends import Caller, FarEnds, ScriptError
from flowengine.emulator.faults import Faults
from flowengine.emulator.rest import check_auth, error

if TYPE_CHECKING:
    from flowengine.emulator.emulator import Emulator

MAX_WAIT = 30.0

Handler = Callable[[Request], Awaitable[Response]]


def control_routes(emu: Emulator) -> list[Route]:
    """The ``/_emulator`` routes of ``emu``."""

    def guarded(handler: Handler) -> Handler:
        async def handle(request: Request) -> Response:
            refused = check_auth(request, emu.api_key)
            if refused is not None:
                return error(refused.status, refused.error, refused.info)
            try:
                return await handler(request)
            except (ScriptError, ValueError, TypeError, KeyError) as exc:
                return error(400, "invalid-request-error", str(exc))

        return handle

    async def state(request: Request) -> Response:
        return JSONResponse(emu.state.to_json())

    async def log(request: Request) -> Response:
        endpoint = request.query_params.get("endpoint")
        return JSONResponse([e.to_json() for e in emu.log.entries(endpoint)])

    async def webhooks(request: Request) -> Response:
        sender = emu.webhooks
        events = [
            {"id": e.id, "type": e.type, "time": e.time, "fault": asdict(e.fault)}
            for e in sender.events
        ]
        deliveries = [
            {"id": d.event_id, "type": d.type, "time": d.time, "status": d.status}
            | {"error": d.error, "attempt": d.attempt, "copy": d.copy, "url": d.url}
            for d in sender.deliveries
        ]
        return JSONResponse({"state": sender.state, "events": events, "deliveries": deliveries})

    async def room_events(request: Request) -> Response:
        after = int(request.query_params.get("after", "0"))
        wait = min(MAX_WAIT, max(0.0, float(request.query_params.get("wait", "0"))))
        room = request.query_params.get("room")
        events = await emu.inroom.wait(after, wait, room)
        return JSONResponse([e.to_json() for e in events])

    async def calls(request: Request) -> Response:
        body = await _object(request)
        caller = body.get("caller") or {}
        headers = body.get("sipHeaders") or {}
        if not isinstance(caller, dict) or not isinstance(headers, dict):
            raise ValueError("caller and sipHeaders must be objects")
        call = await emu.place_call(
            str(body["to"]),
            None if body.get("from") is None else str(body["from"]),
            caller=Caller.from_dict(caller),
            sip_headers={str(k): str(v) for k, v in headers.items()},
        )
        return JSONResponse(call.to_json())

    async def numbers(request: Request) -> Response:
        body = await _object(request)
        scripted = FarEnds.from_dict(body)
        emu.far_ends.numbers.update(scripted.numbers)
        if "default" in body:
            emu.far_ends.default = scripted.default
        return JSONResponse({"numbers": sorted(emu.far_ends.numbers)})

    async def faults(request: Request) -> Response:
        body = await _object(request)
        if isinstance(body.get("endpoints"), list):
            body["endpoints"] = frozenset(body["endpoints"])
        emu.faults = Faults(**body)
        return JSONResponse({"ok": "true"})

    table: list[tuple[str, str, Handler]] = [
        ("/_emulator/state", "GET", state),
        ("/_emulator/log", "GET", log),
        ("/_emulator/webhooks", "GET", webhooks),
        ("/_emulator/room-events", "GET", room_events),
        ("/_emulator/calls", "POST", calls),
        ("/_emulator/numbers", "POST", numbers),
        ("/_emulator/faults", "POST", faults),
    ]
    return [Route(path, guarded(h), methods=[m]) for path, m, h in table]


async def _object(request: Request) -> dict[str, Any]:
    data = await request.json()
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data
