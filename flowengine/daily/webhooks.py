"""Verifying (and, for the emulator and tests, signing) the requests Daily sends us.

Daily signs two kinds of request the same way: its webhooks (``X-Webhook-Signature`` and
``X-Webhook-Timestamp``, keyed by the webhook's ``hmac``) and the pinless dial-in call to our
``room_creation_api`` (``x-pinless-signature`` and ``x-pinless-timestamp``, keyed by the
dial-in config's ``hmac``). Both are ``base64(HMAC-SHA256(base64decode(secret), timestamp +
"." + raw_body))``; sources in docs/daily.md. A ``SignatureVerifier`` refuses, in this order:
an oversized body, missing, repeated or garbled headers, a wrong signature (compared in
constant time), then a timestamp outside the replay window. Parsing the body is ``events.py``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping

from flowengine.daily.errors import (
    DailyConfigError,
    WebhookPayloadError,
    WebhookReplayError,
    WebhookSignatureError,
)
from flowengine.daily.events import MILLISECONDS_FROM
from flowengine.daily.secret import Secret, as_secret

WEBHOOK_SIGNATURE_HEADER = "X-Webhook-Signature"
WEBHOOK_TIMESTAMP_HEADER = "X-Webhook-Timestamp"
PINLESS_SIGNATURE_HEADER = "x-pinless-signature"
PINLESS_TIMESTAMP_HEADER = "x-pinless-timestamp"

DEFAULT_TOLERANCE = 300.0
"""Seconds a signature stays acceptable, either way of our clock."""
DEFAULT_MAX_BODY_BYTES = 256 * 1024
"""Daily's telephony events are a few hundred bytes; anything near this is not Daily."""

_TIMESTAMP = re.compile(r"[0-9]{1,20}(\.[0-9]{1,9})?")
_SHA256_BYTES = 32


def decode_secret(secret: str | Secret, setting: str) -> bytes:
    """The HMAC key inside a base64 ``hmac`` secret as Daily issues it.

    Raises:
        DailyConfigError: the secret is not base64 or is empty (the value is not shown).
    """
    wrapped = as_secret(secret)
    del secret  # only the wrapper stays in this frame's locals
    key = _b64decode(wrapped.reveal())
    if key is None:
        raise DailyConfigError(setting, "is not base64 (use the hmac Daily returned)")
    if not key:
        raise DailyConfigError(setting, "is empty")
    return key


def _b64decode(text: str) -> bytes | None:
    # A helper, so that the raw text is gone with this frame when the caller raises.
    text = text.strip()
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def compute_signature(key: bytes, timestamp: str, body: bytes) -> str:
    """``base64(HMAC-SHA256(key, timestamp + "." + body))``, the value of the header."""
    mac = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return base64.b64encode(mac.digest()).decode("ascii")


def parse_timestamp(value: str) -> float:
    """Seconds since the epoch from a timestamp header in seconds or milliseconds."""
    if not _TIMESTAMP.fullmatch(value):
        raise WebhookSignatureError("timestamp header is not a number")
    seconds = float(value)
    if seconds >= MILLISECONDS_FROM:
        seconds /= 1000.0
    if not math.isfinite(seconds):
        raise WebhookSignatureError("timestamp header is out of range")
    return seconds


