"""The in-room participant, against a fake daily-python that answers on its own thread.

``FakeCallClient`` has daily-python's method names, argument names and completion shapes
(pinned against a copy of ``daily.pyi`` below, so drift is caught), and like the real client
it calls completions and event handlers from a thread of its own.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import itertools
import queue
import sys
import textwrap
import threading
import time
import types
import wave
from array import array
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

import flowengine.daily as daily_package
from flowengine.daily import participant_client
from flowengine.daily.participant import ParticipantRouter, RoomParticipant
from flowengine.daily.participant_audio import (
    AudioFormatError,
    PcmFormat,
    Player,
    check_wav,
    convert_channels,
)
from flowengine.daily.participant_client import (
    HANDLER_METHODS,
    CallClientLike,
    DailyExtraMissingError,
    ParticipantError,
    daily_audio_factory,
    daily_client_factory,
)
from flowengine.daily.participant_events import EventBridge, dtmf_event, snake
from flowengine.errors import FlowEngineError
from flowengine.project import load_flow
from flowengine.runtime import Engine, FakeTelephony
from flowengine.runtime.commands import (
    Answer,
    Hangup,
    HttpRequest,
    Play,
    Say,
    SendDtmf,
    SipCallTransfer,
    SipRefer,
    StartDialOut,
    StopDialOut,
    StopPlay,
)
from flowengine.runtime.events import Event

# -- daily.pyi (daily-python 0.36.0), copied: the shapes the fake and our Protocol must keep ---

CALL_CLIENT_STUB = {
    "__init__": "(self, event_handler=None)",
    "join": "(self, meeting_url, meeting_token=None, client_settings=None, completion=None)",
    "leave": "(self, completion=None)",
    "release": "(self)",
    "set_user_name": "(self, user_name)",
    "participants": "(self)",
    "update_subscription_profiles": "(self, profile_settings, completion=None)",
    "eject_remote_participants": "(self, ids, completion=None)",
    "start_dialout": "(self, settings, completion=None)",
    "stop_dialout": "(self, participant_id=None, completion=None)",
    "send_dtmf": "(self, settings, completion=None)",
    "sip_call_transfer": "(self, settings, completion=None)",
    "sip_refer": "(self, settings, completion=None)",
}
COMPLETION_ARGS = {"join": 2, "start_dialout": 2}
"""Arguments of each completion: ``(data, error)``, ``(session_id, error)``; others ``(error)``."""

EVENT_HANDLER_STUB = {
    "on_app_message": "(self, message, sender)",
    "on_call_state_updated": "(self, state)",
    "on_dialin_ready": "(self, sip_endpoint)",
    "on_dialout_answered": "(self, data)",
    "on_dialout_connected": "(self, data)",
    "on_dialout_error": "(self, data)",
    "on_dialout_stopped": "(self, data)",
    "on_dialout_warning": "(self, data)",
    "on_dtmf_event": "(self, data)",
    "on_error": "(self, message)",
    "on_participant_joined": "(self, participant)",
    "on_participant_left": "(self, participant, reason)",
}
DISPATCHED_NOT_IN_STUB = {
    # daily-python's Rust side calls these (since 0.13.0); daily.pyi leaves them out.
    "on_dialin_connected": "(self, data)",
    "on_dialin_stopped": "(self, data)",
    "on_dialin_error": "(self, data)",
    "on_dialin_warning": "(self, data)",
}
AUDIO_STUB = {
    "CustomAudioSource.__init__": "(self, sample_rate, channels, auto_silence=True)",
    "CustomAudioSource.write_frames": "(self, frame, completion=None)",
    "CustomAudioTrack.__init__": "(self, audio_source)",
}


def shape(fn: Any) -> str:
    """A signature without annotations: ``(self, a, b=None)``."""
    parts = []
    for p in inspect.signature(fn).parameters.values():
        parts.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    return f"({', '.join(parts)})"


# -- fakes --------------------------------------------------------------------------------------


class DailyThread:
    """Stands in for daily-python's threads: completions and events run here, in order."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="fake-daily", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, args = job
            fn(*args)

    def submit(self, fn: Any, *args: Any) -> None:
        self._jobs.put((fn, args))

    def later(self, delay: float, fn: Any, *args: Any) -> None:
        timer = threading.Timer(delay, self.submit, (fn, *args))
        timer.daemon = True
        timer.start()

    def close(self) -> None:
        self._jobs.put(None)


