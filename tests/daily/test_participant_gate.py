"""The in-room participant asks the send gate after its limiter slot, before the call client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowengine.daily.gate import DailyNotSentError, send_gate
from flowengine.daily.participant_commands import RoomCommands
from flowengine.runtime.commands import SendDtmf, SipRefer

from .test_gate import HandLimiter, turns


class CallClient:
    """Just enough of ``daily.CallClient``: records calls, completes at once."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def participants(self) -> dict[str, Any]:
        return {"local": {}}

    def send_dtmf(self, settings: dict[str, Any], completion: Any = None) -> None:
        self.calls.append("send_dtmf")
        completion(None)

    def sip_refer(self, settings: dict[str, Any], completion: Any = None) -> None:
        self.calls.append("sip_refer")
        completion(None)


async def test_the_gate_is_asked_after_the_slot_and_before_the_call_client() -> None:
    client = CallClient()
    limiter = HandLimiter()
    commands = RoomCommands(client, {"caller": "sess-1"}, timeout=5.0, limiter=limiter)  # type: ignore[arg-type]
    asked: list[int] = []

    async def gate() -> bool:
        asked.append(len(client.calls))
        return True

    command = SendDtmf(key="k-1", call_id="c-1", leg="caller", tones="12")
    with send_gate(gate):
        task = asyncio.create_task(commands.run(command))
    await turns()
    assert asked == []
    limiter.grant()
    result = await task
    assert result.ok
    assert asked == [0]
    assert client.calls == ["send_dtmf"]


async def test_a_refusing_gate_calls_nothing_in_the_room() -> None:
    client = CallClient()
    commands = RoomCommands(client, {"caller": "sess-1"}, timeout=5.0)  # type: ignore[arg-type]

    async def refuse() -> bool:
        return False

    command = SipRefer(key="k-2", call_id="c-1", leg="caller", to_end_point="sip:q@pbx")
    with send_gate(refuse), pytest.raises(DailyNotSentError):
        await commands.run(command)
    assert client.calls == []