class SignatureVerifier:
    """Checks one kind of signed request from Daily: its size, signature and age.

    Args:
        secret: the base64 ``hmac`` secret Daily signs with.
        signature_header, timestamp_header: where Daily puts the two values.
        tolerance: seconds of difference allowed between the timestamp and our clock.
        max_body_bytes: larger bodies are refused before any hashing.
        clock: Unix time now; injectable for tests.
        setting: the setting name the secret came from, for configuration errors.
    """

    def __init__(
        self,
        secret: str | Secret,
        *,
        signature_header: str,
        timestamp_header: str,
        tolerance: float = DEFAULT_TOLERANCE,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        clock: Callable[[], float] = time.time,
        setting: str = "secret",
    ) -> None:
        wrapped = as_secret(secret)
        del secret  # only the wrapper stays in this frame's locals
        self.signature_header = signature_header.lower()
        self.timestamp_header = timestamp_header.lower()
        self.tolerance = tolerance
        self.max_body_bytes = max_body_bytes
        self._clock = clock
        # A keyed HMAC to copy per request: the key is in no attribute repr or local of verify().
        self._mac = hmac.new(decode_secret(wrapped, setting), digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        header = getattr(self, "signature_header", None)
        return f"SignatureVerifier(signature_header={header!r}, secret=**********)"

    def verify(self, headers: Mapping[str, str] | Iterable[tuple[str, str]], body: bytes) -> float:
        """Refuse the request unless it is authentic and fresh; return its Unix time.

        ``headers`` may be any mapping or a list of pairs; names match case-insensitively,
        and a signature or timestamp header given twice is refused as ambiguous.

        Raises:
            WebhookPayloadError: the body is larger than ``max_body_bytes`` (status 413).
            WebhookSignatureError: a header is missing, repeated or garbled, or the
                signature does not match.
            WebhookReplayError: the signature matches but the timestamp is outside the window.
        """
        if len(body) > self.max_body_bytes:
            raise WebhookPayloadError(
                None, f"body is larger than {self.max_body_bytes} bytes", http_status=413
            )
        signature = self._header(headers, self.signature_header)
        timestamp = self._header(headers, self.timestamp_header)
        sent_at = parse_timestamp(timestamp)
        try:
            given = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise WebhookSignatureError("signature header is not base64") from None
        mac = self._mac.copy()
        mac.update(timestamp.encode("ascii") + b"." + body)
        expected = mac.digest()
        # compare_digest takes the same time wherever the first difference is.
        if len(given) != _SHA256_BYTES or not hmac.compare_digest(given, expected):
            raise WebhookSignatureError("signature does not match")
        now = self._clock()
        if abs(now - sent_at) > self.tolerance:
            raise WebhookReplayError(timestamp=sent_at, now=now, tolerance=self.tolerance)
        return sent_at

    @staticmethod
    def _header(headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> str:
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        values = [value for key, value in pairs if key.lower() == name]
        if not values:
            raise WebhookSignatureError(f"{name} header is missing")
        if len(values) > 1:
            raise WebhookSignatureError(f"{name} header is given more than once")
        value = values[0].strip()
        if not value or not value.isascii():
            raise WebhookSignatureError(f"{name} header is empty or not ASCII")
        return value


def webhook_verifier(
    secret: str | Secret,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    clock: Callable[[], float] = time.time,
) -> SignatureVerifier:
    """A verifier for Daily's webhooks, keyed by ``DAILY_WEBHOOK_SECRET``."""
    wrapped = as_secret(secret)
    del secret
    return SignatureVerifier(
        wrapped,
        signature_header=WEBHOOK_SIGNATURE_HEADER,
        timestamp_header=WEBHOOK_TIMESTAMP_HEADER,
        tolerance=tolerance,
        max_body_bytes=max_body_bytes,
        clock=clock,
        setting="DAILY_WEBHOOK_SECRET",
    )


def pinless_verifier(
    secret: str | Secret,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    clock: Callable[[], float] = time.time,
) -> SignatureVerifier:
    """A verifier for Daily's pinless dial-in requests, keyed by ``DAILY_PINLESS_SECRET``."""
    wrapped = as_secret(secret)
    del secret
    return SignatureVerifier(
        wrapped,
        signature_header=PINLESS_SIGNATURE_HEADER,
        timestamp_header=PINLESS_TIMESTAMP_HEADER,
        tolerance=tolerance,
        max_body_bytes=max_body_bytes,
        clock=clock,
        setting="DAILY_PINLESS_SECRET",
    )


def _sign(
    secret: str | Secret, timestamp: int | float | str, body: bytes, names: tuple[str, str]
) -> dict[str, str]:
    stamp = str(timestamp)  # str(float) is its shortest exact form, never an exponent here
    signature = compute_signature(decode_secret(secret, "secret"), stamp, body)
    return {names[0]: signature, names[1]: stamp}


def sign_webhook(secret: str | Secret, timestamp: int | float | str, body: bytes) -> dict[str, str]:
    """The headers Daily would send with ``body`` as a webhook (for the emulator and tests)."""
    return _sign(secret, timestamp, body, (WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER))


def sign_pinless(secret: str | Secret, timestamp: int | float | str, body: bytes) -> dict[str, str]:
    """The headers Daily would send with ``body`` as a pinless dial-in request."""
    return _sign(secret, timestamp, body, (PINLESS_SIGNATURE_HEADER, PINLESS_TIMESTAMP_HEADER))


def is_test_request(body: bytes) -> bool:
    """Whether ``body`` is the check Daily sends when a webhook is created or reactivated.

    Daily's verification POST carries ``{"test": "test"}`` (``{"Test": "test"}`` in Daily's
    pinless examples) and must be answered 200 quickly; it is not an event. Pinless dial-in
    test bodies (``{"To": ...}`` alone) are recognised by ``events.parse_pinless``.
    """
    if len(body) > 64:
        return False
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return data in ({"test": "test"}, {"Test": "test"})
