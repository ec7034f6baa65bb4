"""What the emulator sends verifies with flowengine.daily's own verifiers, and only with them."""

from __future__ import annotations

import base64

import pytest

from flowengine.daily import (
    DialOutRequest,
    WebhookSignatureError,
    parse_event,
    parse_pinless,
    pinless_verifier,
    webhook_verifier,
)
from flowengine.emulator import DEFAULT_PINLESS_SECRET, DEFAULT_WEBHOOK_SECRET, Emulator

from .conftest import make_room

OTHER_SECRET = base64.b64encode(b"someone else's secret").decode()


async def test_webhook_signatures_verify_with_the_secret_and_fail_without(client, emu, clock):
    await make_room(client)
    await emu.advance(1)
    delivery = emu.webhooks.deliveries[0]
    assert delivery.ok
    sent_at = webhook_verifier(DEFAULT_WEBHOOK_SECRET, clock=clock.now).verify(
        delivery.headers, delivery.body
    )
    assert sent_at == int(delivery.time)
    event = parse_event(delivery.body)
    assert (event.type, event.room, event.event_ts) == ("dialin.ready", "call-1", delivery.time)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        webhook_verifier(OTHER_SECRET, clock=clock.now).verify(delivery.headers, delivery.body)
    tampered = delivery.body.replace(b"call-1", b"call-2")
    with pytest.raises(WebhookSignatureError):
        webhook_verifier(DEFAULT_WEBHOOK_SECRET, clock=clock.now).verify(delivery.headers, tampered)


async def test_pinless_signatures_verify_with_the_secret_and_fail_without(emu, clock):
    call = await emu.place_call("+18005550100")
    request = emu.dialin.requests[0]
    pinless_verifier(DEFAULT_PINLESS_SECRET, clock=clock.now).verify(request.headers, request.body)
    assert parse_pinless(request.body).call_id == call.call_id  # type: ignore[union-attr]
    with pytest.raises(WebhookSignatureError):
        pinless_verifier(OTHER_SECRET, clock=clock.now).verify(request.headers, request.body)
    with pytest.raises(WebhookSignatureError):  # a webhook verifier looks for other headers
        webhook_verifier(DEFAULT_PINLESS_SECRET, clock=clock.now).verify(
            request.headers, request.body
        )


async def test_a_configured_secret_is_used(clock, ingress):
    emu = Emulator(clock=clock, webhook_app=ingress.app, webhook_secret=OTHER_SECRET)
    try:
        await make_room(emu.daily_client())
        await emu.advance(1)
        delivery = emu.webhooks.deliveries[0]
        assert delivery.status == 401  # the ingress expects the default secret
        webhook_verifier(OTHER_SECRET, clock=clock.now).verify(delivery.headers, delivery.body)
    finally:
        await emu.aclose()


async def test_event_ids_are_unique_and_name_the_session(client, emu):
    await make_room(client, sip=False)
    emu.limits(False)
    first = await client.start_dial_out("call-1", DialOutRequest.to("+14155550100"))
    second = await client.start_dial_out("call-1", DialOutRequest.to("+14155550101"))
    await emu.advance(1)
    ids = [e.id for e in emu.webhooks.events]
    assert len(ids) == len(set(ids)) == 6
    assert ids[0].endswith(first)
    assert ids[1].endswith(second)
    assert ids[0].split("-", 1)[1].startswith("dialout-connected-")
