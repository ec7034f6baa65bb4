"""``DailyClient``: Daily's REST API for telephony, rate-limited, retried, never doubled.

The one place flowengine calls Daily's REST API; the runtime's Telephony port is wired to it
elsewhere. Requests are the typed dataclasses of ``models.py``, failures the exceptions of
``errors.py``; ``requester.py`` runs the retry loop by the rules of ``retry.py``, and
telephony requests queue in ``limiter.py``. The API key lives in a ``Secret``: it is in no
repr, message or log line.

What happens after a failure depends on the endpoint (docs/daily.md explains why):

====================  ==================================  =====  ===============================
method                request                             paced  after a timeout, a dropped
                                                                 connection, or a 5xx
====================  ==================================  =====  ===============================
get_room              GET /rooms/:name                    no     retried
create_room           POST /rooms                         no     retried; a 4xx to a repeat:
                                                                 the named room is looked up,
                                                                 else DailyOutcomeUnknownError
delete_room           DELETE /rooms/:name                 no     retried; 404 -> False
create_meeting_token  POST /meeting-tokens                no     retried
start_dial_out        POST /rooms/:name/dialOut/start     yes    DailyOutcomeUnknownError
stop_dial_out         POST /rooms/:name/dialOut/stop      no     retried; 404 -> False
send_dtmf             POST /rooms/:name/dialOut/sendDTMF  yes    DailyOutcomeUnknownError
sip_call_transfer     POST /rooms/:name/sipCallTransfer   yes    DailyOutcomeUnknownError
sip_refer             POST /rooms/:name/sipRefer          yes    DailyOutcomeUnknownError
pinless_call_update   POST /dialin/pinlessCallUpdate      no     retried; a 4xx to a repeat:
                                                                 DailyOutcomeUnknownError
====================  ==================================  =====  ===============================

For every endpoint a connect error (the request never left) and a 429 (Daily refused it before
acting) are retried, and any other 4xx is raised at once as ``DailyAPIError``. Retries back off
exponentially with jitter, within ``RetryPolicy.max_attempts`` and ``RetryPolicy.max_elapsed``.

A caller that records each request before it goes out sets a send gate (``gate.send_gate``):
every request but a ``GET`` asks it once, after its pacing slot and right before its first
attempt, and raises ``DailyNotSentError`` (nothing sent) when it refuses.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import httpx

from flowengine.daily import retry as rules
from flowengine.daily.errors import DailyAPIError, DailyConfigError, DailyError
from flowengine.daily.errors import DailyOutcomeUnknownError as _Unknown
from flowengine.daily.limiter import Limiter, telephony_limiter
from flowengine.daily.models import (
    DialOutRequest,
    DtmfMethod,
    JSONObject,
    MeetingTokenSpec,
    PinlessCallUpdateRequest,
    Room,
    RoomSpec,
    SendDtmfRequest,
    SipCallTransferRequest,
    SipReferRequest,
    StopDialOutRequest,
    check_room_name,
)
from flowengine.daily.requester import Requester, check_base_url, unknown
from flowengine.daily.retry import Endpoint, RetryPolicy
from flowengine.daily.secret import Secret, as_secret

DEFAULT_BASE_URL = "https://api.daily.co/v1"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class DailyClient:
    """Async client for Daily's telephony REST calls; use as ``async with DailyClient(...)``.

    Args:
        api_key: the Daily domain's API key (``DAILY_API_KEY``).
        base_url: Daily's API root; ``http://127.0.0.1:<port>/v1`` for a local emulator.
        http: the ``httpx.AsyncClient`` to send with (tests pass one on a ``MockTransport``);
            the client closes only one it made itself.
        limiter: paces telephony requests; share one per Daily domain and process.
        retry: bounds on retrying; ``retry.NO_RETRY`` turns retrying off.
        clock, sleep, rand: time and randomness, injectable for tests.

    Raises:
        DailyConfigError: the key is empty or malformed, or the URL is not https.
    """

    def __init__(
        self,
        api_key: str | Secret,
        *,
        base_url: str = DEFAULT_BASE_URL,
        http: httpx.AsyncClient | None = None,
        limiter: Limiter | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        key = as_secret(api_key)
        del api_key  # from here on only the wrapper is in this frame's locals
        if not key:
            raise DailyConfigError("DAILY_API_KEY", "is empty")
        if any(c.isspace() or not c.isprintable() for c in key.reveal()):
            raise DailyConfigError("DAILY_API_KEY", "contains whitespace or control characters")
        self._key = key
        self.base_url = check_base_url(base_url)
        self.limiter = telephony_limiter(clock=clock, sleep=sleep) if limiter is None else limiter
        self.retry = RetryPolicy() if retry is None else retry
        self._owns_http = http is None
        self._requester = Requester(
            http=httpx.AsyncClient(timeout=DEFAULT_TIMEOUT) if http is None else http,
            base_url=self.base_url,
            key=key,
            limiter=self.limiter,
            retry=self.retry,
            clock=clock,
            sleep=sleep,
            rand=rand,
        )

    def __repr__(self) -> str:
        # getattr: tracebacks may show a client whose __init__ raised half-way.
        base_url = getattr(self, "base_url", None)
        return f"DailyClient(base_url={base_url!r}, api_key=Secret('**********'))"

    async def __aenter__(self) -> DailyClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this client made it."""
        if self._owns_http:
            await self._requester.http.aclose()

    async def _call(self, ep: Endpoint, path: str, body: JSONObject | None) -> JSONObject:
        return await self._requester.call(ep, path, body)

    # -- rooms and tokens ---------------------------------------------------------------------

    async def create_room(self, spec: RoomSpec) -> Room:
        """Create a room; returns its name, URL and SIP endpoint.

        Raises:
            DailyOutcomeUnknownError: the answer was lost and, for an unnamed room, Daily may
                have made it (it expires at ``spec.exp``); a named room is looked up first.
        """
        try:
            data = await self._call(rules.CREATE_ROOM, "/rooms", spec.to_json())
        except _Unknown:
            if spec.name is None:
                raise
            # The lost attempt probably made the room and the repeat was refused as a duplicate.
            try:
                return await self.get_room(spec.name)
            except DailyError:
                pass
            raise
        return _room(rules.CREATE_ROOM, "/rooms", data)

    async def get_room(self, name: str) -> Room:
        """The room called ``name``; ``DailyAPIError`` with status 404 if there is none."""
        path = f"/rooms/{check_room_name(name)}"
        return _room(rules.GET_ROOM, path, await self._call(rules.GET_ROOM, path, None))

    async def delete_room(self, name: str) -> bool:
        """Delete a room: True if deleted now, False if it did not exist (or is gone already)."""
        try:
            await self._call(rules.DELETE_ROOM, f"/rooms/{check_room_name(name)}", None)
        except DailyAPIError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def create_meeting_token(self, spec: MeetingTokenSpec) -> str:
        """A meeting token for the bot to join a room. It is a credential: never log it."""
        path = "/meeting-tokens"
        data = await self._call(rules.CREATE_MEETING_TOKEN, path, spec.to_json())
        return _string(rules.CREATE_MEETING_TOKEN, path, data, "token")

    # -- telephony ----------------------------------------------------------------------------

    async def start_dial_out(self, room: str, request: DialOutRequest) -> str:
        """Start a dial-out leg in ``room``; returns its ``sessionId``.

        Raises:
            DailyOutcomeUnknownError: the leg may have started; wait for ``dialout.*``.
        """
        ep, path = rules.DIAL_OUT_START, f"/rooms/{check_room_name(room)}/dialOut/start"
        return _string(ep, path, await self._call(ep, path, request.to_json()), "sessionId")

    async def stop_dial_out(self, room: str, session_id: str) -> bool:
        """Hang up a dial-out leg: True if stopped now, False if Daily did not find it."""
        body = StopDialOutRequest(session_id=session_id).to_json()
        path = f"/rooms/{check_room_name(room)}/dialOut/stop"
        try:
            await self._call(rules.DIAL_OUT_STOP, path, body)
        except DailyAPIError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def send_dtmf(
        self,
        room: str,
        session_id: str,
        tones: str,
        *,
        method: DtmfMethod | None = None,
        digit_duration_ms: int | None = None,
    ) -> None:
        """Play DTMF ``tones`` into the telephony session ``session_id``.

        Raises:
            DailyOutcomeUnknownError: the tones may have been sent; they are not sent again.
        """
        body = SendDtmfRequest(
            session_id=session_id, tones=tones, method=method, digit_duration_ms=digit_duration_ms
        ).to_json()
        await self._call(rules.SEND_DTMF, f"/rooms/{check_room_name(room)}/dialOut/sendDTMF", body)

    async def sip_call_transfer(
        self,
        room: str,
        session_id: str,
        to_end_point: str,
        *,
        caller_id: str | None = None,
        extension: str | None = None,
        wait_before_extension_dial_sec: int | None = None,
    ) -> None:
        """Transfer a leg to a SIP URI or a number; Daily stays in the media path.

        Raises:
            DailyOutcomeUnknownError: the transfer may have started; wait for
                ``calltransfer.*``.
        """
        body = SipCallTransferRequest(
            session_id=session_id,
            to_end_point=to_end_point,
            caller_id=caller_id,
            extension=extension,
            wait_before_extension_dial_sec=wait_before_extension_dial_sec,
        ).to_json()
        path = f"/rooms/{check_room_name(room)}/sipCallTransfer"
        await self._call(rules.SIP_CALL_TRANSFER, path, body)

    async def sip_refer(self, room: str, session_id: str, to_end_point: str) -> None:
        """Send a SIP REFER so the caller's own SIP system takes the call back; Daily leaves.

        Raises:
            DailyOutcomeUnknownError: the REFER may have been sent; wait for
                ``calltransfer.triggered``.
        """
        body = SipReferRequest(session_id=session_id, to_end_point=to_end_point).to_json()
        await self._call(rules.SIP_REFER, f"/rooms/{check_room_name(room)}/sipRefer", body)

    async def pinless_call_update(self, call_id: str, call_domain: str, sip_uri: str) -> None:
        """Route a held pinless call to a room's SIP URI, once the room is dialin-ready.

        Raises:
            DailyOutcomeUnknownError: a repeat was refused after an answer was lost, so the
                call may already be routed; wait for ``dialin.connected``.
        """
        body = PinlessCallUpdateRequest(
            call_id=call_id, call_domain=call_domain, sip_uri=sip_uri
        ).to_json()
        await self._call(rules.PINLESS_CALL_UPDATE, "/dialin/pinlessCallUpdate", body)


