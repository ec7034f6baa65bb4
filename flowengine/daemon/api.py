"""The operator's API: start calls, read them, health, readiness and metrics.

Where it sits: routes of the daemon's app beside the ingress, over ``calls.Calls``. Every
``/v1`` request needs ``Authorization: Bearer <FLOWENGINE_API_TOKEN>`` (compared in constant
time). Bad input is a 4xx with ``{"error": ...}`` naming what is wrong, never a 500.

| Request | Answer |
|---|---|
| ``POST /v1/calls`` ``{flow, to, from?, vars?}`` | 201 ``{id, flow, version, state}`` |
| ``GET /v1/calls/{id}`` | the call: state, vars, legs, outcome |
| ``GET /v1/calls/{id}/trace`` | its trace, one entry per event |
| ``POST /v1/calls/{id}/events`` ``{name, payload?, id?}`` | 202: an in-room event (a key press) |
| ``GET /healthz``, ``GET /readyz``, ``GET /metrics`` | liveness, readiness, Prometheus text |
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..addresses import is_e164, is_sip
from ..daily import Secret
from ..runtime.events import Event, normalise_name
from ..runtime.session import RestoreError, Session
from ..store import CallRecord, StoreError
from .calls import Calls, CallStartError
from .metrics import CONTENT_TYPE, Metrics
from .persistence import Persistence

Handler = Callable[[Request], Awaitable[Response]]
MAX_BODY = 64 * 1024
IN_ROOM_EVENTS = frozenset({"dtmf", "app-message", "hangup", "fault"})
"""Events an in-room agent may post; Daily's own events come through the ingress."""
MAX_EVENT_ID = 128
"""The longest idempotency ``id`` an in-room event may carry."""


