"""The in-room participant: a daily-python bot that hears the call's keys and plays its prompts.

Caller key presses (``dtmf-event``) and audio exist only inside the Daily room; no webhook
carries them. ``RoomParticipant`` joins the call's room with an owner meeting token, turns
the room's events into runtime events posted to the engine for its call, and implements the
``Telephony`` port for what can be done from inside the room:

====================  ==========================================================================
command               how
====================  ==========================================================================
Play, Say             queued on the player (``participant_audio``); ``play.done`` when heard
StopPlay              stops the prompt that plays and drops the queued ones
StartDialOut          ``CallClient.start_dialout(settings)``; its session id from the completion
StopDialOut           ``CallClient.stop_dialout(session id)``
SendDtmf              ``CallClient.send_dtmf({sessionId, tones, method?, digitDurationMs?})``
SipCallTransfer       ``CallClient.sip_call_transfer({sessionId, toEndPoint, callerId?, ...})``
SipRefer              ``CallClient.sip_refer({sessionId, toEndPoint})``
Hangup                the fallback's hang-up (or ejecting the phone legs), then leaving
anything else         the fallback Telephony (HTTP, Answer...), so REST and in-room mix
====================  ==========================================================================

A missing ``sessionId`` is filled from the leg the command names (the caller's from
``dialin-connected``, a dial-out's from its ``start_dialout`` completion). Completions arrive
on daily-python's threads and resolve asyncio futures (``participant_client``); each waits
``timeout`` seconds, then the command fails with ``timeout: ...``. A dial-out whose answer
comes after its timeout is stopped at once, so no leg rings on that nobody tracks.
``ParticipantRouter`` serves many calls from one engine: each call's commands go to its
participant, the rest to the fallback.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from flowengine.daily.limiter import Limiter
from flowengine.daily.participant_audio import (
    AudioFormatError,
    PcmFormat,
    Player,
    Source,
    TextToSpeech,
    check_wav,
    wav_chunks,
)
from flowengine.daily.participant_client import (
    AudioFactory,
    CallClientLike,
    ClientFactory,
    ParticipantError,
    completion_to_future,
    daily_audio_factory,
    daily_client_factory,
    error_of,
    join_settings,
)
from flowengine.daily.participant_commands import RoomCommands
from flowengine.daily.participant_events import EventBridge
from flowengine.daily.secret import Secret, as_secret
from flowengine.runtime.commands import Command, Hangup, Play, Say, StopPlay
from flowengine.runtime.events import Event, command_failed, play_done
from flowengine.runtime.ports import CommandResult, Telephony

log = structlog.get_logger(__name__)

Poster = Callable[[str, Event], object]
"""``Engine.post``: queue an event for a call."""

_LEG_ENDED = frozenset({"dialin.stopped", "dialin.error", "dialout.stopped", "dialout.error"})
_UNSUBSCRIBE_VIDEO = {"base": {"camera": "unsubscribed", "screenVideo": "unsubscribed"}}


class RoomParticipant:
    """One call's bot in its Daily room; a ``Telephony`` for that call.

    Args:
        call_id: the engine's id of the call; events are posted under it.
        room_url: the room to join (``https://<domain>.daily.co/<room>``).
        token: an owner meeting token (dial-out, transfers and ejecting need an owner).
        post: ``Engine.post``; the engine also hands it over itself through ``bind``.
        fallback: performs the commands that are not in-room (HTTP, Answer, a hang-up over
            REST), and the in-room ones while the participant is not in the room.
        client_factory: builds the call client; daily-python's ``CallClient`` by default.
        audio_factory: builds the audio output; daily-python's custom audio track by default.
        prompts_dir: where prompts' audio files are; a prompt's path may not leave it.
        tts: speaks ``say`` and text-only prompts; without one they finish at once, logged.
        audio_format: the output PCM format; WAV prompts must have its sample rate.
        timeout: how long to wait for a daily-python completion before failing the command.
        limiter: paces start_dialout, send_dtmf, sip_call_transfer and sip_refer (optional).
    """

    def __init__(
        self,
        call_id: str,
        room_url: str,
        token: str | Secret | None = None,
        *,
        post: Poster | None = None,
        fallback: Telephony | None = None,
        client_factory: ClientFactory | None = None,
        audio_factory: AudioFactory | None = None,
        prompts_dir: str | Path | None = None,
        tts: TextToSpeech | None = None,
        audio_format: PcmFormat | None = None,
        user_name: str = "flowengine",
        timeout: float = 30.0,
        join_timeout: float = 30.0,
        client_settings: Mapping[str, Any] | None = None,
        limiter: Limiter | None = None,
        chunk_ms: int = 20,
    ) -> None:
        self.call_id = call_id
        self.room_url = room_url
        self._token = None if token is None else as_secret(token)
        del token  # only the Secret stays in this frame's locals
        self.fallback = fallback
        self.tts = tts
        self.audio_format = audio_format or PcmFormat()
        self.prompts_dir = Path(prompts_dir or ".").resolve()
        self.user_name = user_name
        self.timeout = timeout
        self.join_timeout = join_timeout
        self.sessions: dict[str, str] = {}
        """Daily session ids by leg name: ``caller``, and each dial-out's leg."""
        self._post = post
        self._backlog: deque[Event] = deque(maxlen=1000)
        self._client_factory = client_factory or daily_client_factory
        self._audio_factory = audio_factory or daily_audio_factory
        self._client_settings = client_settings
        self._limiter = limiter
        self._chunk_ms = chunk_ms
        self._commands: RoomCommands | None = None
        self._player: Player | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kinds: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"RoomParticipant(call_id={self.call_id!r}, room_url={self.room_url!r})"

    @property
    def joined(self) -> bool:
        """True between a successful ``join`` and ``leave``."""
        return self._commands is not None

    @property
    def bound(self) -> bool:
        """True once the participant knows where to post events."""
        return self._post is not None

    def bind(self, post: Poster) -> None:
        """Post events with ``post`` from now on (the engine calls this); flushes the backlog."""
        self._post = post
        while self._backlog:
            self._emit(self._backlog.popleft())

    # -- the room -----------------------------------------------------------------------------

    async def join(self) -> Mapping[str, Any]:
        """Join the room; daily-python's join data (``participants``, ``meetingSession``...).

        Raises:
            DailyExtraMissingError: daily-python is not installed (with the default factories).
            ParticipantError: already joined, or the join failed or timed out.
        """
        if self._commands is not None:
            raise ParticipantError(f"already in {self.room_url}")
        loop = self._loop = asyncio.get_running_loop()
        client = self._client_factory(EventBridge(loop, self._deliver, room=self.room_url))
        fmt = self.audio_format
        try:
            output = self._audio_factory(fmt.sample_rate, fmt.channels)
            client.set_user_name(self.user_name)
            # Video is never used: not receiving it saves decoding for every call.
            client.update_subscription_profiles(_UNSUBSCRIBE_VIDEO)
            future: asyncio.Future[tuple[Any, ...]] = loop.create_future()
            client.join(
                self.room_url,
                self._token.reveal() if self._token else None,
                client_settings=join_settings(output, fmt.channels, self._client_settings),
                completion=completion_to_future(loop, future),
            )
            args = await asyncio.wait_for(asyncio.shield(future), self.join_timeout)
        except TimeoutError:
            await self._release(client)
            raise ParticipantError(
                f"joining {self.room_url} timed out after {self.join_timeout:g}s"
            ) from None
        except BaseException:
            await self._release(client)
            raise
        error = error_of(args)
        if error is not None:
            await self._release(client)
            raise ParticipantError(f"could not join {self.room_url}: {error}")
        self._commands = RoomCommands(
            client, self.sessions, timeout=self.timeout, limiter=self._limiter
        )
        self._player = Player(
            output,
            fmt,
            on_done=partial(self._from_thread, self._played),
            on_failed=partial(self._from_thread, self._play_failed),
            chunk_ms=self._chunk_ms,
            name=f"flowengine-player-{self.call_id}",
        )
        log.info("participant.room_joined", call_id=self.call_id, room=self.room_url)
        return args[0] if args and isinstance(args[0], Mapping) else {}

    async def leave(self) -> None:
        """Stop playing, leave the room and release the client; does nothing if not joined."""
        commands, self._commands = self._commands, None
        player, self._player = self._player, None
        loop = asyncio.get_running_loop()
        if player is not None:
            await loop.run_in_executor(None, player.close)  # joins the worker thread
        if commands is None:
            return
        error = await commands.leave()
        if error is not None:
            log.warning("participant.leave_failed", call_id=self.call_id, error=error)
        await self._release(commands.client)
        log.info("participant.room_left", call_id=self.call_id, room=self.room_url)

    async def __aenter__(self) -> RoomParticipant:
        await self.join()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.leave()

    async def _release(self, client: CallClientLike) -> None:
        # release() blocks until daily-python's pending operations end: keep it off the loop.
        await asyncio.get_running_loop().run_in_executor(None, client.release)

    # -- events in ----------------------------------------------------------------------------

    def _deliver(self, event: Event) -> None:
        """On the loop: keep track of legs' session ids, name the leg, post the event."""
        sid = event.session_id
        leg = next((name for name, known in self.sessions.items() if known == sid), None)
        if event.name == "dialin.connected" and sid:
            self.sessions["caller"], leg = sid, "caller"
        elif event.name in _LEG_ENDED and leg is not None:
            del self.sessions[leg]
        if leg is not None and event.leg is None:
            event = replace(event, leg=leg)
        self._emit(event)

    def _emit(self, event: Event) -> None:
        if self._post is None:
            self._backlog.append(event)  # the engine binds later; keep it until then
            return
        try:
            self._post(self.call_id, event)
        except Exception as exc:  # an error here must not stop the loop's other callbacks
            log.error("participant.post_failed", call_id=self.call_id, error=str(exc))

    def _from_thread(self, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback(*args)`` on the loop; called from the player's worker thread."""
        if self._loop is None:
            return
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            log.warning("participant.event_after_close", call_id=self.call_id)

    def _played(self, key: str) -> None:
        self._kinds.pop(key, None)
        self._emit(play_done(key))

    def _play_failed(self, key: str, error: str) -> None:
        kind = self._kinds.pop(key, "play")
        self._emit(command_failed(key, kind, error))

    # -- commands out -------------------------------------------------------------------------

    async def execute(self, command: Command) -> CommandResult:
        """Carry out one command of this participant's call (others go to the fallback)."""
        if command.call_id != self.call_id:
            return await self._delegate(command)
        if isinstance(command, (Play, Say)):
            return self._play(command)
        if isinstance(command, StopPlay):
            if self._player is not None:
                self._player.stop()
            return CommandResult.success()
        if isinstance(command, Hangup):
            return await self._hangup(command)
        if self._commands is None or not RoomCommands.handles(command):
            # Not an in-room command, or the participant is out of the room.
            return await self._delegate(command)
        return await self._commands.run(command)

    async def _delegate(self, command: Command) -> CommandResult:
        if self.fallback is not None:
            return await self.fallback.execute(command)
        if command.kind == "answer":
            # Without a REST side the caller reaches the room by itself (SIP dial-in); its
            # dialin.connected comes from the room.
            return CommandResult.success()
        return CommandResult.failure(f"{command.kind}: not possible from the room, no fallback")

    async def _hangup(self, command: Hangup) -> CommandResult:
        if self._player is not None:
            self._player.stop()
        if self.fallback is not None or self._commands is None:
            result = await self._delegate(command)
        else:
            result = await self._commands.eject_remote()
        await self.leave()
        return result

    # -- audio --------------------------------------------------------------------------------

    def _play(self, command: Play | Say) -> CommandResult:
        player = self._player
        if player is None:
            return CommandResult.failure(f"{command.kind}: the participant is not in the room")
        what = command.prompt if isinstance(command, Play) else "say"
        source: Source | None = None
        audio = command.audio if isinstance(command, Play) else None
        if audio:
            try:
                path = self._audio_path(audio)
                check_wav(path, self.audio_format)
                source = partial(wav_chunks, path, self.audio_format)
            except AudioFormatError as exc:
                if not (command.text and self.tts):
                    return CommandResult.failure(f"prompt {what!r}: {exc}")
                log.warning("participant.audio_unplayable", prompt=what, error=str(exc))
        if source is None:
            source = self._speech(command, what)
            if source is None:
                return CommandResult.success(finished=True)
        self._kinds[command.key] = command.kind
        player.play(command.key, source)
        return CommandResult.success()  # play.done follows when it has been heard

    def _speech(self, command: Play | Say, what: str) -> Source | None:
        text, tts = command.text, self.tts
        if not text:
            log.warning("participant.nothing_to_play", call_id=self.call_id, prompt=what)
            return None
        if tts is None:
            # Finishing at once keeps the flow moving: a call must never wait on silence.
            log.warning("participant.no_tts", call_id=self.call_id, prompt=what, text=text)
            return None
        voice = command.voice if isinstance(command, Say) else None
        fmt, locale = self.audio_format, command.locale
        return lambda: tts.synthesize(text, voice=voice, locale=locale, fmt=fmt)

    def _audio_path(self, audio: str) -> Path:
        path = (self.prompts_dir / audio).resolve()
        if not path.is_relative_to(self.prompts_dir):
            raise AudioFormatError(f"{audio}: outside the prompts directory")
        return path


class ParticipantRouter:
    """A ``Telephony`` for an engine with many calls: each call's participant, else the fallback."""

    def __init__(self, fallback: Telephony | None = None) -> None:
        self.fallback = fallback
        self.participants: dict[str, RoomParticipant] = {}
        self._post: Poster | None = None

    def bind(self, post: Poster) -> None:
        """Hand ``Engine.post`` to every participant, present and future."""
        self._post = post
        for participant in self.participants.values():
            participant.bind(post)

    def attach(self, participant: RoomParticipant) -> None:
        """Route a call's commands to its participant (which inherits the router's fallback)."""
        if participant.fallback is None:
            participant.fallback = self.fallback
        if self._post is not None and not participant.bound:
            participant.bind(self._post)
        self.participants[participant.call_id] = participant

    def detach(self, call_id: str) -> RoomParticipant | None:
        """Stop routing a call's commands to its participant (it is not made to leave)."""
        return self.participants.pop(call_id, None)

    async def execute(self, command: Command) -> CommandResult:
        """The call's participant carries it out, or else the fallback."""
        participant = self.participants.get(command.call_id)
        if participant is not None:
            return await participant.execute(command)
        if self.fallback is not None:
            return await self.fallback.execute(command)
        return CommandResult.failure(f"{command.kind}: no participant in the call's room")