def _string(ep: Endpoint, path: str, data: JSONObject, key: str) -> str:
    """A required string field of a success answer."""
    value = data.get(key)
    if not isinstance(value, str) or not value:
        # Daily said yes (so it acted) but we cannot tell what it made.
        raise unknown(ep, path, f"a success answer without {key!r}", 1)
    return value


def _room(ep: Endpoint, path: str, data: JSONObject) -> Room:
    """A ``Room`` from Daily's room object; the SIP URI is in ``config.sip_uri``."""
    name, url = data.get("name"), data.get("url")
    if not isinstance(name, str) or not isinstance(url, str):
        raise unknown(ep, path, "a room answer without 'name' and 'url'", 1)
    config = _object(data.get("config"))
    sip_uri = _object(config.get("sip_uri"))
    endpoint, extra = sip_uri.get("endpoint"), sip_uri.get("extra_endpoints")
    room_id, privacy = data.get("id"), data.get("privacy")
    return Room(
        name=name,
        url=url,
        id=room_id if isinstance(room_id, str) else None,
        privacy=privacy if isinstance(privacy, str) else None,
        sip_endpoint=_sip(endpoint) if isinstance(endpoint, str) else None,
        extra_sip_endpoints=tuple(
            _sip(e) for e in (extra if isinstance(extra, list) else ()) if isinstance(e, str)
        ),
        config=config,
    )


def _object(value: object) -> JSONObject:
    return value if isinstance(value, dict) else {}


def _sip(endpoint: str) -> str:
    """Daily gives the endpoint without a scheme; a dialable URI needs ``sip:``."""
    return endpoint if endpoint.startswith(("sip:", "sips:")) else f"sip:{endpoint}"