class FakeCallClient:
    """``daily.CallClient`` as the participant uses it: same names, completions on a thread."""

    def __init__(self, event_handler=None):
        self.handler = event_handler
        self.daily = DailyThread()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.completions: list[tuple[str, int, str]] = []  # (method, arity, thread name)
        self.errors: dict[str, str] = {}
        self.raises: dict[str, Exception] = {}
        self.silent: set[str] = set()
        self.late: dict[str, float] = {}
        self.remote: dict[str, Any] = {}
        self.released = False
        self._dialouts = itertools.count(1)

    # daily.pyi's methods

    def join(self, meeting_url, meeting_token=None, client_settings=None, completion=None):
        self._record("join", meeting_url, meeting_token, client_settings)
        error = self.errors.get("join")
        data = None if error else {"participants": {"local": {"id": "bot-1"}}}
        self._complete("join", completion, data, error)

    def leave(self, completion=None):
        self._record("leave")
        self._complete("leave", completion, self.errors.get("leave"))

    def release(self):
        self._record("release")
        self.released = True
        self.daily.close()

    def set_user_name(self, user_name):
        self._record("set_user_name", user_name)

    def participants(self):
        return {"local": {"id": "bot-1", "info": {"isLocal": True}}, **self.remote}

    def update_subscription_profiles(self, profile_settings, completion=None):
        self._record("update_subscription_profiles", profile_settings)
        self._complete("update_subscription_profiles", completion, None)

    def eject_remote_participants(self, ids, completion=None):
        self._record("eject_remote_participants", list(ids))
        self._complete("eject_remote_participants", completion, self.errors.get("eject"))

    def start_dialout(self, settings, completion=None):
        self._record("start_dialout", dict(settings))
        error = self.errors.get("start_dialout")
        sid = "" if error else f"dialout-{next(self._dialouts)}"
        self._complete("start_dialout", completion, sid, error)

    def stop_dialout(self, participant_id=None, completion=None):
        self._record("stop_dialout", participant_id)
        self._complete("stop_dialout", completion, self.errors.get("stop_dialout"))

    def send_dtmf(self, settings, completion=None):
        self._record("send_dtmf", dict(settings))
        self._complete("send_dtmf", completion, self.errors.get("send_dtmf"))

    def sip_call_transfer(self, settings, completion=None):
        self._record("sip_call_transfer", dict(settings))
        self._complete("sip_call_transfer", completion, self.errors.get("sip_call_transfer"))

    def sip_refer(self, settings, completion=None):
        self._record("sip_refer", dict(settings))
        self._complete("sip_refer", completion, self.errors.get("sip_refer"))

    # for the tests

    def emit(self, method: str, *args: Any) -> None:
        """Raise a room event: the handler's method runs on the daily thread."""
        self.daily.submit(getattr(self.handler, method), *args)

    def called(self, method: str) -> list[tuple[Any, ...]]:
        return [args for name, args in self.calls if name == method]

    def _record(self, method: str, *args: Any) -> None:
        if method in self.raises:
            raise self.raises[method]
        self.calls.append((method, args))

    def _complete(self, method: str, completion: Any, *result: Any) -> None:
        if completion is None or method in self.silent:
            return

        def answer() -> None:
            self.completions.append((method, len(result), threading.current_thread().name))
            completion(*result)

        if method in self.late:
            self.daily.later(self.late[method], answer)
        else:
            self.daily.submit(answer)


class FakeAudio:
    """An audio output that records frames; ``realtime`` blocks like daily-python's."""

    def __init__(self, fmt: PcmFormat | None = None, *, realtime: bool = False) -> None:
        self.fmt = fmt or PcmFormat()
        self.realtime = realtime
        self.frames: list[bytes] = []
        self.threads: set[str] = set()

    def microphone_settings(self):
        return {"customTrack": {"id": "track-1"}}

    def write_frames(self, frame: bytes) -> int:
        self.frames.append(frame)
        self.threads.add(threading.current_thread().name)
        if self.realtime:
            time.sleep(len(frame) / self.fmt.bytes_per_second)
        return len(frame) // self.fmt.frame_bytes

    @property
    def data(self) -> bytes:
        return b"".join(self.frames)


