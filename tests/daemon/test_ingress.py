"""The ingress: forged and replayed requests refused, accepted webhooks durable, bad input 4xx."""

from __future__ import annotations

import json

from flowengine.daily import sign_pinless, sign_webhook
from flowengine.emulator import Caller
from flowengine.emulator.emulator import DEFAULT_PINLESS_SECRET, DEFAULT_WEBHOOK_SECRET

from .conftest import Rig


def envelope(room: str, kind: str = "dialin.warning", event_id: str = "evt-1") -> bytes:
    payload = {"room": room, "session_id": "s-1", "timestamp": 1}
    return json.dumps({"version": "1.0.0", "type": kind, "id": event_id, "payload": payload})


async def live_call(rig: Rig) -> str:
    inbound = await rig.emu.place_call("+14155550100", "+14155550123", caller=Caller())
    await rig.settle()
    return "in-" + inbound.call_id


async def post(rig: Rig, body: bytes | str, headers: dict[str, str]) -> tuple[int, dict]:
    assert rig.client is not None
    answer = await rig.client.post("/daily/webhooks", content=body, headers=headers)
    return answer.status_code, answer.json()


async def test_a_webhook_answered_200_is_in_the_store(rig: Rig) -> None:
    call_id = await live_call(rig)
    body = envelope(call_id).encode()
    status, _ = await post(rig, body, sign_webhook(DEFAULT_WEBHOOK_SECRET, rig.clock.now(), body))
    assert status == 200
    assert rig.daemon is not None
    journal = await rig.daemon.store.journal(call_id)
    assert any('"dialin.warning"' in entry.payload for entry in journal)
    # The same delivery again is a duplicate: 200, journaled once.
    status, answer = await post(
        rig, body, sign_webhook(DEFAULT_WEBHOOK_SECRET, rig.clock.now(), body)
    )
    assert status == 200
    assert answer.get("duplicate") is True
    journal = await rig.daemon.store.journal(call_id)
    assert sum('"dialin.warning"' in entry.payload for entry in journal) == 1


async def test_forged_and_replayed_webhooks_are_refused_and_counted(rig: Rig) -> None:
    call_id = await live_call(rig)
    body = envelope(call_id).encode()
    forged = sign_webhook("d3Jvbmctc2VjcmV0", rig.clock.now(), body)  # another secret
    assert (await post(rig, body, forged))[0] == 401
    assert (await post(rig, body, {}))[0] == 401
    old = sign_webhook(DEFAULT_WEBHOOK_SECRET, rig.clock.now() - 3600, body)
    assert (await post(rig, body, old))[0] == 401
    tampered = sign_webhook(DEFAULT_WEBHOOK_SECRET, rig.clock.now(), body)
    assert (await post(rig, body.replace(b"s-1", b"s-2"), tampered))[0] == 401
    assert rig.daemon is not None
    journal = await rig.daemon.store.journal(call_id)
    assert not any('"dialin.warning"' in entry.payload for entry in journal)
    assert rig.client is not None
    metrics = (await rig.client.get("/metrics")).text
    assert 'flowengine_webhook_rejects_total{reason="WebhookSignatureError"} 3.0' in metrics
    assert 'flowengine_webhook_rejects_total{reason="WebhookReplayError"} 1.0' in metrics


async def test_bad_bodies_get_a_4xx_and_unknown_calls_a_logged_200(rig: Rig) -> None:
    def signed(body: bytes) -> dict[str, str]:
        return sign_webhook(DEFAULT_WEBHOOK_SECRET, rig.clock.now(), body)

    for body in (b"not json", b"[]", b'{"type": "dialin.ready", "payload": {}}'):
        status, answer = await post(rig, body, signed(body))
        assert status == 400
        assert "error" in answer
    assert (await post(rig, b'{"test": "test"}', {}))[0] == 200
    body = envelope("no-such-room", kind="something.new").encode()
    status, answer = await post(rig, body, signed(body))
    assert status == 200
    assert answer["ignored"] == "no live call"


async def test_pinless_requests_are_verified_and_unmatched_numbers_refused(rig: Rig) -> None:
    assert rig.client is not None
    body = json.dumps({"To": "+19995550000", "callId": "c-1", "callDomain": "d-1"}).encode()
    forged = sign_pinless("d3Jvbmctc2VjcmV0", rig.clock.now(), body)
    answer = await rig.client.post("/daily/dialin", content=body, headers=forged)
    assert answer.status_code == 401
    good = sign_pinless(DEFAULT_PINLESS_SECRET, rig.clock.now(), body)
    answer = await rig.client.post("/daily/dialin", content=body, headers=good)
    assert answer.status_code == 404
    assert "no flow matches" in answer.json()["error"]
    test = json.dumps({"To": "+14155550100"}).encode()
    headers = sign_pinless(DEFAULT_PINLESS_SECRET, rig.clock.now(), test)
    assert (await rig.client.post("/daily/dialin", content=test, headers=headers)).is_success
