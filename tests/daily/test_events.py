"""Webhook envelopes and pinless requests parsed into types; deliveries deduplicated."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowengine.daily import (
    MemoryDeduplicator,
    PinlessCall,
    PinlessTest,
    WebhookPayloadError,
    parse_event,
    parse_pinless,
)
from flowengine.daily.dedupe import Deduplicator

ANSWERED: dict[str, Any] = {
    "version": "1.0.0",
    "type": "dialout.answered",
    "id": "2868-dial-out-ans-5d4f",
    "payload": {
        "domain_id": "c3d4",
        "room": "call-1",
        "timestamp": 1770113000,
        "session_id": "5d4f",
        "destination": "+14155550199",
        "origin": "+14155550100",
        "caller_id": "0b1e2c4f",
    },
    "event_ts": 1770113000.512,
}


def body(data: object) -> bytes:
    return json.dumps(data).encode()


def test_envelope_becomes_a_typed_event():
    event = parse_event(body(ANSWERED))
    assert event.type == "dialout.answered"
    assert event.id == "2868-dial-out-ans-5d4f"
    assert event.version == "1.0.0"
    assert event.room == "call-1"
    assert event.session_id == "5d4f"
    assert event.timestamp == 1770113000.0
    assert event.event_ts == 1770113000.512
    assert event.payload["destination"] == "+14155550199"


def test_payload_is_read_only():
    event = parse_event(body(ANSWERED))
    with pytest.raises(TypeError):
        event.payload["room"] = "other"  # type: ignore[index]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1770113000, 1770113000.0),
        ("1770113000", 1770113000.0),
        (" 1770113000 ", 1770113000.0),
        (1770113000.25, 1770113000.25),
        (1770113000250, 1770113000.25),  # milliseconds
        ("soon", None),
        (True, None),
        (None, None),
        ([1], None),
        (-5, None),
    ],
)
def test_payload_timestamp_is_parsed_defensively(value, expected):
    data = {**ANSWERED, "payload": {**ANSWERED["payload"], "timestamp": value}}
    assert parse_event(body(data)).timestamp == expected


def test_optional_fields_that_are_malformed_become_none():
    data = {**ANSWERED, "version": 1, "event_ts": "n/a", "payload": {"room": 7, "session_id": ""}}
    event = parse_event(body(data))
    assert (event.version, event.event_ts, event.room, event.session_id) == (None, None, None, None)


def test_meeting_events_without_session_id_parse():
    data = {"version": "1.0.0", "type": "meeting.ended", "id": "m-1", "payload": {}}
    event = parse_event(body(data))
    assert (event.room, event.session_id, event.event_ts) == (None, None, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": None}, "field 'type' is missing"),
        ({"type": ""}, "field 'type' must be a non-empty string"),
        ({"type": 3}, "field 'type' must be a non-empty string"),
        ({"id": None}, "field 'id' is missing"),
        ({"id": ["x"]}, "field 'id' must be a non-empty string"),
        ({"payload": None}, "field 'payload' is missing"),
        ({"payload": "x"}, "field 'payload' must be a JSON object"),
    ],
)
def test_missing_or_invalid_required_fields_are_named(change, message):
    data = {k: v for k, v in {**ANSWERED, **change}.items() if v is not None}
    with pytest.raises(WebhookPayloadError) as caught:
        parse_event(body(data))
    assert str(caught.value) == f"webhook payload refused: {message}"
    assert caught.value.field == next(iter(change))
    assert caught.value.http_status == 400


@pytest.mark.parametrize("raw", [b"", b"not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"null"])
def test_bodies_that_are_not_json_objects_are_refused(raw):
    with pytest.raises(WebhookPayloadError, match="body is not") as caught:
        parse_event(raw)
    assert caught.value.field is None


PINLESS = {
    "To": "+14155550100",
    "From": "+14155550123",
    "callId": "a1b2-call",
    "callDomain": "c3d4-domain",
    "sipHeaders": {"X-My-Custom-Header": "vip", "x-count": 3},
}


def test_pinless_request_becomes_a_call():
    request = parse_pinless(body(PINLESS))
    assert request == PinlessCall(
        to="+14155550100",
        from_="+14155550123",
        call_id="a1b2-call",
        call_domain="c3d4-domain",
        sip_headers={"X-My-Custom-Header": "vip", "x-count": "3"},
    )


def test_pinless_call_without_caller_or_headers():
    data = {k: v for k, v in PINLESS.items() if k not in ("From", "sipHeaders")}
    request = parse_pinless(body(data))
    assert isinstance(request, PinlessCall)
    assert request.from_ is None
    assert dict(request.sip_headers) == {}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"test": "test"}, PinlessTest()),
        ({"Test": "test"}, PinlessTest()),
        ({"To": "+14155550100"}, PinlessTest(to="+14155550100")),
    ],
)
def test_pinless_test_requests_are_recognised(data, expected):
    assert parse_pinless(body(data)) == expected


@pytest.mark.parametrize("field", ["To", "callId", "callDomain"])
def test_pinless_required_fields_are_named(field):
    data = {k: v for k, v in PINLESS.items() if k != field}
    with pytest.raises(WebhookPayloadError, match=f"field '{field}' is missing"):
        parse_pinless(body(data))


def test_pinless_sip_headers_must_be_an_object():
    with pytest.raises(WebhookPayloadError, match="field 'sipHeaders' must be a JSON object"):
        parse_pinless(body({**PINLESS, "sipHeaders": ["X-A: 1"]}))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_an_event_id_is_claimed_once():
    dedupe: Deduplicator = MemoryDeduplicator()
    assert await dedupe.claim("2868-dial-out-ans-5d4f") is True
    assert await dedupe.claim("2868-dial-out-ans-5d4f") is False
    assert await dedupe.claim("3602-call-transfer-init-5d4f") is True


async def test_a_claim_expires_after_the_ttl():
    clock = Clock()
    dedupe = MemoryDeduplicator(ttl=60.0, clock=clock)
    assert await dedupe.claim("e1") is True
    clock.now = 59.9
    assert await dedupe.claim("e1") is False
    clock.now = 60.0
    assert await dedupe.claim("e1") is True


async def test_expired_ids_are_dropped_from_memory():
    clock = Clock()
    dedupe = MemoryDeduplicator(ttl=10.0, clock=clock)
    for n in range(100):
        await dedupe.claim(f"e{n}")
    clock.now = 10.0
    await dedupe.claim("fresh")
    assert len(dedupe) == 1


async def test_memory_is_bounded_by_forgetting_the_oldest():
    dedupe = MemoryDeduplicator(max_entries=3, clock=Clock())
    for n in range(5):
        assert await dedupe.claim(f"e{n}") is True
    assert len(dedupe) == 3
    assert await dedupe.claim("e4") is False
    assert await dedupe.claim("e0") is True  # forgotten early, under pressure


async def test_a_released_claim_can_be_claimed_again():
    dedupe = MemoryDeduplicator()
    await dedupe.claim("e1")
    await dedupe.release("e1")
    assert await dedupe.claim("e1") is True
    await dedupe.release("never-claimed")


def test_deduplicator_settings_must_make_sense():
    with pytest.raises(ValueError, match="ttl > 0"):
        MemoryDeduplicator(ttl=0)
