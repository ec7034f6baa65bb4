"""Sending what Daily sends: signed webhooks and signed pinless dial-in requests.

A ``Target`` is a URL, optionally served by an in-process ASGI app (``httpx.ASGITransport``),
so tests need no sockets. There may be several targets (daemons behind a load balancer): each
delivery attempt goes to one of them, drawn by ``choose`` from the emulator's seed and what is
sent (the event id and the attempt, or the call id), so a run repeats whatever order the
deliveries go out in, and a retry may land on another target.

Webhooks carry Daily's envelope ``{version, type, id, payload, event_ts}`` and
``X-Webhook-Signature`` / ``X-Webhook-Timestamp`` made by
``flowengine.daily.webhooks.sign_webhook``; pinless requests carry ``{To, From, callId,
callDomain, sipHeaders}`` signed by ``sign_pinless``. ``event_ts`` and the timestamp header are
the time of sending; the payload's ``timestamp`` is when the event happened.

Delivery follows Daily's webhook retry types: ``circuit-breaker`` (the default: a failed
delivery is not retried, and three failures in a row mark the webhook FAILED and stop every
later delivery until ``reactivate()``) or ``exponential`` (each message is tried up to five
times with growing waits, then dropped). Anything but a 2xx, an exception or no answer within
``timeout`` is a failure. Webhook faults (drop, duplicate, delay, reorder) apply before
sending; ``events`` keeps every event in the order it was caused, ``deliveries`` every POST.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

import httpx
from starlette.types import ASGIApp

from flowengine.daily.webhooks import sign_pinless, sign_webhook
from flowengine.emulator.faults import Dice, WebhookFault
from flowengine.emulator.timeline import Outbox, Timeline

RetryType = Literal["circuit-breaker", "exponential"]
T = TypeVar("T")
CIRCUIT_BREAKER_FAILURES = 3
EXPONENTIAL_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Target:
    """Where to POST: a URL, sent over the network or into ``app`` in-process."""

    url: str
    app: ASGIApp | None = None


def targets_of(
    urls: str | Sequence[str] | None, app: ASGIApp | None, default: str
) -> tuple[Target, ...]:
    """The targets for one URL or several, each served by ``app`` when given.

    With ``app`` and no URL, the one target is ``default`` (only its path matters); with
    neither, there are none (nothing is sent)."""
    listed = [urls] if isinstance(urls, str) else list(urls or ())
    if not listed and app is not None:
        listed = [default]
    return tuple(Target(url, app) for url in listed)


def choose(targets: Sequence[T], seed: int, key: str) -> T:
    """The target of one delivery attempt: a draw seeded by ``seed`` and ``key``.

    The same seed and key always give the same target, whatever else was sent before; keys
    that differ (another event, another attempt) draw afresh. With one target, that one.

    Raises:
        ValueError: ``targets`` is empty.
    """
    if not targets:
        raise ValueError("no target to choose from")
    if len(targets) == 1:
        return targets[0]
    digest = hashlib.blake2b(f"{seed}/{key}".encode(), digest_size=8).digest()
    return targets[int.from_bytes(digest, "big") % len(targets)]


@dataclass(slots=True)
class SentEvent:
    """One webhook event as caused, with what the faults did to it."""

    id: str
    type: str
    payload: dict[str, Any]
    time: float
    fault: WebhookFault = field(default_factory=WebhookFault)
    filtered: bool = False
    """Not sent: the webhook does not subscribe to this type."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST of a webhook (or pinless request) and its answer."""

    event_id: str
    type: str
    time: float
    body: bytes
    headers: dict[str, str]
    status: int | None
    error: str | None = None
    attempt: int = 1
    copy: bool = False
    """A duplicate made by the ``webhook_duplicate`` fault."""
    suppressed: bool = False
    """Not sent: the webhook was FAILED by the circuit breaker."""
    url: str | None = None
    """The target it was POSTed to (None when not sent)."""

    @property
    def ok(self) -> bool:
        """Answered 2xx."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def envelope(self) -> dict[str, Any]:
        """The JSON body."""
        data: dict[str, Any] = json.loads(self.body)
        return data


class Poster:
    """POSTs JSON to targets, one ``httpx.AsyncClient`` per in-process app or for the network."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        # (app, client) pairs: apps compared by identity, and kept alive so none is mistaken
        # for a later one; None is the network.
        self._clients: list[tuple[ASGIApp | None, httpx.AsyncClient]] = []

    def _client(self, target: Target) -> httpx.AsyncClient:
        for app, client in self._clients:
            if app is target.app:
                return client
        transport = httpx.ASGITransport(app=target.app) if target.app is not None else None
        client = httpx.AsyncClient(transport=transport, timeout=self.timeout)
        self._clients.append((target.app, client))
        return client

    async def post(
        self, target: Target, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        """(status, None) or (None, why there was no answer)."""
        try:
            # asyncio.timeout too: httpx does not time out an in-process ASGI app.
            async with asyncio.timeout(self.timeout):
                response = await self._client(target).post(
                    target.url, content=body, headers=headers
                )
        except TimeoutError:
            return None, f"no answer within {self.timeout:g}s"
        except Exception as exc:  # any failure of the receiver is a failed delivery
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, None

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        for _, client in self._clients:
            await client.aclose()
        self._clients.clear()


class WebhookSender:
    """Daily's webhook: its targets, one secret, Daily's retry rules, and the faults.

    Each delivery attempt goes to one of ``targets`` (``choose``, keyed by the event id, the
    attempt and whether it is a fault's copy); with none, events are recorded, not sent.
    """

    def __init__(
        self,
        *,
        targets: Sequence[Target] = (),
        secret: str,
        timeline: Timeline,
        outbox: Outbox,
        poster: Poster,
        dice: Callable[[], Dice],
        event_types: frozenset[str] | None = None,
        retry_type: RetryType = "circuit-breaker",
        retry_base: float = 2.0,
        basic_auth: str | None = None,
        seed: int = 0,
    ) -> None:
        self.targets = tuple(targets)
        self.seed = seed
        self.secret = secret
        self.event_types = event_types
        self.retry_type = retry_type
        self.retry_base = retry_base
        self.basic_auth = basic_auth
        self.state: Literal["ACTIVE", "FAILED"] = "ACTIVE"
        self.failed_count = 0
        self.events: list[SentEvent] = []
        self.deliveries: list[Delivery] = []
        self._timeline = timeline
        self._outbox = outbox
        self._poster = poster
        self._dice = dice
        self._held: SentEvent | None = None
        self._seq = 0

    @property
    def clock_now(self) -> float:
        """The emulator's time."""
        return self._timeline.clock.now()

    def emit(self, type_: str, payload: dict[str, Any], key: str) -> SentEvent:
        """Cause one webhook event; ``key`` (a session id or room) goes into its id."""
        self._seq += 1
        event_id = f"{self._seq}-{type_.replace('.', '-')}-{key}"
        event = SentEvent(event_id, type_, payload, self.clock_now)
        self.events.append(event)
        if self.event_types is not None and type_ not in self.event_types:
            event.filtered = True
            return event
        event.fault = fault = self._dice().webhook()
        if not self.targets or fault.drop:
            return event
        self._timeline.later(fault.delay, lambda: self._release(event, copy=False))
        if fault.duplicate:
            gap = fault.delay + self._dice().faults.duplicate_gap
            self._timeline.later(gap, lambda: self._release(event, copy=True))
        return event

    def reactivate(self) -> None:
        """Bring a FAILED webhook back (Daily: ``POST /webhooks/:uuid``)."""
        self.state, self.failed_count = "ACTIVE", 0

    def delivered(self, type_: str | None = None) -> list[dict[str, Any]]:
        """Envelopes answered 2xx, in arrival order (optionally of one type)."""
        return [d.envelope for d in self.deliveries if d.ok and (type_ is None or d.type == type_)]

    def types(self) -> list[str]:
        """The types of the events caused, in order (faults and filters aside)."""
        return [e.type for e in self.events]

    def _release(self, event: SentEvent, *, copy: bool) -> None:
        held, self._held = self._held, None
        if event.fault.reorder and not copy and held is None:
            # Held until the next event goes out, so the two arrive swapped; bounded by the
            # window in case no other event follows.
            self._held = event
            window = self._dice().faults.reorder_window
            self._timeline.later(window, lambda: self._flush(event))
            return
        self._queue(event, copy, 1)
        if held is not None:
            self._queue(held, False, 1)

    def _flush(self, event: SentEvent) -> None:
        if self._held is event:
            self._held = None
            self._queue(event, False, 1)

    def _queue(self, event: SentEvent, copy: bool, attempt: int) -> None:
        async def job() -> None:
            await self._send(event, copy, attempt)

        # Keyed by room: with several senders (``Outbox(workers=...)``) a room's events keep
        # their order while other rooms' go out beside them.
        room = event.payload.get("room")
        self._outbox.put(job, key=room if isinstance(room, str) else None)

    async def _send(self, event: SentEvent, copy: bool, attempt: int) -> None:
        if not self.targets:  # the targets were taken away after the event was queued
            return
        target = choose(self.targets, self.seed, f"{event.id}/{attempt}/{int(copy)}")
        now = self.clock_now
        body = json.dumps(
            {
                "version": "1.0.0",
                "type": event.type,
                "id": event.id,
                "payload": event.payload,
                "event_ts": now,
            },
            separators=(",", ":"),
        ).encode()
        headers = {"Content-Type": "application/json"}
        headers.update(sign_webhook(self.secret, int(now), body))
        if self.basic_auth is not None:
            headers["Authorization"] = f"Basic {self.basic_auth}"
        if self.state == "FAILED":
            suppressed = Delivery(
                event.id, event.type, now, body, headers, None, "webhook FAILED", attempt, copy
            )
            self.deliveries.append(replace(suppressed, suppressed=True))
            return
        status, error = await self._poster.post(target, body, headers)
        delivery = Delivery(
            event.id, event.type, now, body, headers, status, error, attempt, copy, url=target.url
        )
        self.deliveries.append(delivery)
        if delivery.ok:
            self.failed_count = 0
            return
        self.failed_count += 1
        if self.retry_type == "circuit-breaker":
            if self.failed_count >= CIRCUIT_BREAKER_FAILURES:
                self.state = "FAILED"
        elif attempt < EXPONENTIAL_ATTEMPTS:
            wait = min(900.0, self.retry_base * 2 ** (attempt - 1))
            self._timeline.later(wait, lambda: self._queue(event, copy, attempt + 1))


async def post_pinless(
    poster: Poster, target: Target, secret: str, now: float, request: dict[str, Any]
) -> Delivery:
    """POST a signed pinless dial-in request, as Daily does to ``room_creation_api``."""
    body = json.dumps(request, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json"}
    headers.update(sign_pinless(secret, int(now), body))
    status, error = await poster.post(target, body, headers)
    return Delivery(
        str(request.get("callId")), "pinless", now, body, headers, status, error, url=target.url
    )
