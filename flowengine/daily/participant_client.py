"""The seam to daily-python: ``CallClient`` as a Protocol, its factories, completions as futures.

daily-python is an optional extra (``flowengine[daily]``). Nothing here imports it at module
level: ``load_daily`` imports it the first time a real participant is built, and raises
``DailyExtraMissingError`` naming the extra when it is absent. The package ships no type
stubs that mypy could read here, so the parts of it flowengine calls are described by the
Protocols below (names and argument names copied from daily-python's ``daily.pyi``); tests
plug a fake with the same shape into the same seams (``ClientFactory``, ``AudioFactory``).

daily-python answers on its own threads: event handlers and ``completion`` callbacks run
there, while daily-python holds the GIL. ``completion_to_future`` hands a completion's
arguments to an asyncio future with ``loop.call_soon_threadsafe`` and nothing else, so no
flowengine object is touched from a foreign thread and no handler ever waits on daily-python
(waiting inside a callback for another completion deadlocks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import structlog

from flowengine.daily.errors import DailyError

log = structlog.get_logger(__name__)

EXTRA = "flowengine[daily]"
"""The optional extra that installs daily-python."""

Completion = Callable[..., None]
"""A daily-python completion callback: ``(error)``, ``(session_id, error)``, ``(data, error)``."""

ErrorCompletion = Callable[[str | None], None]


class DailyExtraMissingError(DailyError):
    """Raised when the in-room participant is used but daily-python is not installed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"the in-room participant needs daily-python, which is not installed ({reason}); "
            f"install the extra: pip install '{EXTRA}'"
        )


class ParticipantError(DailyError):
    """Raised when the participant cannot join its room, or is used before it has joined."""


class CallClientLike(Protocol):
    """The methods of ``daily.CallClient`` the participant calls (daily.pyi's names)."""

    def join(
        self,
        meeting_url: str,
        meeting_token: str | None = None,
        client_settings: Mapping[str, Any] | None = None,
        completion: Callable[[Mapping[str, Any] | None, str | None], None] | None = None,
    ) -> None: ...

    def leave(self, completion: ErrorCompletion | None = None) -> None: ...

    def release(self) -> None: ...

    def set_user_name(self, user_name: str) -> None: ...

    def participants(self) -> Mapping[str, Any]: ...

    def update_subscription_profiles(
        self, profile_settings: Mapping[str, Any], completion: ErrorCompletion | None = None
    ) -> None: ...

    def eject_remote_participants(
        self, ids: list[str], completion: ErrorCompletion | None = None
    ) -> None: ...

    def start_dialout(
        self,
        settings: Mapping[str, Any],
        completion: Callable[[str, str | None], None] | None = None,
    ) -> None: ...

    def stop_dialout(
        self, participant_id: str | None = None, completion: ErrorCompletion | None = None
    ) -> None: ...

    def send_dtmf(
        self, settings: Mapping[str, Any], completion: ErrorCompletion | None = None
    ) -> None: ...

    def sip_call_transfer(
        self, settings: Mapping[str, Any], completion: ErrorCompletion | None = None
    ) -> None: ...

    def sip_refer(
        self, settings: Mapping[str, Any], completion: ErrorCompletion | None = None
    ) -> None: ...


class AudioOutput(Protocol):
    """Where the participant's voice goes: a custom audio source published as its microphone."""

    def microphone_settings(self) -> Mapping[str, Any]:
        """The ``inputs.microphone.settings`` of ``join`` that make the room hear this output."""
        ...

    def write_frames(self, frame: bytes) -> int:
        """Write 16-bit PCM frames; may block until they are sent (daily-python does)."""
        ...


ClientFactory = Callable[[object], CallClientLike]
"""Builds a call client that calls the given object's ``on_*`` methods for the room's events."""

AudioFactory = Callable[[int, int], AudioOutput]
"""Builds an audio output for ``(sample_rate, channels)``."""

HANDLER_METHODS = (
    "on_app_message",
    "on_call_state_updated",
    "on_dialin_connected",
    "on_dialin_error",
    "on_dialin_ready",
    "on_dialin_stopped",
    "on_dialin_warning",
    "on_dialout_answered",
    "on_dialout_connected",
    "on_dialout_error",
    "on_dialout_stopped",
    "on_dialout_warning",
    "on_dtmf_event",
    "on_error",
    "on_participant_joined",
    "on_participant_left",
)
"""The ``EventHandler`` methods forwarded to the participant (``on_dialin_*`` is dispatched by
daily-python although its ``daily.pyi`` leaves it out)."""