class BadRequestError(Exception):
    """A 4xx answer with a message."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.message = message
        self.status = status
        super().__init__(message)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_object(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise BadRequestError("the body is too large", 413)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequestError("the body must be a JSON object")
    return data


def describe(session: Session) -> dict[str, Any]:
    """A call as the API shows it."""
    return {
        "id": session.call_id,
        "flow": session.root_flow,
        "version": session.flow_hash[:12],
        "state": session.state,
        "ended": session.ended,
        "outcome": session.outcome,
        "vars": session.vars,
        "call": session.call,
        "legs": session.legs,
        "started_at": session.started_at,
    }


class Api:
    """The ``/v1`` routes and the operational endpoints."""

    def __init__(
        self,
        *,
        calls: Calls,
        persistence: Persistence,
        token: Secret,
        metrics: Metrics,
        ready: Callable[[], bool],
        take_over: Callable[[str], Awaitable[object]] | None = None,
        load_versions: Callable[[CallRecord], Awaitable[object]] | None = None,
    ) -> None:
        self.take_over = take_over
        self.load_versions = load_versions
        """Fetches the flow versions a stored call is pinned to, when this daemon lacks them."""
        """With several daemons: runs a call another daemon ran, if nobody runs it now."""
        self.calls = calls
        self.persistence = persistence
        self._token = ("Bearer " + token.reveal()).encode()
        self.metrics = metrics
        self.ready = ready

    def authorised(self, handler: Handler) -> Handler:
        """Wrap a handler: 401 without the bearer token; ``BadRequestError`` -> its 4xx."""

        async def wrapped(request: Request) -> Response:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, self._token):
                return JSONResponse(
                    {"error": "missing or wrong bearer token"},
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
            try:
                return await handler(request)
            except BadRequestError as exc:
                return _error(exc.status, exc.message)

        return wrapped

    async def start_call(self, request: Request) -> Response:
        """``POST /v1/calls``."""
        data = await _json_object(request)
        unknown = sorted(set(data) - {"flow", "to", "from", "vars"})
        if unknown:
            raise BadRequestError(f"unknown field {unknown[0]!r} (use flow, to, from, vars)")
        flow, to, from_ = data.get("flow"), data.get("to"), data.get("from")
        variables = data.get("vars", {})
        if not isinstance(flow, str) or not flow:
            raise BadRequestError("'flow' is required: the name of a loaded flow")
        if not isinstance(to, str) or not (is_e164(to) or is_sip(to)):
            raise BadRequestError("'to' is required: an E.164 number or a sip: URI")
        if from_ is not None and not isinstance(from_, str):
            raise BadRequestError("'from' must be a string")
        if not isinstance(variables, dict):
            raise BadRequestError("'vars' must be a JSON object")
        try:
            session = await self.calls.start_outbound(flow, to, from_=from_, variables=variables)
        except CallStartError as exc:
            raise BadRequestError(exc.message, exc.status) from None
        except StoreError:
            return _error(503, "the call could not be stored")
        body = describe(session)
        return JSONResponse(
            {k: body[k] for k in ("id", "flow", "version", "state")}, status_code=201
        )

    async def _session(self, request: Request) -> Session:
        call_id = request.path_params["call_id"]
        session = self.calls.engine.get(call_id)
        if session is not None:
            return session
        record = await self.persistence.store.load_call(call_id)
        if record is not None:
            if self.load_versions is not None:
                await self.load_versions(record)  # another daemon's, or an old version
            try:
                return Session.from_json(record.snapshot, self.calls.catalog.flows)
            except RestoreError:
                pass
        raise BadRequestError(f"no call {call_id!r}", 404)

    async def get_call(self, request: Request) -> Response:
        """``GET /v1/calls/{call_id}``."""
        return JSONResponse(describe(await self._session(request)))

    async def get_trace(self, request: Request) -> Response:
        """``GET /v1/calls/{call_id}/trace``."""
        session = await self._session(request)
        return JSONResponse(
            {"id": session.call_id, "trace": [entry.to_dict() for entry in session.trace]}
        )

    async def post_event(self, request: Request) -> Response:
        """``POST /v1/calls/{call_id}/events``: what an in-room agent hears (``dtmf``...)."""
        session = await self._session(request)
        data = await _json_object(request)
        name, payload = data.get("name"), data.get("payload", {})
        event_id = data.get("id")
        if not isinstance(name, str) or normalise_name(name) not in IN_ROOM_EVENTS:
            raise BadRequestError(f"'name' must be one of {', '.join(sorted(IN_ROOM_EVENTS))}")
        if not isinstance(payload, dict):
            raise BadRequestError("'payload' must be a JSON object")
        if event_id is not None and (
            not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID
        ):
            raise BadRequestError(f"'id' must be a string of 1 to {MAX_EVENT_ID} characters")
        local = self.calls.engine.get(session.call_id) is not None
        if session.ended or (not local and self.take_over is None):
            raise BadRequestError(f"call {session.call_id!r} has ended", 409)
        # An agent that lost the answer posts the event again under the same id: deduplicated
        # like a webhook's envelope id, so a key press is never applied twice.
        dedupe = None if event_id is None else f"in-room:{session.call_id}:{event_id}"
        try:
            fresh = await self.persistence.accept(
                session.call_id, Event(normalise_name(name), payload), webhook_id=dedupe
            )
        except StoreError:
            return _error(503, "the event could not be stored")
        if not fresh:
            return JSONResponse({"ok": True, "duplicate": True}, status_code=202)
        if not local and self.take_over is not None:
            # Another daemon's call: its owner was woken; a call nobody runs is taken here.
            await self.take_over(session.call_id)
        return JSONResponse({"ok": True}, status_code=202)

    async def healthz(self, request: Request) -> Response:
        """``GET /healthz``: the process answers."""
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """``GET /readyz``: calls restored, flows loaded, not shutting down."""
        if not self.ready():
            return JSONResponse({"status": "not ready"}, status_code=503)
        return JSONResponse({"status": "ready", "flows": self.calls.catalog.flows.names})

    async def metrics_text(self, request: Request) -> Response:
        """``GET /metrics``."""
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)
