"""Telephony from inside the room: commands as ``CallClient`` calls, completions awaited.

Each in-room command becomes one daily-python call with Daily's own field names (the
command's ``daily_body()``), and its ``completion`` (called on a daily-python thread) resolves
an asyncio future. The result is a ``CommandResult``: success with ``{"sessionId": ...}``, or
a failure carrying the completion's error text, or ``timeout: ...`` when no completion came
within the timeout. A missing ``sessionId`` is filled from the leg the command names.

Results are remembered by command key, so a command executed twice (a replayed call) is not
performed twice while the participant lives. Each call-client request that acts passes the send
gate of ``gate.py`` right before it is made (after the limiter's slot for a paced one); a gate
that refuses raises ``DailyNotSentError`` and nothing is requested.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

import structlog

from flowengine.daily.gate import pass_gate
from flowengine.daily.limiter import Limiter
from flowengine.daily.participant_client import (
    CallClientLike,
    Completion,
    completion_to_future,
    error_of,
)
from flowengine.runtime.commands import (
    Command,
    SendDtmf,
    SipCallTransfer,
    SipRefer,
    StartDialOut,
    StopDialOut,
)
from flowengine.runtime.ports import CommandResult

log = structlog.get_logger(__name__)

Invoke = Callable[[CallClientLike, Completion], None]
"""Calls one CallClient method, passing it the completion."""

Late = Callable[["asyncio.Future[tuple[Any, ...]]"], None]

IN_ROOM: dict[type[Command], str] = {
    StartDialOut: "start_dialout",
    StopDialOut: "stop_dialout",
    SendDtmf: "send_dtmf",
    SipCallTransfer: "sip_call_transfer",
    SipRefer: "sip_refer",
}
"""The commands carried out through the call client, and the method each one calls."""

_PACED = frozenset({"start_dialout", "send_dtmf", "sip_call_transfer", "sip_refer"})


async def request(
    client: CallClientLike,
    name: str,
    invoke: Invoke,
    *,
    within: float,
    late: Late | None = None,
) -> tuple[tuple[Any, ...] | None, str | None]:
    """Call a CallClient method and wait for its completion: (its arguments, an error text).

    Gives up after ``within`` seconds; ``late`` is then called with the completion's future
    once it arrives.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[tuple[Any, ...]] = loop.create_future()
    try:
        invoke(client, completion_to_future(loop, future))
    except Exception as exc:  # daily-python refuses bad settings by raising
        return None, f"{name}: {type(exc).__name__}: {exc}"
    try:
        # shield: on a timeout the future stays pending, so a late answer still lands.
        args = await asyncio.wait_for(asyncio.shield(future), within)
    except TimeoutError:
        if late is not None:
            future.add_done_callback(late)
        log.warning("participant.timeout", method=name, seconds=within)
        return None, f"timeout: no answer to {name} within {within:g}s"
    error = error_of(args)
    return args, None if error is None else f"{name}: {error}"


class RoomCommands:
    """One call's in-room telephony, on one call client.

    Args:
        client: the joined call client.
        sessions: Daily session ids by leg name, shared with the participant, which fills in
            the caller's from ``dialin-connected``; dial-outs are added here.
        timeout: seconds to wait for each completion.
        limiter: paces the requests Daily rate-limits (all but stop_dialout).
    """

    def __init__(
        self,
        client: CallClientLike,
        sessions: dict[str, str],
        *,
        timeout: float,
        limiter: Limiter | None = None,
    ) -> None:
        self.client = client
        self.sessions = sessions
        self.timeout = timeout
        self.limiter = limiter
        self._results: dict[str, CommandResult] = {}

    @staticmethod
    def handles(command: Command) -> bool:
        """True for a command the call client can carry out.

        A transfer to a room without its SIP URI is not one: only Daily's REST API can look
        the room's endpoint up.
        """
        if isinstance(command, SipCallTransfer) and not command.to_end_point:
            return False
        return type(command) in IN_ROOM

    async def run(self, command: Command) -> CommandResult:
        """Carry out ``command`` (one that ``handles`` accepts), at most once per key."""
        done = self._results.get(command.key)
        if done is None:
            done = self._results[command.key] = await self._run(command)
        return done

    async def _run(self, command: Command) -> CommandResult:
        name = IN_ROOM[type(command)]
        if name in _PACED and self.limiter is not None:
            await self.limiter.acquire()
        if isinstance(command, StartDialOut):
            return await self._start_dial_out(command)
        body = command.daily_body()
        leg = getattr(command, "leg", None)
        sid = body.get("sessionId") or (self.sessions.get(leg) if leg else None)
        if not sid:
            return CommandResult.failure(f"{name}: no session id known for leg {leg!r}")
        body["sessionId"] = sid
        await pass_gate("call-client", name)

        def invoke(c: CallClientLike, done: Completion) -> None:
            if isinstance(command, StopDialOut):
                c.stop_dialout(sid, completion=done)
            elif isinstance(command, SendDtmf):
                c.send_dtmf(body, completion=done)
            elif isinstance(command, SipCallTransfer):
                c.sip_call_transfer(body, completion=done)
            else:
                c.sip_refer(body, completion=done)

        _, error = await request(self.client, name, invoke, within=self.timeout)
        if error is not None:
            return CommandResult.failure(error, {"sessionId": sid})
        return CommandResult.success({"sessionId": sid})

    async def _start_dial_out(self, command: StartDialOut) -> CommandResult:
        settings = command.daily_body()
        await pass_gate("call-client", "start_dialout")
        args, error = await request(
            self.client,
            "start_dialout",
            lambda c, done: c.start_dialout(settings, completion=done),
            within=self.timeout,
            late=partial(self._late_dial_out, command.leg),
        )
        if error is not None:
            return CommandResult.failure(error)
        sid = args[0] if args and len(args) > 1 else None
        if not isinstance(sid, str) or not sid:
            # daily-python before 0.21 answered with the error only: the leg's session id
            # then arrives with its dialout.* events instead.
            return CommandResult.success()
        self.sessions[command.leg] = sid
        return CommandResult.success({"sessionId": sid})

    def _late_dial_out(self, leg: str, future: asyncio.Future[tuple[Any, ...]]) -> None:
        """A dial-out accepted after its command failed with a timeout: nobody tracks that
        leg, so it is stopped rather than left ringing."""
        if future.cancelled():
            return
        args = future.result()
        sid = args[0] if len(args) > 1 and error_of(args) is None else None
        if isinstance(sid, str) and sid:
            log.warning("participant.late_dial_out_stopped", leg=leg, session_id=sid)
            self.client.stop_dialout(sid, completion=_ignore)

    async def eject_remote(self) -> CommandResult:
        """Eject everyone else from the room (the phone legs): how a call hangs up in-room."""
        remote = [pid for pid in self.client.participants() if pid != "local"]
        if not remote:
            return CommandResult.success()
        await pass_gate("call-client", "eject_remote_participants")
        _, error = await request(
            self.client,
            "eject_remote_participants",
            lambda c, done: c.eject_remote_participants(remote, completion=done),
            within=self.timeout,
        )
        return CommandResult.failure(error) if error else CommandResult.success()

    async def leave(self) -> str | None:
        """Leave the room; the error text, if any."""
        _, error = await request(
            self.client, "leave", lambda c, done: c.leave(completion=done), within=self.timeout
        )
        return error


def _ignore(error: str | None) -> None:
    """A completion whose answer nobody needs (runs on a daily-python thread)."""
    if error:
        log.warning("participant.late_dial_out_stop_failed", error=error)
