"""The operator's API: auth, validation errors, outbound calls, health, metrics."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from .conftest import AUTH, Rig


async def test_v1_needs_the_bearer_token(rig: Rig) -> None:
    assert rig.client is not None
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": AUTH["Authorization"] + "x"},
    ):
        answer = await rig.client.post("/v1/calls", json={}, headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]
    assert (await rig.client.get("/v1/calls/x", headers={})).status_code == 401


async def test_bad_requests_get_a_clear_4xx(rig: Rig) -> None:
    assert rig.client is not None
    cases = [
        (b"{not json", 400, "not valid JSON"),
        (b"[1]", 400, "JSON object"),
        (b'{"to": "+14155550111"}', 400, "'flow' is required"),
        (b'{"flow": "desk"}', 400, "'to' is required"),
        (b'{"flow": "desk", "to": "12"}', 400, "'to' is required"),
        (b'{"flow": "desk", "to": "+14155550111", "vars": []}', 400, "'vars'"),
        (b'{"flow": "desk", "to": "+14155550111", "x": 1}', 400, "unknown field 'x'"),
        (b'{"flow": "nope", "to": "+14155550111"}', 404, "no flow named 'nope'"),
    ]
    for body, status, text in cases:
        answer = await rig.client.post("/v1/calls", content=body, headers=AUTH)
        assert answer.status_code == status, (body, answer.text)
        assert text in answer.json()["error"], answer.text
    answer = await rig.client.get("/v1/calls/in-nothing", headers=AUTH)
    assert answer.status_code == 404


async def test_an_outbound_call_starts_and_can_be_read(rig: Rig) -> None:
    assert rig.client is not None
    async with asyncio.timeout(20):
        answer = await rig.client.post(
            "/v1/calls", json={"flow": "desk", "to": "+14155550111"}, headers=AUTH
        )
        assert answer.status_code == 201, answer.text
        call_id = answer.json()["id"]
        await rig.settle()
        call = (await rig.client.get(f"/v1/calls/{call_id}", headers=AUTH)).json()
    assert call["flow"] == "desk"
    assert call["call"]["direction"] == "outbound"
    assert rig.emu.log.count("rooms/create", acted=True) == 1


async def test_health_readiness_and_metrics(rig: Rig) -> None:
    assert rig.client is not None
    assert (await rig.client.get("/healthz")).json() == {"status": "ok"}
    ready = await rig.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["flows"] == ["desk"]
    await rig.client.post("/v1/calls", json={"flow": "desk", "to": "+14155550111"}, headers=AUTH)
    await rig.settle()
    text = (await rig.client.get("/metrics")).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "flowengine_calls_active",
        "flowengine_calls_started",
        "flowengine_calls_ended",
        "flowengine_events",
        "flowengine_command_seconds",
        "flowengine_daily_api_errors",
        "flowengine_webhook_rejects",
    ):
        assert name in families, name
    started = [s for s in families["flowengine_calls_started"].samples if s.name.endswith("_total")]
    assert started[0].labels == {"flow": "desk", "direction": "outbound"}
    assert started[0].value == 1.0
