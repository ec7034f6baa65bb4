"""The store holds what the runtime needs: calls persisted step by step, then resumed elsewhere.

An ``Engine`` runs calls with an observer that writes each step to the store (the snapshot,
the event and commands in the journal, the commands in the outbox, the timers), in order per
call, as the daemon will. Then the engine is dropped, the store reopened, and a second engine
restores every live call from it and takes each call to its end.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

from flowengine.project import load_flow
from flowengine.runtime import Command, Engine, FakeTelephony, Session, VirtualClock
from flowengine.runtime import events as ev
from flowengine.runtime.commands import CancelTimer, StartTimer
from flowengine.store import CommandState, Store

from .conftest import Harness

FLOW = """
name: store-fit
start: menu
on: {hangup: fin, error: fin}
prompts: {p: "Press 1"}
states:
  menu:
    menu: {prompt: p, options: {1: one}, timeout: 5s}
    on: {max_attempts: fin}
  one:
    wait: {for: 2s}
    on: {done: fin}
  fin:
    hangup: {}
"""


class Recorder:
    """Writes each handled event of each call to the store, in order, like the daemon will."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.versions: dict[str, int] = {}
        self.queue: asyncio.Queue[tuple[Session, str, list[Command]]] = asyncio.Queue()
        self.task = asyncio.ensure_future(self._run())

    def observe(self, session: Session, commands: list[Command]) -> None:
        # The observer is called synchronously; the snapshot is taken now, written later.
        self.queue.put_nowait((session, session.to_json(), list(commands)))

    async def drain(self) -> None:
        await asyncio.wait_for(self.queue.join(), 10)

    async def _run(self) -> None:
        while True:
            session, snapshot, commands = await self.queue.get()
            try:
                await self._write(session, snapshot, commands)
            finally:
                self.queue.task_done()

    async def _write(self, session: Session, snapshot: str, commands: list[Command]) -> None:
        cid = session.call_id
        event = json.loads(snapshot)["trace"][-1]["event"]
        outgoing = [c for c in commands if not c.internal]
        # A command's result settles it: command.ok, play.done (done) or command.failed.
        name, result = event["name"], event["payload"].get("key")
        done = [result] if result and name in ("command.ok", "play.done") else []
        failed = [result] if result and name == "command.failed" else []
        journal = [("event", json.dumps(event))]
        journal += [("command", json.dumps(c.to_dict())) for c in commands]
        outbox = {c.key: json.dumps(c.to_dict()) for c in outgoing}
        timers = {c.timer: c.deadline for c in commands if isinstance(c, StartTimer)}
        if cid not in self.versions:
            record = await self.store.create_call(
                cid,
                flow=session.flow,
                flow_hash=session.flow_hash,
                snapshot=snapshot,
                journal_entries=journal,
                outbox_new=outbox,
                timers_set=timers,
            )
            self.versions[cid] = record.version
            return
        self.versions[cid] = await self.store.append(
            cid,
            expected_version=self.versions[cid],
            snapshot=snapshot,
            journal_entries=journal,
            outbox_new=outbox,
            outbox_done=done,
            outbox_failed=failed,
            timers_set=timers,
            timers_cleared=[c.timer for c in commands if isinstance(c, CancelTimer)],
            end=session.ended,
        )


async def test_calls_resume_from_the_store_in_a_new_engine(
    harness: Harness, store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(textwrap.dedent(FLOW), encoding="utf-8")
    flow = load_flow(path)
    clock = VirtualClock()
    recorder = Recorder(store)
    first = Engine([flow], FakeTelephony(), clock, strict=True, observer=recorder.observe)
    for i in range(20):
        first.start_call(f"call-{i}", "store-fit")
    await clock.advance(1)  # each call has played its prompt and waits in the menu
    await recorder.drain()
    recorder.task.cancel()
    await first.aclose()  # the daemon is gone

    reopened = await harness.reopen()
    live = await reopened.live_calls()
    assert len(live) == 20
    assert await reopened.pending_commands() == []  # every command got its result
    (menu_timer,) = {t.timer_id for t in await reopened.due_timers(clock.now() + 5)}
    assert len(await reopened.due_timers(clock.now() + 5)) == 20
    recorder = Recorder(reopened)
    recorder.versions = {r.call_id: r.version for r in live}
    second = Engine([flow], FakeTelephony(), clock, strict=True, observer=recorder.observe)
    for record in live:
        session = second.restore(record.snapshot)
        assert session.state == "menu"
        assert menu_timer in session.timers
        second.post(record.call_id, ev.dtmf("1"))
    await clock.advance(3)
    await recorder.drain()
    recorder.task.cancel()
    assert all(s.ended and s.outcome == "hangup" for s in second.calls.values())
    assert await reopened.live_calls() == []
    assert await reopened.due_timers(clock.now() + 3600) == []
    assert await reopened.pending_commands() == []  # the hang-ups too got their results
    journal = await reopened.journal("call-0")
    (hangup,) = [json.loads(e.payload) for e in journal if '"type": "hangup"' in e.payload]
    entry = await reopened.command(hangup["key"])
    assert entry is not None
    assert entry.state is CommandState.DONE
    await second.aclose()
