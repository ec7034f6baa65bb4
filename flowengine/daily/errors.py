"""Exceptions of the Daily integration, all under ``FlowEngineError``.

The bottom of ``flowengine.daily``: every other module of the package raises these, so code
outside the package catches Daily problems without knowing httpx. The tree::

    * FlowEngineError
      x DailyError
        + DailyConfigError          - a client or verifier was given an unusable setting
        + DailyRequestError         - a request was refused before it was sent
        + DailyAPIError             - Daily answered with an error: .status, .error_type, .info
          - DailyRateLimitError     - 429 until the retry budget ran out
          - DailyServerError        - 5xx until the retry budget ran out
        + DailyTransportError       - no answer from Daily, and asking again is safe
        + DailyOutcomeUnknownError  - the request may or may not have taken effect
        + WebhookError              - .http_status: what the ingress should answer
          - WebhookSignatureError   - missing or garbled signature headers, wrong signature
          - WebhookReplayError      - authentic, but signed outside the replay window
          - WebhookPayloadError     - too large, not JSON, or a field missing or invalid

No message carries the API key or a webhook secret: the client redacts Daily's ``info`` text
before it gets here, and these classes never receive a header or a secret.
"""

from __future__ import annotations

from flowengine.errors import FlowEngineError


class DailyError(FlowEngineError):
    """The root of every exception the Daily integration raises."""


class DailyConfigError(DailyError):
    """Raised when a client or verifier is built with an unusable setting."""

    def __init__(self, setting: str, reason: str) -> None:
        self.setting = setting
        self.reason = reason
        super().__init__(f"{setting}: {reason}")


class DailyRequestError(DailyError):
    """Raised before anything is sent, when a request to Daily would be invalid."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid {field}: {reason}")


class DailyAPIError(DailyError):
    """Raised when Daily answers a request with an error status that is not retried."""

    def __init__(
        self,
        *,
        method: str,
        endpoint: str,
        status: int,
        error_type: str | None,
        info: str | None,
    ) -> None:
        self.method = method
        self.endpoint = endpoint
        self.status = status
        self.error_type = error_type
        self.info = info
        kind = error_type or "no error type"
        detail = f": {info}" if info else ""
        super().__init__(f"Daily {method} {endpoint} failed: HTTP {status} {kind}{detail}")


class DailyRateLimitError(DailyAPIError):
    """Raised when Daily still answers 429 once the retry budget is spent."""

    def __init__(
        self,
        *,
        method: str,
        endpoint: str,
        error_type: str | None,
        info: str | None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(
            method=method, endpoint=endpoint, status=429, error_type=error_type, info=info
        )


class DailyServerError(DailyAPIError):
    """Raised when Daily still answers 5xx once the retry budget is spent."""


class DailyTransportError(DailyError):
    """Raised when Daily could not be reached and sending the request again is safe."""

    def __init__(self, *, method: str, endpoint: str, reason: str, attempts: int) -> None:
        self.method = method
        self.endpoint = endpoint
        self.reason = reason
        self.attempts = attempts
        super().__init__(
            f"Daily {method} {endpoint} unreachable after {attempts} attempt(s): {reason}"
        )


class DailyOutcomeUnknownError(DailyError):
    """Raised when a request may have taken effect and repeating it could do it twice.

    The caller must not send the request again blindly: it waits for the webhook that
    confirms or denies the effect (``dialout.*``, ``calltransfer.*``, ``dialin.connected``)
    or checks Daily's state.
    """

    def __init__(
        self,
        *,
        method: str,
        endpoint: str,
        reason: str,
        effect: str,
        attempts: int,
        status: int | None = None,
    ) -> None:
        self.method = method
        self.endpoint = endpoint
        self.reason = reason
        self.effect = effect
        self.attempts = attempts
        self.status = status
        super().__init__(
            f"Daily {method} {endpoint}: outcome unknown after {reason}; not sent again "
            f"because a repeat could {effect}"
        )


class WebhookError(DailyError):
    """The root of the errors that refuse an incoming webhook or pinless request."""

    http_status: int = 400


class WebhookSignatureError(WebhookError):
    """Raised when a signature header is missing or garbled, or the signature is wrong."""

    http_status = 401

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"webhook refused: {reason}")


class WebhookReplayError(WebhookError):
    """Raised when a correctly signed request was signed outside the replay window."""

    http_status = 401

    def __init__(self, *, timestamp: float, now: float, tolerance: float) -> None:
        self.timestamp = timestamp
        self.now = now
        self.tolerance = tolerance
        skew = timestamp - now
        when = "in the future" if skew > 0 else "ago"
        super().__init__(
            f"webhook refused: signed {abs(skew):.0f}s {when}, outside the "
            f"{tolerance:g}s replay window"
        )


class WebhookPayloadError(WebhookError):
    """Raised when a webhook body is too large, not JSON, or lacks a valid required field."""

    def __init__(self, field: str | None, reason: str, *, http_status: int = 400) -> None:
        self.field = field
        self.reason = reason
        self.http_status = http_status
        where = f"field {field!r} " if field else ""
        super().__init__(f"webhook payload refused: {where}{reason}")
