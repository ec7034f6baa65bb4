"""An emulator-backed ``CallClient``: the in-room participant, run against the local emulator.

daily-python joins only real Daily rooms. ``EmulatorCallClient`` has the shape of its
``CallClient`` as the participant uses it (``participant_client.CallClientLike``), over the
local emulator instead: the room's events come from the emulator's control API
(``GET /_emulator/room-events?room=<room>``, a long poll, the events daily-python would
deliver) and the telephony calls go to the emulator's REST API (``POST /v1/rooms/:name/
dialOut/start``, ``dialOut/stop``, ``dialOut/sendDTMF``, ``sipCallTransfer``, ``sipRefer``).
So a ``RoomParticipant`` (or the daemon's room agents) runs unchanged against the emulator:
``RoomParticipant(..., client_factory=emulator_client_factory(url, key),
audio_factory=NullAudio)``.

Like daily-python, it answers on threads of its own: event handlers run on the poller's
thread, ``completion`` callbacks on a worker thread, one call at a time, in order. Nothing
here waits on the asyncio loop. Joining skips the room's earlier events (a participant hears
only what happens after it joins). The meeting token is not checked: the emulator does not
check tokens in its rooms. Ejecting participants is not offered by the emulator and fails.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import structlog

from ..daily.participant_client import ClientFactory
from ..emulator.inroom import RoomEvent, to_event_handler

log = structlog.get_logger("flowengine.harness.room_client")

POLL_WAIT = 1.0
"""Seconds one long poll waits for the room's next event (also how long leaving may take)."""


