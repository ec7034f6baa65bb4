"""The demo's stand-in for the in-room participant: in-room events from the emulator to the daemon.

Daily has no DTMF webhook: a caller's key presses exist only inside the call's room, where the
in-room participant (docs/participant.md, built on daily-python) hears them and hands them to
the daemon. Where daily-python cannot join a room (a laptop, CI), the local emulator publishes
what a participant would see on its control API, ``GET /_emulator/room-events`` (a long poll),
and ``RoomBridge`` carries the events the daemon needs from there to the daemon's
``POST /v1/calls/{room}/events``, with the daemon's API token, as the participant would. Both
hops are plain HTTP over loopback.

What it forwards: ``dtmf-event`` (as ``dtmf``, with the key and the caller's session id) and
``app-message``. The daemon learns everything else from Daily's webhooks, and it reports a
prompt finished at once (it has no audio), so there is no play-finished notice to carry.

Delivery: events of one room are posted in order, one at a time (a room's keys must not
overtake each other); rooms do not wait for one another. Each event carries an ``id`` made
from the emulator's sequence number, so posting it again after a lost answer (the daemon died
between journaling it and answering) is deduplicated by the daemon. While the daemon is
unreachable or answers 5xx, an event is retried with backoff for up to ``retry_for`` seconds;
404 (no such call, e.g. a team room a caller was transferred into) and 409 (the call ended)
drop it.

Several daemons: given several daemon URLs (daemons sharing one store behind a load
balancer), each attempt goes to one of ``daemon_urls``, drawn from ``seed``, the event and the
attempt; a retry may go to another daemon. ``daemon_urls`` may be changed while it runs (the
stack leaves out a daemon it killed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from ..emulator.webhooks import choose

log = structlog.get_logger("flowengine.harness.bridge")

FORWARDED = {"dtmf-event": "dtmf", "app-message": "app-message"}
"""In-room event names (daily-python's) -> the names the daemon's event API takes."""
POLL_WAIT = 2.0
"""Seconds one long poll may wait for the next event (the emulator allows up to 30). Short,
because the emulator's handler does not notice a poller that left: a server stopping waits
for the poll in flight."""
RETRY_FOR = 60.0
"""Seconds an event is retried while the daemon cannot take it, then dropped."""


@dataclass(frozen=True, slots=True)
class Forwarded:
    """One in-room event and what became of it."""

    seq: int
    room: str
    name: str
    payload: dict[str, Any]
    status: int | None
    """The daemon's answer: 202 taken, 404 no such call, 409 ended; None: gave up."""
    attempts: int
    daemon: str | None = None
    """The daemon the last attempt went to."""

    @property
    def taken(self) -> bool:
        """The daemon journaled the event (or already had it)."""
        return self.status == 202


def to_daemon(name: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The daemon's ``(name, payload)`` for an in-room event, or None if it is not forwarded."""
    target = FORWARDED.get(name)
    if target is None:
        return None
    if target == "dtmf":
        payload: dict[str, Any] = {"tone": str(data.get("tone", ""))}
        if data.get("sessionId"):
            payload["session_id"] = str(data["sessionId"])
        return target, payload
    return target, dict(data)


class RoomBridge:
    """Long-polls the emulator's room events and posts them to the daemon, room by room.

    ``daemon_url`` is one daemon's root URL, or several (each attempt goes to one of them).
    """

    def __init__(
        self,
        emulator_url: str,
        emulator_key: str,
        daemon_url: str | Sequence[str],
        daemon_token: str,
        *,
        poll_wait: float = POLL_WAIT,
        retry_for: float = RETRY_FOR,
        after: int = 0,
        seed: int = 0,
    ) -> None:
        self.emulator_url = emulator_url.rstrip("/")
        urls = [daemon_url] if isinstance(daemon_url, str) else list(daemon_url)
        if not urls:
            raise ValueError("the bridge needs at least one daemon URL")
        self.daemon_urls = [url.rstrip("/") for url in urls]
        """Where events are posted: one of these per attempt."""
        self.seed = seed
        self.poll_wait = poll_wait
        self.retry_for = retry_for
        self.after = after
        """The last room event seen (the long poll asks for later ones)."""
        self.forwarded: list[Forwarded] = []
        # trust_env off: loopback traffic must never be sent through a proxy from the environment.
        self._emulator = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {emulator_key}"},
            timeout=poll_wait + 10.0,
            trust_env=False,
        )
        self._daemon = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {daemon_token}"}, timeout=10.0, trust_env=False
        )
        self._rooms: dict[str, asyncio.Queue[tuple[int, str, dict[str, Any]]]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._poller: asyncio.Task[None] | None = None

    @property
    def daemon_url(self) -> str:
        """The first daemon's URL (the only one, with one daemon)."""
        return self.daemon_urls[0]

    def start(self) -> None:
        """Start polling on the running loop."""
        if self._poller is None:
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def idle(self) -> None:
        """Wait until every event received so far has been posted (or dropped)."""
        for queue in list(self._rooms.values()):
            await queue.join()

    async def aclose(self) -> None:
        """Stop polling and posting; events not yet posted are left."""
        tasks = [t for t in (self._poller, *self._workers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._poller = None
        self._workers.clear()
        await self._emulator.aclose()
        await self._daemon.aclose()

    async def __aenter__(self) -> RoomBridge:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the emulator side -------------------------------------------------------------------

    async def _poll(self) -> None:
        url = f"{self.emulator_url}/_emulator/room-events"
        while True:
            try:
                answer = await self._emulator.get(
                    url, params={"after": self.after, "wait": self.poll_wait}
                )
                answer.raise_for_status()
                events = answer.json()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("room events not read; trying again", reason=str(exc))
                await asyncio.sleep(0.5)
                continue
            for event in events:
                self.after = max(self.after, int(event["seq"]))
                mapped = to_daemon(str(event["name"]), dict(event.get("data") or {}))
                if mapped is not None:
                    self._dispatch(str(event["room"]), int(event["seq"]), *mapped)

    def _dispatch(self, room: str, seq: int, name: str, payload: dict[str, Any]) -> None:
        queue = self._rooms.get(room)
        if queue is None:
            queue = self._rooms[room] = asyncio.Queue()
            loop = asyncio.get_running_loop()
            self._workers[room] = loop.create_task(self._work(room, queue))
        queue.put_nowait((seq, name, payload))

    # -- the daemon side ---------------------------------------------------------------------

    async def _work(self, room: str, queue: asyncio.Queue[tuple[int, str, dict[str, Any]]]) -> None:
        while True:
            seq, name, payload = await queue.get()
            try:
                self.forwarded.append(await self._post(room, seq, name, payload))
            finally:
                queue.task_done()

    async def _post(self, room: str, seq: int, name: str, payload: dict[str, Any]) -> Forwarded:
        path = f"/v1/calls/{room}/events"
        body = {"name": name, "payload": payload, "id": f"room-event-{seq}"}
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.retry_for
        attempts, wait = 0, 0.05
        while True:
            attempts += 1
            status: int | None = None
            daemon = choose(self.daemon_urls, self.seed, f"{seq}/{attempts}")
            try:
                status = (await self._daemon.post(daemon + path, json=body)).status_code
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                reason = f"HTTP {status}"
                if status < 500:
                    if status not in (202, 404, 409):
                        log.warning("in-room event refused", room=room, name=name, status=status)
                    return Forwarded(seq, room, name, payload, status, attempts, daemon)
            # The daemon is down or restarting (or its store is busy): the participant would
            # keep the event and try again, as Daily does with a webhook.
            if loop.time() + wait > give_up:
                log.warning("in-room event dropped", room=room, name=name, reason=reason)
                return Forwarded(seq, room, name, payload, None, attempts, daemon)
            await asyncio.sleep(wait)
            wait = min(1.0, wait * 2)
