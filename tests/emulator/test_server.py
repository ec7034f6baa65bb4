"""Serving: the control API in-process, the command line's parsing, and one loopback run."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest

from flowengine.daily import NO_RETRY, DailyClient, RoomSpec
from flowengine.emulator import Emulator, EmulatorServer, Faults, ScriptError
from flowengine.emulator.server import load_script, main, parse_faults

from .conftest import make_room


async def test_control_api_places_calls_and_reports(client, emu, http, ingress):
    emu.limits(False)
    room = await make_room(client)
    await emu.advance(1)
    placed = await http.post(
        "/_emulator/calls",
        json={
            "to": "+18005550100",
            "from": "+14155550123",
            "sipHeaders": {"X-Account": "7"},
            "caller": {"keys": [["1s", "5"]], "hangup": "10s"},
        },
    )
    assert placed.status_code == 200
    call = placed.json()
    assert (call["status"], call["pinlessStatus"]) == ("held", 200)
    assert ingress.pinless_requests[0]["sipHeaders"] == {"X-Account": "7"}
    await client.pinless_call_update(call["callId"], call["callDomain"], room.sip_endpoint)
    await emu.advance(2)
    events = (await http.get("/_emulator/room-events", params={"room": "call-1"})).json()
    assert [e["name"] for e in events][-3:] == [
        "dialin-connected",
        "participant-joined",
        "dtmf-event",
    ]
    later = (await http.get("/_emulator/room-events", params={"after": events[-1]["seq"]})).json()
    assert later == []
    state = (await http.get("/_emulator/state")).json()
    assert state["calls"][0]["status"] == "connected"
    assert state["legs"][0]["kind"] == "dialin"
    assert state["rooms"][0]["name"] == "call-1"
    log = (await http.get("/_emulator/log", params={"endpoint": "pinlessCallUpdate"})).json()
    assert [e["status"] for e in log] == [200]
    hooks = (await http.get("/_emulator/webhooks")).json()
    assert hooks["state"] == "ACTIVE"
    assert [e["type"] for e in hooks["events"]][:2] == ["dialin.ready", "dialin.connected"]
    assert all(d["status"] == 200 for d in hooks["deliveries"])
    assert emu.log.count() == 2  # control requests are not Daily requests


async def test_room_events_long_poll_waits_for_the_next_event(emu, http):
    async def publish_soon() -> None:
        await asyncio.sleep(0.05)
        emu.inroom.publish("r", "dtmf-event", {"tone": "1"}, 0.0)

    task = asyncio.create_task(publish_soon())
    answer = await http.get("/_emulator/room-events", params={"wait": "2"})
    await task
    assert [e["data"] for e in answer.json()] == [{"tone": "1"}]
    empty = await http.get("/_emulator/room-events", params={"after": "1", "wait": "0.05"})
    assert empty.json() == []


async def test_control_api_scripts_numbers_and_faults(emu, http):
    numbers = await http.post(
        "/_emulator/numbers",
        json={"numbers": {"+14155550100": {"busy": "1s"}}, "default": {"no_answer": True}},
    )
    assert numbers.json() == {"numbers": ["+14155550100"]}
    assert emu.far_ends.lookup("+14155550100").outcome == "busy"
    assert emu.far_ends.lookup("+1999").outcome == "no_answer"
    faults = await http.post(
        "/_emulator/faults", json={"rest_429": 0.5, "endpoints": ["dialOut/start"], "seed": 3}
    )
    assert faults.status_code == 200
    assert emu.faults == Faults(rest_429=0.5, endpoints=frozenset({"dialOut/start"}), seed=3)
    bad = await http.post("/_emulator/faults", json={"rest_429": 2})
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid-request-error")
    bad_script = await http.post("/_emulator/numbers", json={"numbers": {"+1": {"ring": 1}}})
    assert bad_script.status_code == 400


async def test_control_api_needs_the_key(emu):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emu.app)) as raw:
        answer = await raw.get("http://localhost/_emulator/state")
    assert (answer.status_code, answer.json()["error"]) == (400, "authorization-header-error")


def test_command_line_parsing(tmp_path: Path):
    assert parse_faults(["rest_429=0.25", "endpoints=dialOut/start,sipRefer"], 5) == Faults(
        seed=5, rest_429=0.25, endpoints=frozenset({"dialOut/start", "sipRefer"})
    )
    with pytest.raises(ValueError, match="name=value"):
        parse_faults(["rest_429"], 0)
    script = tmp_path / "far.yaml"
    script.write_text("numbers:\n  '+14155550100': {busy: 1s}\ndefault: {answer: 2s}\n")
    assert load_script(script).lookup("+14155550100").outcome == "busy"
    script.write_text("- 1\n")
    with pytest.raises(ScriptError):
        load_script(script)
    assert main(["--fault", "nonsense"]) == 2
    assert main(["--script", str(tmp_path / "missing.yaml")]) == 2


async def test_run_serves_on_loopback_and_stops_cleanly():
    """The one real-socket test: run() in a thread on a free port, one request, stop."""
    emu = Emulator()
    server = EmulatorServer(emu, "127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert await asyncio.to_thread(server.started.wait, 10)
        assert server.port != 0
        async with DailyClient(emu.api_key, base_url=server.base_url, retry=NO_RETRY) as client:
            room = await asyncio.wait_for(client.create_room(RoomSpec(name="loop")), 10)
        assert room.url == "https://emulator.daily.co/loop"
        assert emu.log.count("rooms/create", acted=True) == 1
    finally:
        server.stop()
        await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()
