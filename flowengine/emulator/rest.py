"""Daily's REST surface under ``/v1``, as Starlette routes over the emulated domain.

Every request goes through the same steps, in the order Daily's own answers suggest: the
``Authorization: Bearer`` header (400 ``authorization-header-error`` when missing or
malformed, 401 ``authentication-error`` for a wrong key), the injected REST faults (a 429 or
500 before anything is done), the rate limit of the endpoint's tier (429
``rate-limit-error``), the JSON body (400 ``json-parsing-error``), then the operation, whose
refusals are Daily-shaped ``{"error", "info"}`` answers (400 ``invalid-request-error``, 404
``not-found``). Each request is written to the ``RequestLog`` with whether it acted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flowengine.emulator.bodies import ApiError
from flowengine.emulator.dialin import DialIn
from flowengine.emulator.dialout import DialOut
from flowengine.emulator.faults import Dice, Limiter, RestFault
from flowengine.emulator.log import EFFECTFUL, RequestLog
from flowengine.emulator.network import Network
from flowengine.emulator.timeline import Timeline
from flowengine.emulator.transfers import Transfers

Operation = Callable[[Request, dict[str, Any]], dict[str, Any]]
Sleep = Callable[[float], Awaitable[None]]

_BEARER = re.compile(r"Bearer ([!-~]+)")


def error(status: int, error_type: str, info: str) -> JSONResponse:
    """A Daily error answer."""
    return JSONResponse({"error": error_type, "info": info}, status_code=status)


def check_auth(request: Request, api_key: str) -> ApiError | None:
    """The authentication refusal for ``request``, if any."""
    header = request.headers.getlist("authorization")
    match = _BEARER.fullmatch(header[0].strip()) if len(header) == 1 else None
    if match is None:
        return ApiError(
            400,
            "authorization-header-error",
            "the Authorization header is missing or malformed (expected: Bearer <API key>)",
        )
    if match.group(1) != api_key:
        return ApiError(401, "authentication-error", "the API key is not valid")
    return None


class RestApi:
    """The ``/v1`` routes; the emulator owns one and swaps ``dice`` when faults change."""

    def __init__(
        self,
        *,
        network: Network,
        dialout: DialOut,
        transfers: Transfers,
        dialin: DialIn,
        timeline: Timeline,
        log: RequestLog,
        api_key: Callable[[], str],
        dice: Callable[[], Dice],
        limiter: Callable[[], Limiter | None],
        sleep: Sleep,
    ) -> None:
        self.network = network
        self.dialout = dialout
        self.transfers = transfers
        self.dialin = dialin
        self.timeline = timeline
        self.log = log
        self._api_key = api_key
        self._dice = dice
        self._limiter = limiter
        self._sleep = sleep

    def routes(self) -> list[Route]:
        """Daily's endpoints, each named as ``flowengine.daily.retry`` names it."""
        net, dialout, transfers, dialin = self.network, self.dialout, self.transfers, self.dialin

        def room(request: Request) -> str:
            return str(request.path_params["name"])

        at = "/v1/rooms/{name}"
        ops: list[tuple[str, str, str, Operation]] = [
            ("/v1/rooms", "POST", "rooms/create", lambda r, b: net.create_room(b).to_json()),
            ("/v1/rooms", "GET", "rooms/list", lambda r, b: self._list_rooms()),
            (at, "GET", "rooms/get", lambda r, b: net.room(room(r)).to_json()),
            (at, "DELETE", "rooms/delete", lambda r, b: net.delete_room(room(r))),
            (
                "/v1/meeting-tokens",
                "POST",
                "meeting-tokens/create",
                lambda r, b: {"token": net.create_token(b)},
            ),
            (
                f"{at}/dialOut/start",
                "POST",
                "dialOut/start",
                lambda r, b: dialout.start(room(r), b),
            ),
            (f"{at}/dialOut/stop", "POST", "dialOut/stop", lambda r, b: dialout.stop(room(r), b)),
            (
                f"{at}/dialOut/sendDTMF",
                "POST",
                "dialOut/sendDTMF",
                lambda r, b: dialout.send_dtmf(room(r), b),
            ),
            (
                f"{at}/sipCallTransfer",
                "POST",
                "sipCallTransfer",
                lambda r, b: transfers.transfer(room(r), b),
            ),
            (f"{at}/sipRefer", "POST", "sipRefer", lambda r, b: transfers.refer(room(r), b)),
            (
                "/v1/dialin/pinlessCallUpdate",
                "POST",
                "dialin/pinlessCallUpdate",
                lambda r, b: dialin.pinless_update(b),
            ),
        ]
        return [
            Route(path, self._handler(endpoint, op), methods=[method], name=endpoint)
            for path, method, endpoint, op in ops
        ]

    def _list_rooms(self) -> dict[str, Any]:
        rooms = [r.to_json() for r in self.network.state.rooms.values()]
        return {"total_count": len(rooms), "data": rooms[:100]}

    def _handler(self, endpoint: str, op: Operation) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            raw = await request.body()
            body: Any = _parse_or_text(raw)
            answer, acted, fault = await self._answer(request, endpoint, op, raw)
            status = answer.status_code
            self.log.add(
                time=self.timeline.clock.now(),
                method=request.method,
                path=request.url.path,
                endpoint=endpoint,
                body=body,
                status=status,
                answer=json.loads(bytes(answer.body)),
                acted=acted,
                fault=fault.name,
            )
            return answer

        return handle

    async def _answer(
        self, request: Request, endpoint: str, op: Operation, raw: bytes
    ) -> tuple[JSONResponse, bool, RestFault]:
        """(the answer, whether it acted, the fault applied)."""
        refused = check_auth(request, self._api_key())
        if refused is not None:
            return error(refused.status, refused.error, refused.info), False, RestFault()
        fault = self._dice().rest(endpoint)
        if fault.refuse == 429:
            return _rate_limited(), False, fault
        if fault.refuse is not None:
            return _server_error(), False, fault
        limiter = self._limiter()
        if limiter is not None and not limiter.allow(endpoint, self.timeline.clock.now()):
            return _rate_limited(), False, RestFault()
        try:
            body = _json_object(raw) if request.method == "POST" else {}
            result = op(request, body)
        except ApiError as exc:
            return error(exc.status, exc.error, exc.info), False, fault
        acted = endpoint in EFFECTFUL
        if fault.slow:
            await self._sleep(fault.slow)
        if fault.fail_after:
            return _server_error(), acted, fault
        return JSONResponse(result), acted, fault


def _rate_limited() -> JSONResponse:
    return error(429, "rate-limit-error", "rate limit exceeded; retry with exponential backoff")


def _server_error() -> JSONResponse:
    return error(500, "server-error", "an internal error occurred; please try again")


def _parse_or_text(raw: bytes) -> Any:
    """The body as JSON for the log, its text if it is not JSON, None if empty."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        raise ApiError(400, "json-parsing-error", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "json-parsing-error", "the request body must be a JSON object")
    return data


async def not_found_handler(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer like Daily: a JSON error, never HTML."""
    status = getattr(exc, "status_code", 404)
    if status == 405:
        return error(405, "invalid-request-error", f"{request.method} is not allowed here")
    return error(404, "not-found", f"no such endpoint: {request.url.path}")
