"""The engine's ``persist`` hook: a step's commands wait for it, and are not sent if it fails."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from flowengine.project import load_flows
from flowengine.runtime import Engine, FakeTelephony, VirtualClock
from flowengine.runtime.commands import Command
from flowengine.runtime.events import Event
from flowengine.runtime.session import Session

from .conftest import FLOWS


async def test_commands_wait_for_the_persist_hook_and_fail_if_it_fails() -> None:
    flows = load_flows([FLOWS])
    fake = FakeTelephony()
    gate = asyncio.Event()
    seen: list[tuple[str, list[str]]] = []
    fail = False

    def persist(session: Session, event: Event, commands: list[Command]) -> Awaitable[None]:
        seen.append((event.name, [c.kind for c in commands if not c.internal]))
        snapshot = session.to_json()  # read now: the call moves on

        async def write() -> None:
            await gate.wait()
            assert snapshot
            if fail:
                raise RuntimeError("disk full")

        return write()

    engine = Engine(flows.values(), fake, VirtualClock(), persist=persist)
    engine.start_call("c-1", "desk", call={"from": "+14155550123"})
    for _ in range(5):
        await asyncio.sleep(0)
    assert seen[0] == ("start", ["answer"])
    assert fake.commands == []  # not yet written, not yet sent
    gate.set()
    await engine.idle()
    assert [c.kind for c in fake.commands][:1] == ["answer"]
    sent = len(fake.commands)
    fail = True
    engine.start_call("c-2", "desk", call={"from": "+14155550123"})
    await engine.idle()
    assert len(fake.commands) == sent  # c-2's answer was never sent
    session = engine.get("c-2")
    assert session is not None
    failed = [t for t in session.trace if t.event.name == "command.failed"]
    assert failed
    assert failed[0].event.payload["error"] == "the step was not persisted"
    await engine.aclose()