class Posted:
    """``Engine.post`` stand-in: what was posted, and on which thread."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Event]] = []
        self.threads: set[str] = set()

    def __call__(self, call_id: str, event: Event) -> bool:
        self.items.append((call_id, event))
        self.threads.add(threading.current_thread().name)
        return True

    @property
    def events(self) -> list[Event]:
        return [e for _, e in self.items]

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]


class Tts:
    """A text-to-speech that speaks 20 ms of a constant tone per character."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.spoken: list[tuple[str, str | None, str | None]] = []

    def synthesize(self, text, *, voice, locale, fmt):
        if self.fail:
            raise RuntimeError("tts service down")
        self.spoken.append((text, voice, locale))
        return [b"\x10\x00" * fmt.channels * (fmt.sample_rate // 50) for _ in text]


def write_wav(
    path: Path,
    *,
    seconds: float = 0.1,
    rate: int = 16_000,
    channels: int = 1,
    width: int = 2,
    samples: tuple[int, ...] = (1000,),
) -> Path:
    """A WAV of a constant frame (``samples``: one value per channel)."""
    frames = int(rate * seconds)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        if width == 2:
            frame = array("h", (samples * channels)[:channels])
            if sys.byteorder == "big":
                frame.byteswap()
            wav.writeframes(frame.tobytes() * frames)
        else:
            wav.writeframes(bytes([128]) * channels * width * frames)
    return path


async def until(condition: Any, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class Room:
    """A participant joined with fakes, and everything the test needs to look at."""

    def __init__(self, participant: RoomParticipant, audio: FakeAudio, posted: Posted) -> None:
        self.participant, self.audio, self.posted = participant, audio, posted
        self.client: FakeCallClient = participant._commands.client


@pytest.fixture
async def room(tmp_path: Path):
    made: list[RoomParticipant] = []

    async def make(
        *, join: bool = True, audio: FakeAudio | None = None, **kwargs: Any
    ) -> Room | RoomParticipant:
        posted = kwargs.pop("post", None) or Posted()
        output = audio or FakeAudio(kwargs.get("audio_format"))
        kwargs.setdefault("prompts_dir", tmp_path)
        kwargs.setdefault("client_factory", lambda handler: FakeCallClient(event_handler=handler))
        participant = RoomParticipant(
            "call-1",
            "https://acme.daily.co/call-1",
            "owner-token-value",
            post=posted,
            audio_factory=lambda rate, channels: output,
            **kwargs,
        )
        made.append(participant)
        if not join:
            return participant
        await participant.join()
        return Room(participant, output, posted)

    yield make
    for participant in made:
        await participant.leave()


def cmd(cls: Any, key: str = "call-1:1:0", **fields: Any) -> Any:
    return cls(key=key, call_id="call-1", **fields)


# -- the shapes: fake and Protocol against daily.pyi -------------------------------------------


def test_the_fake_call_client_keeps_daily_pyi_names_and_signatures() -> None:
    for name, expected in CALL_CLIENT_STUB.items():
        assert shape(getattr(FakeCallClient, name)) == expected, name


def test_our_call_client_protocol_is_a_subset_of_daily_pyi() -> None:
    methods = [n for n, v in vars(CallClientLike).items() if inspect.isfunction(v)]
    methods = [n for n in methods if not n.startswith("_")]
    assert methods
    for name in methods:
        assert name in CALL_CLIENT_STUB, f"{name} is not a daily.CallClient method"
        assert shape(getattr(CallClientLike, name)) == CALL_CLIENT_STUB[name], name


def test_the_bridge_has_the_event_handler_methods_with_their_arguments() -> None:
    known = EVENT_HANDLER_STUB | DISPATCHED_NOT_IN_STUB
    assert set(HANDLER_METHODS) <= set(known)
    for name in HANDLER_METHODS:
        assert shape(getattr(EventBridge, name)) == known[name], name


async def test_completions_have_daily_pyi_arities_and_run_on_a_foreign_thread(room) -> None:
    r = await room()
    await r.participant.execute(cmd(StartDialOut, leg="agent", settings={"phoneNumber": "+1"}))
    await r.participant.execute(cmd(SendDtmf, "call-1:2:0", leg="agent", tones="1"))
    for method, arity, thread in r.client.completions:
        assert arity == COMPLETION_ARGS.get(method, 1), method
        assert thread == "fake-daily"
    assert threading.current_thread().name != "fake-daily"


# -- events in ------------------------------------------------------------------------------------


async def test_dtmf_from_a_foreign_thread_reaches_the_loop_in_order(room) -> None:
    r = await room()
    tones = "0123456789*#ABCD" * 10
    for tone in tones:
        r.client.emit("on_dtmf_event", {"sessionId": "caller-1", "tone": tone, "method": "auto"})
    await until(lambda: len(r.posted.items) == len(tones))
    assert "".join(e.payload["tone"] for e in r.posted.events) == tones
    assert {c for c, _ in r.posted.items} == {"call-1"}
    assert r.posted.threads == {threading.current_thread().name}  # never a daily thread
    first = r.posted.events[0]
    assert first == Event("dtmf", {"session_id": "caller-1", "tone": "0", "method": "auto"})


@pytest.mark.parametrize("tone", ["A", "b", "C", "d"])
def test_tones_a_to_d_are_keys(tone: str) -> None:
    event = dtmf_event({"sessionId": "s", "tone": tone, "volume": 10, "method": "sip-info"})
    assert event is not None
    assert event.payload["tone"] == tone.upper()


@pytest.mark.parametrize("tone", ["X", "", "12", None, 5, "E"])
async def test_invalid_tones_are_dropped_with_a_log_line(room, tone: Any) -> None:
    r = await room()
    with capture_logs() as logs:
        r.client.emit("on_dtmf_event", {"sessionId": "caller-1", "tone": tone})
        r.client.emit("on_dtmf_event", {"sessionId": "caller-1", "tone": "5"})
        await until(lambda: r.posted.items)
    assert [e.payload["tone"] for e in r.posted.events] == ["5"]
    dropped = [entry for entry in logs if entry["event"] == "participant.dtmf_dropped"]
    assert len(dropped) == 1
    assert dropped[0]["log_level"] == "warning"


async def test_dialin_events_map_to_webhook_names_and_fields(room) -> None:
    r = await room()
    r.client.emit("on_dialin_ready", "sip:call-1@sip.daily.co")
    r.client.emit(
        "on_dialin_connected",
        {"sessionId": "caller-1", "actionTraceId": "t1", "sipFrom": "+1415", "sipHeaders": {}},
    )
    r.client.emit("on_dialin_warning", {"sessionId": "caller-1", "message": "codec"})
    r.client.emit("on_dialin_stopped", {"sessionId": "caller-1", "actionTraceId": "t1"})
    await until(lambda: len(r.posted.items) == 4)
    ready, connected, warning, stopped = r.posted.events
    assert ready == Event("dialin.ready", {"sip_endpoint": "sip:call-1@sip.daily.co"})
    assert connected.name == "dialin.connected"
    assert connected.payload == {
        "session_id": "caller-1",
        "action_trace_id": "t1",
        "sip_from": "+1415",
        "sip_headers": {},
    }
    assert connected.leg == warning.leg == stopped.leg == "caller"
    assert stopped.name == "dialin.stopped"
    assert r.participant.sessions == {}  # the caller's leg ended


async def test_dialout_events_are_mapped_and_named_by_leg(room) -> None:
    r = await room()
    result = await r.participant.execute(
        cmd(StartDialOut, leg="agent", settings={"phoneNumber": "+14155550100"})
    )
    sid = result.data["sessionId"]
    for method in ("on_dialout_connected", "on_dialout_answered", "on_dialout_warning"):
        r.client.emit(method, {"sessionId": sid, "actionTraceId": "t"})
    r.client.emit("on_dialout_error", {"sessionId": sid, "message": "486 Busy Here"})
    r.client.emit("on_dialout_stopped", {"sessionId": "someone-else"})
    await until(lambda: len(r.posted.items) == 5)
    names = [e.name for e in r.posted.events]
    assert names == [
        "dialout.connected",
        "dialout.answered",
        "dialout.warning",
        "dialout.error",
        "dialout.stopped",
    ]
    assert [e.leg for e in r.posted.events] == ["agent"] * 4 + [None]
    error = r.posted.events[3]
    assert error.payload == {
        "session_id": sid,
        "message": "486 Busy Here",
        "error_msg": "486 Busy Here",
    }
    assert "agent" not in r.participant.sessions  # the error ended the leg


async def test_participants_and_app_messages(room) -> None:
    r = await room()
    caller = {
        "id": "caller-1",
        "info": {"isLocal": False, "isOwner": False, "userName": "+1415", "joinedAt": 17},
    }
    r.client.emit("on_participant_joined", {"id": "bot-1", "info": {"isLocal": True}})
    r.client.emit("on_participant_joined", caller)
    r.client.emit("on_participant_left", caller, "leftCall")
    r.client.emit("on_app_message", {"action": "escalate"}, "agent-7")
    await until(lambda: len(r.posted.items) == 3)
    joined, left, message = r.posted.events
    assert joined == Event(
        "participant.joined",
        {"session_id": "caller-1", "user_name": "+1415", "owner": False, "joined_at": 17},
    )
    assert left.name == "participant.left"
    assert left.payload["reason"] == "leftCall"
    assert message == Event("app-message", {"data": {"action": "escalate"}, "from_id": "agent-7"})


async def test_events_before_the_engine_binds_are_kept_then_flushed(room) -> None:
    participant = await room(join=False, post=None)
    participant._post = None
    await participant.join()
    client: FakeCallClient = participant._commands.client
    client.emit("on_dtmf_event", {"tone": "1"})
    client.emit("on_dtmf_event", {"tone": "2"})
    await until(lambda: len(participant._backlog) == 2)
    posted = Posted()
    participant.bind(posted)
    assert [e.payload["tone"] for e in posted.events] == ["1", "2"]


def test_camel_case_keys_become_snake_case() -> None:
    assert snake("sessionId") == "session_id"
    assert snake("waitBeforeExtensionDialSec") == "wait_before_extension_dial_sec"
    assert snake("session_id") == "session_id"


# -- telephony commands -------------------------------------------------------------------------


async def test_start_dial_out_passes_daily_settings_and_returns_the_session_id(room) -> None:
    r = await room()
    settings = {"phoneNumber": "+14155550100", "callerId": "num-uuid", "displayName": "Acme"}
    result = await r.participant.execute(cmd(StartDialOut, leg="agent", settings=settings))
    assert result.ok
    assert result.data == {"sessionId": "dialout-1"}
    assert r.client.called("start_dialout") == [(settings,)]
    assert r.participant.sessions["agent"] == "dialout-1"


async def test_session_ids_are_filled_from_the_leg(room) -> None:
    r = await room()
    r.client.emit("on_dialin_connected", {"sessionId": "caller-1"})
    await until(lambda: r.posted.items)
    await r.participant.execute(
        cmd(StartDialOut, "k:1:0", leg="agent", settings={"sipUri": "sip:a@b"})
    )
    p = r.participant
    dtmf = await p.execute(
        cmd(SendDtmf, "k:2:0", leg="agent", tones="12#", method="telephone-event")
    )
    transfer = await p.execute(
        cmd(SipCallTransfer, "k:3:0", leg="caller", to_end_point="sip:sales@acme.sip.daily.co")
    )
    refer = await p.execute(
        cmd(SipRefer, "k:4:0", leg="caller", session_id="explicit", to_end_point="sip:q@pbx")
    )
    stop = await p.execute(cmd(StopDialOut, "k:5:0", leg="agent"))
    assert all(r.ok for r in (dtmf, transfer, refer, stop))
    assert r.client.called("send_dtmf") == [
        ({"sessionId": "dialout-1", "tones": "12#", "method": "telephone-event"},)
    ]
    assert r.client.called("sip_call_transfer") == [
        ({"sessionId": "caller-1", "toEndPoint": "sip:sales@acme.sip.daily.co"},)
    ]
    assert r.client.called("sip_refer") == [({"sessionId": "explicit", "toEndPoint": "sip:q@pbx"},)]
    assert r.client.called("stop_dialout") == [("dialout-1",)]
    assert transfer.data == {"sessionId": "caller-1"}


async def test_transfer_fields_keep_daily_names(room) -> None:
    r = await room()
    command = cmd(
        SipCallTransfer,
        leg="caller",
        session_id="caller-1",
        to_end_point="+14155550199",
        caller_id="num-uuid",
        extension="123",
        wait_before_extension_dial_sec=2,
    )
    assert (await r.participant.execute(command)).ok
    assert r.client.called("sip_call_transfer") == [
        (
            {
                "sessionId": "caller-1",
                "toEndPoint": "+14155550199",
                "callerId": "num-uuid",
                "extension": "123",
                "waitBeforeExtensionDialSec": 2,
            },
        )
    ]


async def test_a_completion_error_is_a_failed_result_with_its_text(room) -> None:
    r = await room()
    r.client.errors["send_dtmf"] = "tones string must be upto 20 characters"
    r.client.errors["start_dialout"] = "DIALOUT_IN_PROGRESS"
    dtmf = await r.participant.execute(cmd(SendDtmf, leg="agent", session_id="s", tones="1"))
    dial = await r.participant.execute(cmd(StartDialOut, "k:2:0", leg="b", settings={}))
    assert not dtmf.ok
    assert dtmf.error == "send_dtmf: tones string must be upto 20 characters"
    assert not dial.ok
    assert dial.error == "start_dialout: DIALOUT_IN_PROGRESS"
    assert "b" not in r.participant.sessions


async def test_a_raising_client_call_is_a_failed_result(room) -> None:
    r = await room()
    r.client.raises["sip_refer"] = ValueError("invalid settings")
    result = await r.participant.execute(
        cmd(SipRefer, leg="caller", session_id="s", to_end_point="sip:x@y")
    )
    assert not result.ok
    assert result.error == "sip_refer: ValueError: invalid settings"


async def test_no_known_session_id_fails_without_calling_daily(room) -> None:
    r = await room()
    result = await r.participant.execute(cmd(SendDtmf, leg="agent", tones="1"))
    assert not result.ok
    assert "no session id" in (result.error or "")
    assert r.client.called("send_dtmf") == []


async def test_a_completion_that_never_comes_times_out(room) -> None:
    r = await room(timeout=0.05)
    r.client.silent.add("sip_call_transfer")
    started = time.monotonic()
    result = await r.participant.execute(
        cmd(SipCallTransfer, leg="caller", session_id="s", to_end_point="sip:x@y")
    )
    assert not result.ok
    assert result.error == "timeout: no answer to sip_call_transfer within 0.05s"
    assert time.monotonic() - started < 1


async def test_a_dial_out_accepted_after_its_timeout_is_stopped(room) -> None:
    r = await room(timeout=0.05)
    r.client.late["start_dialout"] = 0.2
    result = await r.participant.execute(cmd(StartDialOut, leg="agent", settings={}))
    assert result.error is not None
    assert result.error.startswith("timeout")
    await until(lambda: r.client.called("stop_dialout"))
    assert r.client.called("stop_dialout") == [("dialout-1",)]
    assert "agent" not in r.participant.sessions


async def test_a_command_key_is_performed_once(room) -> None:
    r = await room()
    command = cmd(StartDialOut, leg="agent", settings={"phoneNumber": "+1"})
    first = await r.participant.execute(command)
    again = await r.participant.execute(command)
    assert first == again
    assert len(r.client.called("start_dialout")) == 1


async def test_other_commands_go_to_the_fallback(room) -> None:
    fallback = FakeTelephony()
    r = await room(fallback=fallback)
    http = cmd(HttpRequest, method="GET", url="https://crm.example.com/x")
    answer = cmd(Answer, "call-1:2:0")
    to_room = cmd(SipCallTransfer, "call-1:3:0", leg="caller", session_id="s", room="sales")
    other_call = SendDtmf(key="other:1:0", call_id="other", leg="agent", tones="1")
    for command in (http, answer, to_room, other_call):
        assert (await r.participant.execute(command)).ok
    assert fallback.commands == [http, answer, to_room, other_call]
    assert r.client.called("sip_call_transfer") == []


async def test_without_a_fallback_answer_is_a_no_op_and_http_fails(room) -> None:
    r = await room()
    assert (await r.participant.execute(cmd(Answer))).ok
    http = await r.participant.execute(cmd(HttpRequest, method="GET", url="https://x.example"))
    assert not http.ok
    assert "no fallback" in (http.error or "")


async def test_out_of_the_room_in_room_commands_go_to_the_fallback(room) -> None:
    fallback = FakeTelephony()
    participant = await room(join=False, fallback=fallback)
    result = await participant.execute(cmd(StartDialOut, leg="agent", settings={}))
    assert result.ok
    assert result.data == {"sessionId": "dialout-1"}  # the fake REST side answered
    play = await participant.execute(cmd(Play, prompt="p", text="hi"))
    assert not play.ok


async def test_hangup_ejects_the_phone_legs_and_leaves(room) -> None:
    r = await room()
    r.client.remote["caller-1"] = {"id": "caller-1"}
    result = await r.participant.execute(cmd(Hangup, reason="done"))
    assert result.ok
    assert r.client.called("eject_remote_participants") == [(["caller-1"],)]
    assert r.client.called("leave") == [()]
    assert r.client.released
    assert not r.participant.joined


async def test_hangup_with_a_fallback_uses_it_then_leaves(room) -> None:
    fallback = FakeTelephony()
    r = await room(fallback=fallback)
    hangup = cmd(Hangup)
    assert (await r.participant.execute(hangup)).ok
    assert fallback.commands == [hangup]
    assert r.client.called("eject_remote_participants") == []
    assert r.client.called("leave") == [()]


# -- joining ------------------------------------------------------------------------------------


async def test_join_publishes_the_audio_track_as_microphone_with_the_owner_token(room) -> None:
    r = await room(user_name="IVR")
    [(url, token, settings)] = r.client.called("join")
    assert url == "https://acme.daily.co/call-1"
    assert token == "owner-token-value"
    assert settings["inputs"]["microphone"] == {
        "isEnabled": True,
        "settings": {"customTrack": {"id": "track-1"}},
    }
    assert settings["inputs"]["camera"] == {"isEnabled": False}
    assert settings["publishing"]["microphone"]["isPublishing"] is True
    assert r.client.called("set_user_name") == [("IVR",)]
    assert "owner-token-value" not in repr(r.participant)


async def test_a_failed_join_raises_and_releases_the_client(room) -> None:
    clients: list[FakeCallClient] = []

    def factory(handler: object) -> FakeCallClient:
        clients.append(FakeCallClient(event_handler=handler))
        clients[-1].errors["join"] = "room not found"
        return clients[-1]

    participant = await room(join=False, client_factory=factory)
    with pytest.raises(ParticipantError, match="could not join .*: room not found"):
        await participant.join()
    assert clients[0].released
    assert not participant.joined


async def test_a_join_that_never_completes_times_out(room) -> None:
    clients: list[FakeCallClient] = []

    def factory(handler: object) -> FakeCallClient:
        clients.append(FakeCallClient(event_handler=handler))
        clients[-1].silent.add("join")
        return clients[-1]

    participant = await room(join=False, client_factory=factory, join_timeout=0.05)
    with pytest.raises(ParticipantError, match="timed out"):
        await participant.join()
    assert clients[0].released


async def test_joining_twice_is_refused(room) -> None:
    r = await room()
    with pytest.raises(ParticipantError, match="already"):
        await r.participant.join()


# -- audio --------------------------------------------------------------------------------------


async def test_a_wav_prompt_is_written_in_chunks_then_play_done(room, tmp_path: Path) -> None:
    write_wav(tmp_path / "hello.wav", seconds=0.1)
    r = await room()
    result = await r.participant.execute(cmd(Play, prompt="hello", audio="hello.wav"))
    assert result.ok
    assert not result.finished  # play.done comes from the participant
    await until(lambda: r.posted.named("play.done"))
    assert r.posted.named("play.done") == [Event("play.done", {"key": "call-1:1:0"})]
    assert len(r.audio.data) == 1600 * 2
    assert {len(f) for f in r.audio.frames} == {640}  # 20 ms of 16 kHz mono
    assert r.audio.threads == {"flowengine-player-call-1"}
    assert r.posted.threads == {threading.current_thread().name}


async def test_play_done_is_not_reported_before_the_audio_has_been_heard(room, tmp_path) -> None:
    write_wav(tmp_path / "p.wav", seconds=0.3)
    r = await room()  # the fake output does not block: the player paces itself
    started = time.monotonic()
    await r.participant.execute(cmd(Play, prompt="p", audio="p.wav"))
    await until(lambda: r.posted.named("play.done"))
    assert time.monotonic() - started >= 0.28


async def test_stereo_is_mixed_down_and_mono_doubled(tmp_path: Path) -> None:
    stereo = array("h", [1000, 3000, -2000, 0])
    assert array("h", convert_channels(stereo.tobytes(), 2, 1)).tolist() == [2000, -1000]
    mono = array("h", [5, -7])
    assert array("h", convert_channels(mono.tobytes(), 1, 2)).tolist() == [5, 5, -7, -7]


async def test_a_stereo_file_plays_on_a_mono_output(room, tmp_path: Path) -> None:
    write_wav(tmp_path / "s.wav", seconds=0.04, channels=2, samples=(1000, 3000))
    r = await room()
    await r.participant.execute(cmd(Play, prompt="s", audio="s.wav"))
    await until(lambda: r.posted.named("play.done"))
    assert set(array("h", r.audio.data).tolist()) == {2000}


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"rate": 8000}, "8000 Hz; the participant plays 16000 Hz"),
        ({"width": 1}, "8-bit samples"),
        ({"channels": 3}, "3 channels"),
    ],
)
async def test_unplayable_files_fail_the_command_with_the_reason(room, tmp_path, kwargs, reason):
    write_wav(tmp_path / "bad.wav", **kwargs)
    r = await room()
    result = await r.participant.execute(cmd(Play, prompt="bad", audio="bad.wav"))
    assert not result.ok
    assert reason in (result.error or "")
    assert result.error.startswith("prompt 'bad': ")


