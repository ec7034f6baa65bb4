"""What a participant inside a room would see: daily-python's events, not webhooks.

Caller key presses exist in Daily only inside the room (daily-python's ``dtmf-event``,
``{sessionId, tone, volume, method}``); there is no DTMF webhook, and the emulator does not
invent one. The in-room side (the participant built on daily-python, or a test standing in
for it) consumes them here: as callbacks (``add_listener``), as a queue per subscriber
(``subscribe``), or over HTTP from the control API (``GET /_emulator/room-events``). The same
bus carries daily-python's telephony and participant events (``dialin-ready``,
``dialin-connected``, ``dialout-answered``, ``participant-joined``...) so an in-room adapter
can be tested against the emulator alone. These events are not subject to webhook faults.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_HISTORY = 10_000


@dataclass(frozen=True, slots=True)
class RoomEvent:
    """One in-room event, named as daily-python names it."""

    seq: int
    time: float
    room: str
    name: str
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The event as JSON."""
        return {
            "seq": self.seq,
            "time": self.time,
            "room": self.room,
            "name": self.name,
            "data": self.data,
        }


Listener = Callable[[RoomEvent], None]


class InRoomBus:
    """Publishes in-room events to listeners, subscriber queues and a bounded history."""

    def __init__(self, max_history: int = DEFAULT_HISTORY) -> None:
        self.history: deque[RoomEvent] = deque(maxlen=max_history)
        self._listeners: list[Listener] = []
        self._queues: list[tuple[str | None, asyncio.Queue[RoomEvent]]] = []
        self._seq = 0
        self._changed: asyncio.Event | None = None

    def publish(self, room: str, name: str, data: dict[str, Any], time: float) -> RoomEvent:
        """Deliver an event to everyone listening (the emulator calls this)."""
        self._seq += 1
        event = RoomEvent(self._seq, time, room, name, data)
        self.history.append(event)
        for listener in list(self._listeners):
            listener(event)
        for wanted, queue in self._queues:
            if wanted is None or wanted == room:
                queue.put_nowait(event)
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        return event

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for each event; returns a function that stops it."""
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    def subscribe(self, room: str | None = None) -> asyncio.Queue[RoomEvent]:
        """A queue receiving every later event (of ``room``, or of all rooms)."""
        queue: asyncio.Queue[RoomEvent] = asyncio.Queue()
        self._queues.append((room, queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[RoomEvent]) -> None:
        """Stop feeding ``queue``."""
        self._queues = [(r, q) for r, q in self._queues if q is not queue]

    def since(
        self, after: int, room: str | None = None, name: str | None = None
    ) -> list[RoomEvent]:
        """Events with ``seq > after`` still in the history."""
        return [
            e
            for e in self.history
            if e.seq > after
            and (room is None or e.room == room)
            and (name is None or e.name == name)
        ]

    def dtmf(self, room: str | None = None) -> str:
        """Every tone the callers pressed, in order, as one string (for assertions)."""
        return "".join(str(e.data.get("tone", "")) for e in self.since(0, room, "dtmf-event"))

    async def wait(self, after: int, within: float, room: str | None = None) -> list[RoomEvent]:
        """Events after ``after``, waiting up to ``within`` seconds for the first one."""
        events = self.since(after, room)
        if events or within <= 0:
            return events
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not events:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            if self._changed is None:
                self._changed = asyncio.Event()
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
            events = self.since(after, room)
        return events


def to_event_handler(handler: object, room: str | None = None) -> Listener:
    """A listener that calls daily-python ``EventHandler`` methods on ``handler``.

    Each event calls ``handler.on_<name>`` (dashes as underscores) with daily-python's
    arguments: ``on_dialin_ready(sip_endpoint)``, ``on_participant_left(participant,
    reason)``, otherwise ``on_<name>(data)``; methods the handler lacks are skipped. So an
    in-room adapter built for daily-python (``emu.inroom.add_listener(to_event_handler(
    bridge, room))``) is tested against the emulator unchanged. Calls happen on the emulator's
    loop, not on a daily-python thread.
    """

    def listen(event: RoomEvent) -> None:
        if room is not None and event.room != room:
            return
        method = getattr(handler, "on_" + event.name.replace("-", "_"), None)
        if not callable(method):
            return
        if event.name == "dialin-ready":
            method(event.data["sipEndpoint"])
        elif event.name == "participant-left":
            method(event.data["participant"], event.data["reason"])
        else:
            method(event.data)

    return listen