_init_lock = threading.Lock()
_initialised = False
_handler_class: type | None = None
_microphones = itertools.count(1)


def load_daily() -> Any:
    """daily-python's module, initialised once per process (``Daily.init()``).

    Raises:
        DailyExtraMissingError: daily-python is not installed.
    """
    global _initialised
    try:
        daily = importlib.import_module("daily")
    except ImportError as exc:
        raise DailyExtraMissingError(str(exc)) from exc
    if not hasattr(daily, "CallClient"):
        # Another distribution also installs a top-level module named ``daily``.
        raise DailyExtraMissingError("the installed 'daily' module is not daily-python")
    with _init_lock:
        if not _initialised:
            daily.Daily.init()
            _initialised = True
    return daily


def _forward(name: str) -> Callable[..., None]:
    def method(self: Any, *args: Any) -> None:
        try:
            getattr(self._flowengine_target, name)(*args)
        except Exception as exc:  # an exception must not unwind into daily-python's thread
            log.error("participant.handler_failed", handler=name, error=repr(exc))

    method.__name__ = name
    return method


def daily_client_factory(handler: object) -> CallClientLike:
    """A real ``daily.CallClient`` whose events go to ``handler``'s ``on_*`` methods.

    daily-python wants an ``EventHandler`` subclass, whose constructor takes no arguments; the
    subclass is made once and forwards each method to the handler.
    """
    global _handler_class
    daily = load_daily()
    with _init_lock:
        if _handler_class is None:
            methods = {name: _forward(name) for name in HANDLER_METHODS}
            _handler_class = type("FlowEngineEventHandler", (daily.EventHandler,), methods)
        cls = _handler_class
    adapter = cls()
    adapter._flowengine_target = handler
    client: CallClientLike = daily.CallClient(event_handler=adapter)
    return client


class _CustomTrackOutput:
    """A ``CustomAudioSource`` and its ``CustomAudioTrack``, used as the microphone."""

    def __init__(self, source: Any, track: Any) -> None:
        self._source, self._track = source, track

    def microphone_settings(self) -> Mapping[str, Any]:
        return {"customTrack": {"id": str(self._track.id)}}

    def write_frames(self, frame: bytes) -> int:
        return int(self._source.write_frames(frame))


class _VirtualMicrophoneOutput:
    """A virtual microphone device, for daily-python builds without custom audio tracks."""

    def __init__(self, device: Any) -> None:
        self._device = device

    def microphone_settings(self) -> Mapping[str, Any]:
        return {"deviceId": str(self._device.name)}

    def write_frames(self, frame: bytes) -> int:
        return int(self._device.write_frames(frame))


def daily_audio_factory(sample_rate: int, channels: int) -> AudioOutput:
    """daily-python's custom audio track (or, where it has none, a virtual microphone)."""
    daily = load_daily()
    if hasattr(daily, "CustomAudioSource"):
        source = daily.CustomAudioSource(sample_rate, channels)
        return _CustomTrackOutput(source, daily.CustomAudioTrack(source))
    name = f"flowengine-mic-{next(_microphones)}"
    device = daily.Daily.create_microphone_device(name, sample_rate=sample_rate, channels=channels)
    return _VirtualMicrophoneOutput(device)


def completion_to_future(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[tuple[Any, ...]]
) -> Completion:
    """A completion callback that resolves ``future`` with its arguments, on ``loop``.

    Safe to call from any thread, more than once (later calls are ignored) and after the loop
    has closed (nobody is waiting any more, so the answer is dropped).
    """

    def completion(*args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(_settle, future, args)

    return completion


def _settle(future: asyncio.Future[tuple[Any, ...]], args: tuple[Any, ...]) -> None:
    if not future.done():
        future.set_result(args)


def error_of(args: tuple[Any, ...]) -> str | None:
    """The error a completion reported (its last argument), as text; None for success."""
    if not args or args[-1] is None:
        return None
    return str(args[-1]) or "failed"


def join_settings(
    output: AudioOutput, channels: int, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``client_settings`` for ``join``: no camera, ``output`` published as the microphone."""
    settings: dict[str, Any] = {
        "inputs": {
            "camera": {"isEnabled": False},
            "microphone": {"isEnabled": True, "settings": dict(output.microphone_settings())},
        },
        "publishing": {
            "camera": {"isPublishing": False},
            "microphone": {
                "isPublishing": True,
                "sendSettings": {"channelConfig": "stereo" if channels == 2 else "mono"},
            },
        },
    }
    for key, value in (extra or {}).items():
        settings[key] = value
    return settings