async def test_missing_files_and_paths_outside_the_prompts_folder_fail(room, tmp_path) -> None:
    r = await room()
    missing = await r.participant.execute(cmd(Play, prompt="m", audio="missing.wav"))
    escape = await r.participant.execute(cmd(Play, "k:2:0", prompt="e", audio="../../etc/x.wav"))
    assert "no such audio file" in (missing.error or "")
    assert "outside the prompts directory" in (escape.error or "")
    with pytest.raises(AudioFormatError):
        check_wav(tmp_path / "missing.wav", PcmFormat())


async def test_stop_play_stops_the_prompt_without_play_done(room, tmp_path: Path) -> None:
    write_wav(tmp_path / "long.wav", seconds=2.0)
    write_wav(tmp_path / "next.wav", seconds=0.5)
    r = await room(audio=FakeAudio(realtime=True))
    await r.participant.execute(cmd(Play, prompt="long", audio="long.wav", barge_in=True))
    await r.participant.execute(cmd(Play, "call-1:1:1", prompt="next", audio="next.wav"))
    await until(lambda: len(r.audio.frames) >= 3)
    assert (await r.participant.execute(cmd(StopPlay, "call-1:2:0"))).ok
    written = len(r.audio.frames)
    await asyncio.sleep(0.15)
    assert len(r.audio.frames) <= written + 1  # at most the chunk being written
    assert len(r.audio.data) < 2.0 * 32_000 / 4
    assert r.posted.named("play.done") == []  # neither the stopped nor the dropped prompt
    # The player goes on with what comes after the stop.
    write_wav(tmp_path / "after.wav", seconds=0.04)
    await r.participant.execute(cmd(Play, "call-1:3:0", prompt="after", audio="after.wav"))
    await until(lambda: r.posted.named("play.done"))
    assert r.posted.named("play.done")[0].payload == {"key": "call-1:3:0"}


