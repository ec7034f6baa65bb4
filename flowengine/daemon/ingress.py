"""The ingress: Daily's webhooks and pinless dial-in requests, verified, journaled, routed.

Where it sits: the daemon's front door for Daily (``POST /daily/webhooks`` and ``POST
/daily/dialin``), over ``calls.Calls`` and ``persistence.Persistence``. A webhook is answered
in this order:

1. a body over the size limit: 413; Daily's test request (``{"test": "test"}``): 200;
2. a forged (bad or missing signature) or replayed (signed outside the window) request: 401;
3. a body that is not an envelope (not JSON, ``type``/``id``/``payload`` missing): 400;
4. an authentic event for no live call: 200 and a log line (refusing an authentic event only
   makes Daily resend it, and three refusals stop all deliveries). With several daemons, an
   event whose ``room`` is another daemon's live call (a call's id is its room's name) is for
   that call: it is journaled here, its owner is woken, and a call nobody runs is taken over;
5. otherwise the event is journaled in its call's inbox (``store.accept``, deduplicated by the
   envelope's ``id`` in the same transaction) and only then answered 200, and posted to the
   engine; a store that cannot write answers 503, so Daily knows it was not taken.

While the daemon shuts down, both endpoints answer 503.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse

from ..daily import (
    PinlessTest,
    SignatureVerifier,
    WebhookError,
    is_test_request,
    parse_event,
    parse_pinless,
)
from ..runtime.events import from_webhook
from ..store import StoreError
from .calls import Calls, CallStartError
from .metrics import Metrics
from .persistence import Persistence

log = structlog.get_logger("flowengine.daemon.ingress")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it grows past ``limit`` bytes (reading stops there)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class Ingress:
    """The two endpoints Daily calls."""

    def __init__(
        self,
        *,
        calls: Calls,
        persistence: Persistence,
        webhooks: SignatureVerifier,
        pinless: SignatureVerifier,
        metrics: Metrics,
        accepting: Callable[[], bool],
        take_over: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        self.calls = calls
        self.persistence = persistence
        self.webhooks = webhooks
        self.pinless = pinless
        self.metrics = metrics
        self.accepting = accepting
        self.take_over = take_over
        """With several daemons: runs a call another daemon ran, if nobody runs it now."""

    def _reject(self, reason: str, status: int, message: str) -> JSONResponse:
        self.metrics.webhook_rejects.labels(reason).inc()
        log.warning("request refused", reason=reason, status=status, detail=message)
        return _error(status, message)

    async def webhook(self, request: Request) -> JSONResponse:
        """``POST /daily/webhooks``."""
        if not self.accepting():
            return _error(503, "shutting down")
        body = await read_body(request, self.webhooks.max_body_bytes)
        if body is None:
            return self._reject("too_large", 413, "the body is too large")
        if is_test_request(body):
            return JSONResponse({"ok": True})
        try:
            self.webhooks.verify(request.headers.items(), body)
            parsed = parse_event(body)
        except WebhookError as exc:
            return self._reject(type(exc).__name__, exc.http_status, str(exc))
        event = from_webhook({"type": parsed.type, "payload": dict(parsed.payload)})
        call_id = self.calls.find(parsed.room, parsed.session_id)
        session = self.calls.engine.get(call_id) if call_id else None
        remote = False
        if session is None and parsed.room and self.take_over is not None:
            try:
                call_id = await self.calls.stored(parsed.room)
            except StoreError as exc:
                log.error("webhook not routed", room=parsed.room, reason=str(exc))
                return _error(503, "the call could not be looked up; send it again")
            remote = call_id is not None
        if call_id is None or (not remote and (session is None or session.ended)):
            self.metrics.webhook_rejects.labels("unrouted").inc()
            log.info(
                "webhook for no live call ignored",
                type=parsed.type,
                id=parsed.id,
                room=parsed.room,
                call_id=call_id,
            )
            return JSONResponse({"ok": True, "ignored": "no live call"})
        try:
            fresh = await self.persistence.accept(call_id, event, webhook_id=parsed.id)
        except StoreError as exc:
            log.error("webhook not journaled", call_id=call_id, reason=str(exc))
            return _error(503, "the event could not be stored; send it again")
        if not fresh:
            return JSONResponse({"ok": True, "duplicate": True})
        self.metrics.webhooks_accepted.inc()
        if remote and self.take_over is not None:
            # Journaled: its owner was woken; a call nobody runs is taken here.
            self.persistence.spawn(self._take_over(call_id))
        return JSONResponse({"ok": True})

    async def _take_over(self, call_id: str) -> None:
        assert self.take_over is not None
        await self.take_over(call_id)

    async def dialin(self, request: Request) -> JSONResponse:
        """``POST /daily/dialin``: a pinless call waits on hold; start its flow."""
        if not self.accepting():
            return _error(503, "shutting down")
        body = await read_body(request, self.pinless.max_body_bytes)
        if body is None:
            return self._reject("too_large", 413, "the body is too large")
        if is_test_request(body):
            return JSONResponse({"ok": True})
        try:
            self.pinless.verify(request.headers.items(), body)
            pinless = parse_pinless(body)
        except WebhookError as exc:
            return self._reject(type(exc).__name__, exc.http_status, str(exc))
        if isinstance(pinless, PinlessTest):
            return JSONResponse({"ok": True})
        try:
            session = await self.calls.start_inbound(pinless)
        except CallStartError as exc:
            log.warning("dial-in refused", to=pinless.to, reason=exc.message)
            return _error(exc.status, exc.message)
        except StoreError as exc:
            log.error("dial-in not stored", to=pinless.to, reason=str(exc))
            return _error(503, "the call could not be stored")
        return JSONResponse({"ok": True, "call_id": session.call_id, "flow": session.flow})
