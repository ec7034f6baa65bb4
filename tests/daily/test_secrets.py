"""The API key and webhook secrets never appear in reprs, messages, logs or tracebacks."""

from __future__ import annotations

import base64
import logging
import pickle
import traceback

import httpx
import pytest
import structlog

from flowengine.daily import (
    DailyClient,
    DailyConfigError,
    DailyError,
    DialOutRequest,
    RetryPolicy,
    Secret,
    pinless_verifier,
    sign_webhook,
    webhook_verifier,
)
from flowengine.daily.requester import BearerAuth

from .conftest import API_KEY, error, raising

WEBHOOK_SECRET = base64.b64encode(b"webhook-secret-bytes-0123456789ab").decode()


def full_text(exc: BaseException) -> str:
    """Everything a logger could print about ``exc``: message, repr, chain, frame locals."""
    rendered = traceback.TracebackException.from_exception(exc, capture_locals=True)
    return "\n".join([str(exc), repr(exc), *rendered.format()])


def test_reprs_hide_the_key():
    client = DailyClient(API_KEY)
    for obj in (client, Secret(API_KEY), BearerAuth(Secret(API_KEY))):
        assert API_KEY not in repr(obj)
        assert API_KEY not in str(obj)
    assert repr(client) == (
        "DailyClient(base_url='https://api.daily.co/v1', api_key=Secret('**********'))"
    )


def test_a_secret_refuses_to_be_pickled():
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret(API_KEY))


# Each failure the client can meet; Daily's info echoes the key to prove it is redacted.
FAILURES = {
    "400": error(400, "invalid-request-error", f"bad body for key {API_KEY}"),
    "401": error(401, "authentication-error", f"Invalid API key {API_KEY}"),
    "403": error(403, "forbidden-error", "forbidden"),
    "404": error(404, "not-found", "not found"),
    "429": error(429, "rate-limit-error", f"{API_KEY} is sending too fast"),
    "500": error(500, "server-error", f"trace: Authorization: Bearer {API_KEY}"),
    "text": httpx.Response(401, text=f"Unauthorized: {API_KEY}"),
    "read-timeout": raising(httpx.ReadTimeout, "timed out"),
    "connect-error": raising(httpx.ConnectError, "refused"),
    "bad-answer": httpx.Response(200, text="not json"),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("operation", ["dial-out", "room"])
async def test_errors_and_logs_never_carry_the_key(make_client, daily, caplog, failure, operation):
    client = make_client(retry=RetryPolicy(max_attempts=2))
    daily.reply(FAILURES[failure], FAILURES[failure])
    caplog.set_level(logging.DEBUG)
    if operation == "dial-out":
        call = client.start_dial_out("r1", DialOutRequest.to("+14155550199"))
    else:
        call = client.get_room("r1")
    with structlog.testing.capture_logs() as logs, pytest.raises(DailyError) as caught:
        await call
    assert API_KEY not in full_text(caught.value)
    assert API_KEY not in repr(logs)
    assert API_KEY not in caplog.text
    info = getattr(caught.value, "info", None)
    if info and failure in ("400", "401", "429", "500", "text"):
        assert "[redacted]" in info


async def test_retries_are_logged_with_the_endpoint_and_reason(make_client, daily):
    client = make_client()
    daily.reply(raising(httpx.ConnectError, "refused"), httpx.Response(200, json={}))
    with structlog.testing.capture_logs() as logs:
        await client.stop_dial_out("r1", "leg")
    retry = next(e for e in logs if e["event"] == "daily_request_retry")
    assert retry["endpoint"] == "dialOut/stop"
    assert retry["reason"] == "ConnectError: refused"
    assert retry["attempt"] == 1


def test_a_malformed_key_is_not_echoed():
    with pytest.raises(DailyConfigError) as caught:
        DailyClient(API_KEY + " \n")
    text = full_text(caught.value)  # first: pytest's assertion temporaries are locals too
    assert API_KEY not in text
    assert str(caught.value) == "DAILY_API_KEY: contains whitespace or control characters"


def test_a_malformed_webhook_secret_is_not_echoed():
    with pytest.raises(DailyConfigError) as caught:
        pinless_verifier(Secret("@" * 4))  # not a literal: source lines are in tracebacks
    text = full_text(caught.value)
    assert "@" * 4 not in text
    assert str(caught.value) == "DAILY_PINLESS_SECRET: is not base64 (use the hmac Daily returned)"


def test_verifier_and_its_refusals_hide_the_secret():
    verifier = webhook_verifier(Secret(WEBHOOK_SECRET), clock=lambda: 1_700_000_000.0)
    assert WEBHOOK_SECRET not in repr(verifier)
    headers = sign_webhook(WEBHOOK_SECRET, 1_700_000_000, b"{}")
    with pytest.raises(DailyError) as caught:
        verifier.verify(headers, b'{"x": 1}')
    text = full_text(caught.value)  # before the test itself holds the raw key in a local
    assert WEBHOOK_SECRET not in text
    assert repr(base64.b64decode(WEBHOOK_SECRET)) not in text


async def test_httpx_tracebacks_are_dropped_from_the_chain(client, daily):
    daily.reply(raising(httpx.ReadTimeout, "timed out"))
    with pytest.raises(DailyError) as caught:
        await client.sip_refer("r1", "leg", "sip:queue@pbx.example.com")
    cause = caught.value.__cause__
    assert isinstance(cause, httpx.ReadTimeout)
    assert cause.__traceback__ is None  # its frames held the request headers