async def test_prompts_queue_in_order(room, tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", seconds=0.04, samples=(1,))
    write_wav(tmp_path / "b.wav", seconds=0.04, samples=(2,))
    r = await room()
    await r.participant.execute(cmd(Play, "k:1:0", prompt="a", audio="a.wav"))
    await r.participant.execute(cmd(Play, "k:1:1", prompt="b", audio="b.wav"))
    await until(lambda: len(r.posted.named("play.done")) == 2)
    assert [e.payload["key"] for e in r.posted.named("play.done")] == ["k:1:0", "k:1:1"]
    samples = array("h", r.audio.data).tolist()
    assert samples == [1] * 640 + [2] * 640


async def test_say_without_tts_completes_at_once_with_a_warning(room) -> None:
    r = await room()
    with capture_logs() as logs:
        result = await r.participant.execute(cmd(Say, text="Your balance is 12 dollars"))
    assert result.ok
    assert result.finished  # the engine posts play.done: the call never waits
    assert r.audio.frames == []
    [warning] = [entry for entry in logs if entry["event"] == "participant.no_tts"]
    assert warning["log_level"] == "warning"


async def test_a_text_prompt_is_spoken_by_the_tts_when_one_is_plugged_in(room) -> None:
    tts = Tts()
    r = await room(tts=tts)
    result = await r.participant.execute(cmd(Say, text="hi", voice="alto", locale="en-GB"))
    assert result.ok
    assert not result.finished
    await until(lambda: r.posted.named("play.done"))
    assert tts.spoken == [("hi", "alto", "en-GB")]
    assert len(r.audio.data) == 2 * 320 * 2


async def test_an_unplayable_recording_falls_back_to_its_transcript(room, tmp_path) -> None:
    write_wav(tmp_path / "old.wav", rate=8000)
    tts = Tts()
    r = await room(tts=tts)
    result = await r.participant.execute(cmd(Play, prompt="p", audio="old.wav", text="Hello"))
    assert result.ok
    await until(lambda: r.posted.named("play.done"))
    assert tts.spoken == [("Hello", None, None)]


async def test_a_failing_tts_reports_command_failed_for_the_prompt(room) -> None:
    r = await room(tts=Tts(fail=True))
    assert (await r.participant.execute(cmd(Say, text="hi"))).ok
    await until(lambda: r.posted.named("command.failed"))
    [failed] = r.posted.named("command.failed")
    assert failed.payload["key"] == "call-1:1:0"
    assert failed.payload["command"] == "say"
    assert "tts service down" in failed.payload["error"]


async def test_a_stereo_output_doubles_mono_prompts(room, tmp_path: Path) -> None:
    write_wav(tmp_path / "m.wav", seconds=0.02, samples=(7,))
    fmt = PcmFormat(16_000, 2)
    r = await room(audio_format=fmt, audio=FakeAudio(fmt))
    await r.participant.execute(cmd(Play, prompt="m", audio="m.wav"))
    await until(lambda: r.posted.named("play.done"))
    assert array("h", r.audio.data).tolist() == [7] * 640


def test_the_player_thread_ends_on_close() -> None:
    done: list[str] = []
    player = Player(FakeAudio(), PcmFormat(), on_done=done.append, on_failed=lambda k, e: None)
    player.play("k", lambda: [b"\x00\x00" * 160])
    player.close()
    assert player._thread is not None
    assert not player._thread.is_alive()
    with pytest.raises(RuntimeError):
        player.play("k2", list)


def test_formats_outside_what_daily_takes_are_refused() -> None:
    with pytest.raises(ValueError, match="channels"):
        PcmFormat(16_000, 3)
    with pytest.raises(ValueError, match="sample_rate"):
        PcmFormat(4_000, 1)


# -- with the engine ----------------------------------------------------------------------------

PIN_FLOW = """
name: room-pin
start: pin
on: {hangup: bye, error: bye}
prompts:
  ask:
    en-US: {audio: ask.wav, text: "Enter your PIN"}
vars: {pin: ""}
states:
  pin:
    collect:
      prompt: ask
      into: pin
      min_digits: 4
      max_digits: 4
      timeouts: {first_digit: 5s, inter_digit: 3s}
    on: {ok: good, max_attempts: bye}
  good:
    hangup: {reason: ok}
  bye:
    end: {}
"""


@pytest.mark.parametrize("barge_in", [True, False])
async def test_a_call_collects_digits_from_the_room_and_hangs_up(tmp_path, barge_in) -> None:
    flow_file = tmp_path / "flow.yaml"
    flow_file.write_text(textwrap.dedent(PIN_FLOW).lstrip(), encoding="utf-8")
    seconds = 1.0 if barge_in else 0.1
    write_wav(tmp_path / "ask.wav", seconds=seconds)
    audio = FakeAudio(realtime=True)
    clients: list[FakeCallClient] = []

    def factory(handler: object) -> FakeCallClient:
        clients.append(FakeCallClient(event_handler=handler))
        return clients[-1]

    participant = RoomParticipant(
        "call-1",
        "https://acme.daily.co/call-1",
        "token",
        client_factory=factory,
        audio_factory=lambda rate, channels: audio,
        prompts_dir=tmp_path,
    )
    engine = Engine([load_flow(flow_file)], participant)  # the engine binds its post
    try:
        await participant.join()
        client = clients[0]
        client.remote["caller-1"] = {"id": "caller-1"}
        client.emit("on_dialin_connected", {"sessionId": "caller-1"})
        session = engine.start_call("call-1", "room-pin")
        if barge_in:
            await until(lambda: len(audio.frames) >= 2)  # the first key stops the prompt
        else:
            await until(lambda: any(t.event.name == "play.done" for t in session.trace))
        for tone in "1234":
            client.emit("on_dtmf_event", {"sessionId": "caller-1", "tone": tone})
        await until(lambda: session.ended and not participant.joined)
        await engine.idle()
        assert session.vars["pin"] == "1234"
        assert session.state == "good"
        if barge_in:
            assert len(audio.data) < 32_000  # stopped well before the second of audio ended
        else:
            assert len(audio.data) == 3_200  # all of it
        assert client.called("eject_remote_participants") == [(["caller-1"],)]
        assert client.released
        assert engine.errors == []
    finally:
        await participant.leave()
        await engine.aclose()


async def test_the_router_sends_each_call_to_its_participant(room) -> None:
    fallback = FakeTelephony()
    router = ParticipantRouter(fallback)
    posted = Posted()
    router.bind(posted)
    participant = await room(join=False)
    participant._post = None
    router.attach(participant)
    assert participant.fallback is fallback
    assert participant.bound
    await participant.join()
    mine = cmd(StartDialOut, leg="agent", settings={})
    theirs = StartDialOut(key="c2:1:0", call_id="c2", leg="agent", settings={})
    assert (await router.execute(mine)).data == {"sessionId": "dialout-1"}
    assert (await router.execute(theirs)).ok
    assert fallback.commands == [theirs]
    assert router.detach("call-1") is participant
    assert not (await ParticipantRouter().execute(theirs)).ok


# -- the optional extra -------------------------------------------------------------------------


@pytest.fixture
def no_daily(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "daily", None)  # makes `import daily` raise ImportError


async def test_without_the_extra_joining_raises_a_clear_error(no_daily) -> None:
    participant = RoomParticipant("call-1", "https://acme.daily.co/call-1", "token")
    with pytest.raises(DailyExtraMissingError) as caught:
        await participant.join()
    assert "pip install 'flowengine[daily]'" in str(caught.value)
    assert isinstance(caught.value, FlowEngineError)
    with pytest.raises(DailyExtraMissingError):
        daily_audio_factory(16_000, 1)


def test_an_unrelated_daily_module_is_not_mistaken_for_daily_python(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "daily", types.ModuleType("daily"))
    with pytest.raises(DailyExtraMissingError, match="not daily-python"):
        daily_client_factory(object())


def fake_daily_module(*, custom_tracks: bool = True) -> types.ModuleType:
    """A stand-in for daily-python's module, with its classes' constructor shapes."""
    module = types.ModuleType("daily")
    inits: list[int] = []

    class Daily:
        @staticmethod
        def init(worker_threads=2, log_level=None):
            inits.append(worker_threads)

        @staticmethod
        def create_microphone_device(
            device_name, sample_rate=16000, channels=1, non_blocking=False
        ):
            return types.SimpleNamespace(name=device_name, write_frames=lambda frame: len(frame))

    class EventHandler:
        def __init__(self):
            pass

    class CallClient:
        def __init__(self, event_handler=None):
            self.event_handler = event_handler

    class CustomAudioSource:
        def __init__(self, sample_rate, channels, auto_silence=True):
            self.written: list[bytes] = []

        def write_frames(self, frame, completion=None):
            self.written.append(frame)
            return len(frame) // 2

    class CustomAudioTrack:
        def __init__(self, audio_source):
            self.id = "track-42"

    module.Daily, module.EventHandler, module.CallClient = Daily, EventHandler, CallClient
    if custom_tracks:
        module.CustomAudioSource, module.CustomAudioTrack = CustomAudioSource, CustomAudioTrack
    module.inits = inits
    return module


@pytest.fixture
def fake_daily(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = fake_daily_module()
    monkeypatch.setitem(sys.modules, "daily", module)
    monkeypatch.setattr(participant_client, "_initialised", False)
    monkeypatch.setattr(participant_client, "_handler_class", None)
    return module


def test_the_fake_daily_module_keeps_daily_pyi_audio_shapes(fake_daily) -> None:
    for name, expected in AUDIO_STUB.items():
        cls_name, method = name.split(".")
        assert shape(getattr(getattr(fake_daily, cls_name), method)) == expected, name


def test_the_default_factory_builds_an_event_handler_that_forwards(fake_daily) -> None:
    seen: list[tuple[str, tuple[Any, ...]]] = []

    class Target:
        def __getattr__(self, name: str) -> Any:
            return lambda *args: seen.append((name, args))

    client = daily_client_factory(Target())
    again = daily_client_factory(Target())
    handler = client.event_handler
    assert isinstance(handler, fake_daily.EventHandler)
    assert type(handler) is type(again.event_handler)
    handler.on_dtmf_event({"tone": "1"})
    handler.on_participant_left({"id": "x"}, "leftCall")
    assert seen == [
        ("on_dtmf_event", ({"tone": "1"},)),
        ("on_participant_left", ({"id": "x"}, "leftCall")),
    ]
    assert fake_daily.inits == [2]  # Daily.init() once per process


def test_a_failing_handler_does_not_unwind_into_daily_python(fake_daily) -> None:
    class Broken:
        def on_dtmf_event(self, data: Any) -> None:
            raise KeyError("tone")

    handler = daily_client_factory(Broken()).event_handler
    with capture_logs() as logs:
        handler.on_dtmf_event({})
    assert [e["event"] for e in logs] == ["participant.handler_failed"]


def test_the_default_audio_output_is_a_custom_track_or_a_virtual_microphone(
    fake_daily, monkeypatch
) -> None:
    output = daily_audio_factory(16_000, 1)
    assert output.microphone_settings() == {"customTrack": {"id": "track-42"}}
    assert output.write_frames(b"\x00\x00" * 10) == 10
    monkeypatch.setitem(sys.modules, "daily", fake_daily_module(custom_tracks=False))
    mic = daily_audio_factory(16_000, 1)
    assert mic.microphone_settings()["deviceId"].startswith("flowengine-mic-")


# -- boundaries ---------------------------------------------------------------------------------

ALLOWED = {"flowengine.errors"} | {
    f"flowengine.runtime.{m}" for m in ("commands", "events", "ports")
}


def test_participant_modules_import_daily_lazily_and_only_the_runtime_ports() -> None:
    folder = Path(daily_package.__file__).parent
    files = sorted(folder.glob("participant*.py"))
    assert len(files) >= 4
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level: never daily-python itself
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] != "daily" for a in node.names), path.name
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "daily", path.name
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flowengine"):
                module = node.module or ""
                assert module.startswith("flowengine.daily") or module in ALLOWED, (path, module)
