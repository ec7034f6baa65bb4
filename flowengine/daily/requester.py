"""The request loop under ``DailyClient``: auth, pacing, retries, and mapping failures.

``Requester.call`` sends one Daily operation and applies the rules of ``retry.py``: what may be
sent again, after how long, and which exception ends the attempt. A request that acts (any but
``GET``) passes the send gate of ``gate.py`` once: after its limiter slot for a paced endpoint,
right before its first attempt; retries do not pass it again. It is the only code that touches
httpx's request and exception types. The API key is set on each request by an ``httpx.Auth``
from a ``Secret``, so no local variable of ours holds it, and httpx exceptions are chained
only after their tracebacks (whose frames hold the headers) are dropped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

from flowengine.daily.errors import (
    DailyAPIError,
    DailyConfigError,
    DailyError,
    DailyOutcomeUnknownError,
    DailyRateLimitError,
    DailyServerError,
    DailyTransportError,
)
from flowengine.daily.gate import pass_gate
from flowengine.daily.limiter import Limiter
from flowengine.daily.models import JSONObject
from flowengine.daily.retry import Endpoint, Repeat, RetryPolicy
from flowengine.daily.secret import Secret, redact

log = structlog.get_logger(__name__)

_MAX_INFO = 500

# Failures raised before any byte of the request reached Daily: safe to repeat anywhere.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)
# Problems with the request itself: sending it again cannot help.
_HOPELESS = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


class BearerAuth(httpx.Auth):
    """Sets ``Authorization: Bearer`` on each request without the key touching a local."""

    def __init__(self, key: Secret) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add the header and send the request once."""
        request.headers["Authorization"] = "Bearer " + self._key.reveal()
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(**********)"


@dataclass(slots=True)
class _Failure:
    """One failed attempt that may be retried."""

    kind: str  # "transport", "rate-limit" or "server"
    reason: str
    reached_daily: bool
    cause: BaseException | None = None
    status: int | None = None
    error_type: str | None = None
    info: str | None = None
    retry_after: float | None = None


