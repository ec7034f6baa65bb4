"""The demo's glue: the flows copy, the bridge's mapping, its path to the daemon, the commands."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from flowengine.cli import cli
from flowengine.emulator import Caller, Press
from flowengine.harness import Stack, copy_flows, set_var_default
from flowengine.harness.bridge import RoomBridge, to_daemon
from flowengine.harness.report import command_brief, short_id

from .conftest import FLOWS

VARS = """\
name: f
vars:
  plain: "x"   # a comment
  typed:
    type: string
    default: ""
    description: the default is replaced, not this
  after: 1
start: a
"""


def test_a_variable_default_is_set_in_either_spelling() -> None:
    text = set_var_default(VARS, "plain", "open")
    assert '  plain: "open"\n' in text
    text = set_var_default(text, "typed", "open")
    assert '    default: "open"\n' in text
    assert "description: the default is replaced, not this" in text
    with pytest.raises(ValueError, match="no variable 'missing'"):
        set_var_default(VARS, "missing", "x")


def test_the_copy_applies_every_change_or_refuses(tmp_path: Path) -> None:
    copy = copy_flows(
        FLOWS, tmp_path / "a", var_defaults={"support-line": {"hours_override": "open"}}
    )
    assert 'default: "open"' in (copy / "support-line.yaml").read_text()
    assert not (copy / "tests").exists()
    with pytest.raises(ValueError, match="does not occur"):
        copy_flows(FLOWS, tmp_path / "b", replace={"verify-pin": {"no such text": "x"}})
    with pytest.raises(ValueError, match="no flow file"):
        copy_flows(FLOWS, tmp_path / "c", var_defaults={"nowhere": {"a": "b"}})


def test_only_key_presses_and_app_messages_are_forwarded() -> None:
    assert to_daemon("dtmf-event", {"tone": "5", "sessionId": "s1", "volume": 1}) == (
        "dtmf",
        {"tone": "5", "session_id": "s1"},
    )
    assert to_daemon("app-message", {"data": {"a": 1}}) == ("app-message", {"data": {"a": 1}})
    assert to_daemon("dialin-connected", {"sessionId": "s1"}) is None


def test_trace_words() -> None:
    assert short_id("in-f7c1bd87-4da5-4709") == "in-f7c1bd87"
    assert command_brief({"type": "start_timer", "seconds": 5}) is None
    assert (
        command_brief({"type": "sip_refer", "key": "k", "toEndPoint": "sip:a@b.example.com"})
        == "sip_refer toEndPoint=sip:a@b.example.com"
    )


def test_the_commands_are_registered() -> None:
    runner = CliRunner()
    emulator = runner.invoke(cli, ["emulator", "--help"])
    assert emulator.exit_code == 0
    assert "--webhook-url" in emulator.output
    demo = runner.invoke(cli, ["demo", "--help"])
    assert demo.exit_code == 0
    assert "--serve" in demo.output


async def test_keys_reach_the_daemon_once_through_the_bridge(tmp_path: Path) -> None:
    flows = copy_flows(
        FLOWS, tmp_path / "flows", var_defaults={"support-line": {"hours_override": "open"}}
    )
    async with asyncio.timeout(60), Stack(flows=flows, workdir=tmp_path / "run") as stack:
        call_id = await stack.place_call(
            "+14155550100", "+14155550111", caller=Caller(keys=(Press(1.0, "*"),))
        )
        assert stack.bridge is not None
        while not stack.bridge.forwarded:  # noqa: ASYNC110 - a list the bridge appends to
            await asyncio.sleep(0.05)
        [forwarded] = stack.bridge.forwarded
        assert (forwarded.room, forwarded.name, forwarded.status) == (call_id, "dtmf", 202)
        # The same event posted again (an answer lost to a crash) is taken once.
        again = await stack.api.post(
            f"/v1/calls/{call_id}/events",
            json={
                "name": "dtmf",
                "payload": forwarded.payload,
                "id": f"room-event-{forwarded.seq}",
            },
        )
        assert again.status_code == 202
        assert again.json() == {"ok": True, "duplicate": True}
        trace = await stack.trace(call_id)
        assert [e["event"]["payload"]["tone"] for e in trace if e["event"]["name"] == "dtmf"] == [
            "*"
        ]
        bad = await stack.api.post(f"/v1/calls/{call_id}/events", json={"name": "dtmf", "id": 5})
        assert bad.status_code == 400
        with pytest.raises(httpx.HTTPStatusError):
            await stack.call("in-nobody")


async def test_the_bridge_spreads_events_over_several_daemons() -> None:
    urls = ["http://127.0.0.1:1", "http://127.0.0.1:2"]
    seen: list[tuple[str, int]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        port = request.url.port or 0
        seen.append((request.url.path, port))
        return httpx.Response(503 if port == 1 else 202)  # the first daemon is down

    bridge = RoomBridge("http://127.0.0.1:3", "key", urls, "token", seed=4)
    assert bridge.daemon_url == urls[0]
    await bridge._daemon.aclose()
    bridge._daemon = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    try:
        done = [await bridge._post("room-1", seq, "dtmf", {"tone": "1"}) for seq in range(12)]
    finally:
        await bridge.aclose()
    assert {path for path, _ in seen} == {"/v1/calls/room-1/events"}
    assert all(f.status == 202 and f.daemon == urls[1] for f in done)
    assert any(f.attempts > 1 for f in done)  # a retry went to the other daemon
    assert {port for _, port in seen} == {1, 2}


async def test_several_daemons_need_a_shared_store(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="share"):
        Stack(flows=tmp_path, workdir=tmp_path / "a", daemons=2)
    with pytest.raises(ValueError, match="at least one"):
        Stack(flows=tmp_path, workdir=tmp_path / "b", daemons=0)
    stack = Stack(flows=tmp_path, workdir=tmp_path / "c", daemons=3, store="redis://x/0")
    try:
        assert len(set(stack.daemon_urls)) == 3
        assert stack.daemon_url == stack.daemon_urls[0]
        assert [t.url for t in stack.emulator.webhooks.targets] == [
            f"{url}/daily/webhooks" for url in stack.daemon_urls
        ]
        assert [t.url for t in stack.emulator.dialin.targets] == [
            f"{url}/daily/dialin" for url in stack.daemon_urls
        ]
        assert stack.daemon is None  # started when the stack is entered
    finally:
        await stack.aclose()
