"""Signatures of Daily webhooks and pinless requests: only the authentic and fresh pass."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from flowengine.daily import (
    DailyConfigError,
    Secret,
    SignatureVerifier,
    WebhookPayloadError,
    WebhookReplayError,
    WebhookSignatureError,
    is_test_request,
    pinless_verifier,
    sign_pinless,
    sign_webhook,
    webhook_verifier,
)

SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER_SECRET = base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()
NOW = 1_770_113_000
BODY = (
    b'{"version":"1.0.0","type":"dialout.answered","id":"2868-dial-out-ans-5d4f",'
    b'"payload":{"room":"call-1","session_id":"5d4f"},"event_ts":1770113000.5}'
)

KINDS = {
    "webhook": (webhook_verifier, sign_webhook, "X-Webhook-Signature", "X-Webhook-Timestamp"),
    "pinless": (pinless_verifier, sign_pinless, "x-pinless-signature", "x-pinless-timestamp"),
}


@pytest.fixture(params=sorted(KINDS))
def kind(request):
    return request.param


@pytest.fixture
def verifier(kind) -> SignatureVerifier:
    make = KINDS[kind][0]
    return make(SECRET, clock=lambda: float(NOW), max_body_bytes=4096)


@pytest.fixture
def sign(kind):
    return KINDS[kind][1]


@pytest.fixture
def names(kind) -> tuple[str, str]:
    return KINDS[kind][2], KINDS[kind][3]


def test_signature_is_the_documented_scheme(sign, names):
    headers = sign(SECRET, NOW, BODY)
    mac = hmac.new(base64.b64decode(SECRET), f"{NOW}.".encode() + BODY, hashlib.sha256)
    assert headers == {names[0]: base64.b64encode(mac.digest()).decode(), names[1]: str(NOW)}


def test_valid_request_passes(verifier, sign):
    assert verifier.verify(sign(SECRET, NOW, BODY), BODY) == NOW


def test_header_names_match_in_any_case(verifier, sign):
    headers = {name.upper(): value for name, value in sign(SECRET, NOW, BODY).items()}
    assert verifier.verify(headers, BODY) == NOW
    assert verifier.verify(list(headers.items()), BODY) == NOW


def test_millisecond_timestamps_are_understood(verifier, sign):
    assert verifier.verify(sign(SECRET, NOW * 1000 + 250, BODY), BODY) == pytest.approx(NOW + 0.25)


def test_fractional_timestamps_are_understood(verifier, sign):
    assert verifier.verify(sign(SECRET, "1770113000.5", BODY), BODY) == pytest.approx(NOW + 0.5)


def test_a_secret_object_is_accepted(kind, sign):
    verifier = KINDS[kind][0](Secret(SECRET), clock=lambda: float(NOW))
    assert verifier.verify(sign(SECRET, NOW, BODY), BODY) == NOW


def test_wrong_secret_is_refused(verifier, sign):
    with pytest.raises(WebhookSignatureError, match="signature does not match"):
        verifier.verify(sign(OTHER_SECRET, NOW, BODY), BODY)


def test_modified_body_is_refused(verifier, sign):
    headers = sign(SECRET, NOW, BODY)
    with pytest.raises(WebhookSignatureError, match="signature does not match"):
        verifier.verify(headers, BODY.replace(b"call-1", b"call-2"))


def test_modified_timestamp_is_refused(verifier, sign, names):
    headers = sign(SECRET, NOW, BODY)
    headers[names[1]] = str(NOW + 1)
    with pytest.raises(WebhookSignatureError, match="signature does not match"):
        verifier.verify(headers, BODY)


def test_stale_timestamp_is_refused_as_a_replay(verifier, sign):
    with pytest.raises(WebhookReplayError) as caught:
        verifier.verify(sign(SECRET, NOW - 301, BODY), BODY)
    assert str(caught.value) == ("webhook refused: signed 301s ago, outside the 300s replay window")
    assert caught.value.http_status == 401


def test_future_timestamp_is_refused_as_a_replay(verifier, sign):
    with pytest.raises(WebhookReplayError, match="signed 301s in the future"):
        verifier.verify(sign(SECRET, NOW + 301, BODY), BODY)


def test_timestamps_at_the_edge_of_the_window_pass(verifier, sign):
    assert verifier.verify(sign(SECRET, NOW - 300, BODY), BODY) == NOW - 300
    assert verifier.verify(sign(SECRET, NOW + 300, BODY), BODY) == NOW + 300


def test_stale_millisecond_timestamp_is_refused(verifier, sign):
    with pytest.raises(WebhookReplayError):
        verifier.verify(sign(SECRET, (NOW - 3600) * 1000, BODY), BODY)


@pytest.mark.parametrize("missing", [0, 1])
def test_missing_header_is_refused(verifier, sign, names, missing):
    headers = sign(SECRET, NOW, BODY)
    del headers[names[missing]]
    with pytest.raises(WebhookSignatureError, match=f"{names[missing].lower()} header is missing"):
        verifier.verify(headers, BODY)


def test_no_headers_at_all_is_refused(verifier):
    with pytest.raises(WebhookSignatureError, match="missing"):
        verifier.verify({}, BODY)


def test_repeated_header_is_refused(verifier, sign, names):
    headers = list(sign(SECRET, NOW, BODY).items())
    headers.append((names[0], headers[0][1]))
    with pytest.raises(WebhookSignatureError, match="given more than once"):
        verifier.verify(headers, BODY)


@pytest.mark.parametrize("garbled", ["not base64!", "%%%%", "ab=c", "   "])
def test_non_base64_signature_is_refused(verifier, sign, names, garbled):
    headers = sign(SECRET, NOW, BODY)
    headers[names[0]] = garbled
    with pytest.raises(WebhookSignatureError):
        verifier.verify(headers, BODY)


def test_short_signature_is_refused(verifier, sign, names):
    headers = sign(SECRET, NOW, BODY)
    headers[names[0]] = base64.b64encode(b"short").decode()
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verifier.verify(headers, BODY)


@pytest.mark.parametrize("stamp", ["", "abc", "1e9", "-1770113000", "1770113000.", "0x10", "١٢٣"])
def test_garbled_timestamp_is_refused(verifier, sign, names, stamp):
    headers = sign(SECRET, NOW, BODY)
    headers[names[1]] = stamp
    with pytest.raises(WebhookSignatureError):
        verifier.verify(headers, BODY)


def test_oversized_body_is_refused_before_hashing(verifier, sign):
    body = b"{" + b" " * 5000 + b"}"
    with pytest.raises(WebhookPayloadError, match="larger than 4096 bytes") as caught:
        verifier.verify(sign(SECRET, NOW, body), body)
    assert caught.value.http_status == 413


def test_pinless_and_webhook_headers_are_not_interchangeable():
    verifier = webhook_verifier(SECRET, clock=lambda: float(NOW))
    with pytest.raises(WebhookSignatureError, match="missing"):
        verifier.verify(sign_pinless(SECRET, NOW, BODY), BODY)


@pytest.mark.parametrize("secret", ["", "not base64 !", "===="])
def test_unusable_secret_is_a_configuration_error(secret):
    with pytest.raises(DailyConfigError, match="DAILY_WEBHOOK_SECRET"):
        webhook_verifier(secret)


def test_secret_without_padding_is_accepted():
    unpadded = base64.b64encode(b"0123456789abcdef0").decode().rstrip("=")
    verifier = webhook_verifier(unpadded, clock=lambda: float(NOW))
    assert verifier.verify(sign_webhook(unpadded, NOW, BODY), BODY) == NOW


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"test":"test"}', True),
        (b'{"test": "test"}', True),
        (b'{"Test":"test"}', True),
        (b'{"test":"other"}', False),
        (b'{"test":"test","type":"dialout.answered"}', False),
        (b"test", False),
        (BODY, False),
    ],
)
def test_webhook_test_requests_are_recognised(body, expected):
    assert is_test_request(body) is expected