class EmulatorCallClient:
    """``daily.CallClient``'s methods the participant calls, over the emulator's HTTP APIs."""

    def __init__(
        self,
        event_handler: object,
        *,
        api_url: str,
        api_key: str,
        poll_wait: float = POLL_WAIT,
    ) -> None:
        self.handler = event_handler
        self.api_url = api_url.rstrip("/")
        """Daily's API root on the emulator (``http://127.0.0.1:<port>/v1``)."""
        self.poll_wait = poll_wait
        self.room: str | None = None
        self.user_name = "flowengine"
        # One HTTP client per thread (the worker's, the poller's); loopback traffic never goes
        # through a proxy from the environment.
        options: dict[str, Any] = {
            "headers": {"Authorization": f"Bearer {api_key}"},
            "timeout": poll_wait + 10.0,
            "trust_env": False,
        }
        self._http = httpx.Client(**options)
        self._poll_http = httpx.Client(**options)
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._work, name="emulator-client", daemon=True)
        self._worker.start()
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()
        self._released = False

    # -- daily.pyi's methods -----------------------------------------------------------------

    def join(
        self,
        meeting_url: str,
        meeting_token: str | None = None,
        client_settings: Mapping[str, Any] | None = None,
        completion: Callable[[Mapping[str, Any] | None, str | None], None] | None = None,
    ) -> None:
        """Look the room up, start hearing its events, then complete with the join data."""
        room = meeting_url.rstrip("/").rsplit("/", 1)[-1]

        def join() -> None:
            try:
                self._request("GET", f"{self.api_url}/rooms/{room}")
                after = max((int(e["seq"]) for e in self._events(room, 0, 0.0)), default=0)
            except _RequestError as exc:
                _call(completion, None, f"join: {exc}")
                return
            self.room = room
            self._stop.clear()
            self._poller = threading.Thread(
                target=self._poll, args=(room, after), name="emulator-room-events", daemon=True
            )
            self._poller.start()
            _call(completion, {"participants": self.participants()}, None)

        self._submit(join)

    def leave(self, completion: Callable[[str | None], None] | None = None) -> None:
        """Stop hearing the room's events."""
        self._stop.set()
        self._submit(lambda: _call(completion, None))

    def release(self) -> None:
        """Stop the poller and the worker (blocks until they end, like daily-python's)."""
        if self._released:
            return
        self._released = True
        self._stop.set()
        self._jobs.put(None)
        self._worker.join(self.poll_wait + 15.0)
        if self._poller is not None:
            self._poller.join(self.poll_wait + 15.0)
        self._http.close()
        self._poll_http.close()

    def set_user_name(self, user_name: str) -> None:
        """The name the participant shows in the room."""
        self.user_name = user_name

    def participants(self) -> Mapping[str, Any]:
        """Only the local participant: the emulator does not list a room's participants."""
        return {
            "local": {"id": "emulator-bot", "info": {"isLocal": True, "userName": self.user_name}}
        }

    def update_subscription_profiles(
        self,
        profile_settings: Mapping[str, Any],
        completion: Callable[[str | None], None] | None = None,
    ) -> None:
        """Nothing to subscribe to: the emulator carries no media."""
        self._submit(lambda: _call(completion, None))

    def eject_remote_participants(
        self, ids: list[str], completion: Callable[[str | None], None] | None = None
    ) -> None:
        """Not offered by the emulator: fails."""
        self._submit(lambda: _call(completion, "eject_remote_participants: not in the emulator"))

    def start_dialout(
        self,
        settings: Mapping[str, Any],
        completion: Callable[[str, str | None], None] | None = None,
    ) -> None:
        """``POST /rooms/:name/dialOut/start``; completes with the leg's session id."""

        def start() -> None:
            try:
                data = self._room_request("dialOut/start", settings)
            except _RequestError as exc:
                _call(completion, "", str(exc))
                return
            _call(completion, str(data.get("sessionId", "")), None)

        self._submit(start)

    def stop_dialout(
        self,
        participant_id: str | None = None,
        completion: Callable[[str | None], None] | None = None,
    ) -> None:
        """``POST /rooms/:name/dialOut/stop``."""
        self._command("dialOut/stop", {"sessionId": participant_id}, completion)

    def send_dtmf(
        self, settings: Mapping[str, Any], completion: Callable[[str | None], None] | None = None
    ) -> None:
        """``POST /rooms/:name/dialOut/sendDTMF``."""
        self._command("dialOut/sendDTMF", settings, completion)

    def sip_call_transfer(
        self, settings: Mapping[str, Any], completion: Callable[[str | None], None] | None = None
    ) -> None:
        """``POST /rooms/:name/sipCallTransfer``."""
        self._command("sipCallTransfer", settings, completion)

    def sip_refer(
        self, settings: Mapping[str, Any], completion: Callable[[str | None], None] | None = None
    ) -> None:
        """``POST /rooms/:name/sipRefer``."""
        self._command("sipRefer", settings, completion)

    # -- inside ------------------------------------------------------------------------------

    def _submit(self, job: Callable[[], None]) -> None:
        if not self._released:
            self._jobs.put(job)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception as exc:  # a completion that raises must not stop the worker
                log.error("emulator client job failed", error=repr(exc))

    def _command(
        self,
        path: str,
        body: Mapping[str, Any],
        completion: Callable[[str | None], None] | None,
    ) -> None:
        def run() -> None:
            try:
                self._room_request(path, body)
            except _RequestError as exc:
                _call(completion, str(exc))
                return
            _call(completion, None)

        self._submit(run)

    def _room_request(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        if self.room is None:
            raise _RequestError("not in a room")
        return self._request("POST", f"{self.api_url}/rooms/{self.room}/{path}", dict(body))

    def _request(self, method: str, url: str, body: Any = None) -> dict[str, Any]:
        try:
            answer = self._http.request(method, url, json=body)
        except httpx.HTTPError as exc:
            raise _RequestError(f"{type(exc).__name__}: {exc}") from None
        try:
            data = answer.json()
        except ValueError:
            data = {}
        if answer.status_code >= 400:
            info = data.get("info") if isinstance(data, dict) else None
            raise _RequestError(f"{answer.status_code} {info or answer.reason_phrase}")
        return data if isinstance(data, dict) else {"data": data}

    def _events(
        self, room: str, after: int, wait: float, http: httpx.Client | None = None
    ) -> list[dict[str, Any]]:
        root = self.api_url.removesuffix("/v1")
        answer = (http or self._http).get(
            f"{root}/_emulator/room-events", params={"room": room, "after": after, "wait": wait}
        )
        if answer.status_code != 200:
            raise _RequestError(f"room events: HTTP {answer.status_code}")
        events = answer.json()
        return events if isinstance(events, list) else []

    def _poll(self, room: str, after: int) -> None:
        deliver = to_event_handler(self.handler, room)
        while not self._stop.is_set():
            try:
                events = self._events(room, after, self.poll_wait, self._poll_http)
            except (_RequestError, httpx.HTTPError, ValueError) as exc:
                log.warning("room events not read; trying again", room=room, reason=str(exc))
                self._stop.wait(0.5)
                continue
            for item in events:
                if self._stop.is_set():
                    return
                event = RoomEvent(
                    int(item["seq"]), float(item["time"]), room, item["name"], item["data"]
                )
                after = max(after, event.seq)
                try:
                    deliver(event)
                except Exception as exc:  # as daily-python: a handler never stops the events
                    log.error("room event handler failed", room=room, error=repr(exc))


class NullAudio:
    """An audio output that drops its frames (the emulator carries no media)."""

    def __init__(self, sample_rate: int = 16_000, channels: int = 1) -> None:
        self.frame_bytes = 2 * channels

    def microphone_settings(self) -> Mapping[str, Any]:
        """What ``join`` would publish as the microphone."""
        return {"customTrack": {"id": "emulator-null-audio"}}

    def write_frames(self, frame: bytes) -> int:
        """Drop the frames; the participant's player paces itself."""
        return len(frame) // self.frame_bytes


def emulator_client_factory(
    api_url: str, api_key: str, *, poll_wait: float = POLL_WAIT
) -> ClientFactory:
    """A ``client_factory`` for ``RoomParticipant`` and the daemon's room agents."""

    def make(handler: object) -> EmulatorCallClient:
        return EmulatorCallClient(handler, api_url=api_url, api_key=api_key, poll_wait=poll_wait)

    return make


class _RequestError(Exception):
    """A request to the emulator failed; the text is the completion's error."""


def _call(completion: Callable[..., None] | None, *args: Any) -> None:
    if completion is not None:
        completion(*args)
