"""The daemon's Telephony adapter: the runtime's commands as Daily REST requests and HTTP calls.

Where it sits: under ``persistence.DurableTelephony`` (which journals each command and claims
it through the send gate of ``flowengine.daily.gate``) and over ``flowengine.daily.DailyClient``
(pacing, retries, the never-doubled rules). Every path of this module that acts passes the
gate right before it does: Daily's requests in the client's requester (after the pacing slot of
a paced one), ``http`` states' requests in ``BusinessHttp``. A path that acts on nothing (a
prompt without a participant, a command missing its leg) never asks it.

Every command of a call acts on the call's room, whose name the session keeps in
``call.room``. HTTP states go through ``BusinessHttp``, which refuses any host the
call's flow does not list in ``allowed_hosts`` (the checks already require a literal host; this
is the daemon's own guard), and never follows redirects (a redirect could leave the list).

Prompts: audio and key presses exist only inside the room (docs/participant.md). Without an
in-room participant this adapter cannot play a prompt; it reports ``play`` and ``say`` as
finished at once, so a flow moves on, and logs that nothing was heard.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import structlog

from .. import model as m
from ..addresses import host_allowed, url_scheme_host
from ..daily import DailyClient, DialOutRequest
from ..daily.errors import DailyAPIError, DailyError
from ..daily.gate import DailyNotSentError, pass_gate
from ..daily.models import DIAL_OUT_FIELDS, Codecs
from ..runtime import commands as c
from ..runtime.ports import CommandResult
from ..runtime.session import Session
from .metrics import Metrics

log = structlog.get_logger("flowengine.daemon.telephony")

SessionLookup = Callable[[str], Session | None]
FlowLookup = Callable[[Session], m.Flow | None]

_ENDPOINTS = {
    "answer": "dialin/pinlessCallUpdate",
    "start_dial_out": "dialOut/start",
    "stop_dial_out": "dialOut/stop",
    "send_dtmf": "dialOut/sendDTMF",
    "sip_call_transfer": "sipCallTransfer",
    "sip_refer": "sipRefer",
    "hangup": "rooms/delete",
}


class HostNotAllowedError(DailyError):
    """Raised (and reported as ``command.failed``) for a request to a host not allowed."""


class BusinessHttp:
    """Requests of ``http`` states, to the hosts the flow allows only."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def request(self, command: c.HttpRequest, allowed: tuple[str, ...]) -> CommandResult:
        """Send the request; a timeout is ``error="timeout"``, as the runtime expects.

        Raises:
            DailyNotSentError: the send gate refused the request; nothing was sent.
        """
        scheme, host = url_scheme_host(command.url)
        if scheme not in ("http", "https") or not host or not host_allowed(host, allowed):
            return CommandResult.failure(f"host {host or '?'!r} is not in allowed_hosts")
        await pass_gate(command.method, f"{scheme}://{host}")
        body = command.body
        try:
            response = await self.client.request(
                command.method,
                command.url,
                params={k: str(v) for k, v in command.params.items()},
                headers={k: str(v) for k, v in command.headers.items()},
                json=body if body is not None and not isinstance(body, str) else None,
                content=body if isinstance(body, str) else None,
                timeout=command.timeout,
                follow_redirects=False,
            )
        except httpx.TimeoutException:
            return CommandResult.failure("timeout")
        except httpx.HTTPError as exc:
            return CommandResult.failure(f"{type(exc).__name__}: {exc}")
        try:
            data: Any = response.json()
        except ValueError:
            data = None
        return CommandResult.success(
            {
                "status": response.status_code,
                "json": data,
                "text": response.text[:10_000],
                "headers": dict(response.headers),
            }
        )