def scrub(exc: BaseException) -> BaseException:
    """Drop the tracebacks of ``exc`` and its chain before chaining it to one of ours.

    httpx's and httpcore's frames hold the request headers in local variables; a logger that
    renders locals (structlog and rich can) would print the API key from them. The exception
    types and messages, which carry no headers, stay for debugging.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__
    return exc


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def check_base_url(base_url: str) -> str:
    """``base_url`` without a trailing slash, if it is safe to send the key to."""
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as exc:
        raise DailyConfigError("base_url", f"not a URL: {exc}") from None
    loopback = url.host in ("localhost", "127.0.0.1", "::1")
    # The key travels in a header: plain HTTP is only acceptable to a local emulator.
    if url.scheme != "https" and not (url.scheme == "http" and loopback):
        raise DailyConfigError("base_url", "must be https:// (http:// only for a local host)")
    return base_url.rstrip("/")


def unknown(
    ep: Endpoint, path: str, reason: str, attempts: int, *, status: int | None = None
) -> DailyOutcomeUnknownError:
    """The error for a request of ``ep`` whose effect cannot be known."""
    return DailyOutcomeUnknownError(
        method=ep.method,
        endpoint=path,
        reason=reason,
        effect=ep.effect,
        attempts=attempts,
        status=status,
    )


@dataclass(slots=True, kw_only=True)
class Requester:
    """Sends operations to ``base_url`` with ``http``, as the rules of each endpoint allow."""

    http: httpx.AsyncClient
    base_url: str
    key: Secret
    limiter: Limiter
    retry: RetryPolicy
    clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]
    rand: Callable[[], float]
    _auth: BearerAuth = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._auth = BearerAuth(self.key)

    async def call(self, ep: Endpoint, path: str, body: JSONObject | None) -> JSONObject:
        """Send one operation, retrying as ``ep`` allows; the JSON object Daily answered.

        Raises:
            DailyNotSentError: the send gate refused the request; nothing was sent.
        """
        started: float | None = None
        attempt = 0
        uncertain = False  # an earlier attempt may have reached Daily and acted
        while True:
            attempt += 1
            if ep.paced:
                await self.limiter.acquire()
            if started is None:
                if ep.method != "GET":
                    await pass_gate(ep.method, path)
                started = self.clock()
            try:
                response = await self.http.request(
                    ep.method, self.base_url + path, json=body, auth=self._auth
                )
            except _NOT_SENT as exc:
                failure = _Failure("transport", _describe(exc), reached_daily=False, cause=exc)
            except _HOPELESS as exc:
                raise DailyTransportError(
                    method=ep.method, endpoint=path, reason=_describe(exc), attempts=attempt
                ) from scrub(exc)
            except httpx.HTTPError as exc:
                if ep.repeat is Repeat.ONCE:
                    raise unknown(ep, path, _describe(exc), attempt) from scrub(exc)
                failure = _Failure("transport", _describe(exc), reached_daily=True, cause=exc)
            else:
                result = self._answer(ep, path, response, attempt, uncertain)
                if not isinstance(result, _Failure):
                    return result
                failure = result
            uncertain = uncertain or failure.reached_daily
            delay = self._next_delay(attempt, started, failure)
            if delay is None:
                cause = scrub(failure.cause) if failure.cause else None
                raise self._give_up(ep, path, failure, attempt) from cause
            log.warning(
                "daily_request_retry",
                endpoint=ep.name,
                attempt=attempt,
                reason=failure.reason,
                delay_s=round(delay, 3),
            )
            await self.sleep(delay)

    def _answer(
        self, ep: Endpoint, path: str, response: httpx.Response, attempt: int, uncertain: bool
    ) -> JSONObject | _Failure:
        """Decode a success, raise a final error, or describe a retryable failure."""
        status = response.status_code
        if status < 300:
            log.debug("daily_request_done", endpoint=ep.name, status=status, attempt=attempt)
            return _decode(ep, path, response, attempt)
        error_type, info = self._error_body(response)
        reason = f"HTTP {status} {error_type or ''}".rstrip()
        if status == 429:
            return _Failure(
                "rate-limit",
                reason,
                reached_daily=False,
                status=status,
                error_type=error_type,
                info=info,
                retry_after=_retry_after(response),
            )
        if status >= 500:
            if ep.repeat is Repeat.ONCE:
                raise unknown(ep, path, reason, attempt, status=status)
            return _Failure(
                "server",
                reason,
                reached_daily=True,
                status=status,
                error_type=error_type,
                info=info,
            )
        error = DailyAPIError(
            method=ep.method, endpoint=path, status=status, error_type=error_type, info=info
        )
        if uncertain and ep.conflict_after_unknown:
            raise unknown(ep, path, f"{reason} to a repeat", attempt, status=status) from error
        raise error

    def _error_body(self, response: httpx.Response) -> tuple[str | None, str | None]:
        """Daily's ``{"error": type, "info": text}``, with the key redacted from the text."""
        try:
            data: Any = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            text = response.text.strip()
            return None, redact(text[:_MAX_INFO], self.key) if text else None
        error, info = data.get("error"), data.get("info")
        error_type = redact(error[:100], self.key) if isinstance(error, str) else None
        info_text = redact(str(info)[:_MAX_INFO], self.key) if info is not None else None
        return error_type, info_text

    def _next_delay(self, attempt: int, started: float, failure: _Failure) -> float | None:
        """The wait before the next attempt, or None when the budget is spent."""
        if attempt >= self.retry.max_attempts:
            return None
        delay = self.retry.delay(attempt, self.rand())
        if failure.retry_after is not None:
            delay = max(delay, failure.retry_after)
        if self.clock() - started + delay > self.retry.max_elapsed:
            return None
        return delay

    @staticmethod
    def _give_up(ep: Endpoint, path: str, failure: _Failure, attempts: int) -> DailyError:
        if failure.kind == "rate-limit":
            return DailyRateLimitError(
                method=ep.method,
                endpoint=path,
                error_type=failure.error_type,
                info=failure.info,
                retry_after=failure.retry_after,
            )
        if failure.kind == "server" and failure.status is not None:
            return DailyServerError(
                method=ep.method,
                endpoint=path,
                status=failure.status,
                error_type=failure.error_type,
                info=failure.info,
            )
        return DailyTransportError(
            method=ep.method, endpoint=path, reason=failure.reason, attempts=attempts
        )


def _decode(ep: Endpoint, path: str, response: httpx.Response, attempt: int) -> JSONObject:
    if not response.content:
        return {}
    try:
        data: Any = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        reason = f"HTTP {response.status_code} with a body that is not a JSON object"
        raise unknown(ep, path, reason, attempt, status=response.status_code)
    return data


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a numeric ``Retry-After`` header; dates and nonsense are ignored."""
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 3600 else None