class RestTelephony:
    """Carries out a call's commands through Daily's REST API."""

    gates_sends = True
    """Every request it makes passes the send gate first (``DurableTelephony`` reads this)."""

    def __init__(
        self,
        daily: DailyClient,
        http: BusinessHttp,
        *,
        sessions: SessionLookup,
        flows: FlowLookup,
        metrics: Metrics,
    ) -> None:
        self.daily = daily
        self.http = http
        self.sessions = sessions
        self.flows = flows
        self.metrics = metrics

    async def execute(self, command: c.Command) -> CommandResult:
        """Perform one command; Daily's errors are raised (the caller settles them).

        Raises:
            DailyNotSentError: the send gate refused the command's request; nothing was sent.
        """
        started = time.perf_counter()
        try:
            return await self._execute(command)
        except DailyNotSentError:
            raise
        except DailyAPIError:
            self.metrics.daily_errors.labels(_ENDPOINTS.get(command.kind, command.kind)).inc()
            raise
        except DailyError:
            self.metrics.daily_errors.labels(_ENDPOINTS.get(command.kind, command.kind)).inc()
            raise
        finally:
            self.metrics.command_seconds.labels(command.kind).observe(time.perf_counter() - started)

    async def _execute(self, command: c.Command) -> CommandResult:
        session = self.sessions(command.call_id)
        room = str(session.call.get("room") or "") if session else ""
        match command:
            case c.Play() | c.Say():
                log.debug("prompt not played: no in-room participant", call_id=command.call_id)
                return CommandResult.success(finished=True)
            case c.StopPlay():
                return CommandResult.success()
            case c.Answer(dialin_call_id=cid, call_domain=domain, sip_uri=uri):
                if cid and domain and uri:
                    await self.daily.pinless_call_update(cid, domain, uri)
                return CommandResult.success()  # a caller already in the room: nothing to do
            case c.StartDialOut(settings=settings):
                sid = await self.daily.start_dial_out(room, _dial_out(settings))
                return CommandResult.success({"sessionId": sid})
            case c.StopDialOut(leg=leg, session_id=sid):
                found = sid or _leg(session, leg)
                if found is None:
                    return CommandResult.success({"stopped": False})
                stopped = await self.daily.stop_dial_out(room, found)
                return CommandResult.success({"stopped": stopped})
            case c.SendDtmf(leg=leg, session_id=sid, tones=tones):
                found = sid or _leg(session, leg)
                if found is None or not tones:
                    return CommandResult.failure(f"leg {leg!r} has no session")
                await self.daily.send_dtmf(
                    room,
                    found,
                    tones,
                    method=command.method,  # type: ignore[arg-type]
                    digit_duration_ms=command.digit_duration_ms,
                )
                return CommandResult.success()
            case c.SipCallTransfer(leg=leg, session_id=sid):
                found = sid or _leg(session, leg)
                target = command.to_end_point
                if target is None and command.room:
                    target = (await self.daily.get_room(command.room)).sip_endpoint
                if found is None or not target:
                    return CommandResult.failure("the transfer has no session or no endpoint")
                await self.daily.sip_call_transfer(
                    room,
                    found,
                    target,
                    caller_id=command.caller_id,
                    extension=command.extension,
                    wait_before_extension_dial_sec=command.wait_before_extension_dial_sec,
                )
                return CommandResult.success()
            case c.SipRefer(leg=leg, session_id=sid, to_end_point=target):
                found = sid or _leg(session, leg)
                if found is None or not target:
                    return CommandResult.failure("the refer has no session or no endpoint")
                await self.daily.sip_refer(room, found, target)
                return CommandResult.success()
            case c.HttpRequest():
                flow = self.flows(session) if session else None
                allowed = flow.allowed_hosts if flow else ()
                return await self.http.request(command, allowed)
            case c.Hangup():
                # Deleting the room ends every leg in it; a room already gone is fine.
                if room:
                    await self.daily.delete_room(room)
                return CommandResult.success()
        return CommandResult.failure(f"the daemon cannot carry out {command.kind!r}")


def _leg(session: Session | None, leg: str) -> str | None:
    if session is None:
        return None
    return session.legs.get(leg)


def _dial_out(settings: Any) -> DialOutRequest:
    kwargs: dict[str, Any] = {
        name: settings[key] for key, name in DIAL_OUT_FIELDS.items() if key in settings
    }
    codecs = settings.get("codecs")
    if isinstance(codecs, dict):
        kwargs["codecs"] = Codecs(
            audio=tuple(codecs.get("audio", ())), video=tuple(codecs.get("video", ()))
        )
    return DialOutRequest(**kwargs)
