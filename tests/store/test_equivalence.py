"""SQLite answers exactly as the reference store does, under random concurrent writes.

Rounds of random operations (appends right and stale, good and bad settlements, events
accepted and applied, timers, endings, commands handed out) are sent at once, the same ones
to a ``MemoryStore`` and a ``SQLiteStore``. Each operation must get the same answer from both
(the same result, or the same error), and both must hold the same data after every round.
In SQLite the operations of a round share transactions: each one's savepoint is all that keeps
a refused operation from leaving a trace.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from flowengine.store import CommandState, MemoryStore, SQLiteStore, Store

from .conftest import EPOCH, FakeClock

CALLS = [f"c{i}" for i in range(6)]

Op = Callable[[Store], Awaitable[Any]]


async def state(store: Store) -> list[Any]:
    out: list[Any] = [await store.live_calls(), await store.pending_commands()]
    out.append(await store.due_timers(EPOCH + 10**6))
    out.append(await store.inbox())
    for cid in CALLS:
        out += [await store.load_call(cid), await store.journal(cid)]
    return out


def answer(result: Any) -> Any:
    if isinstance(result, BaseException):
        return (type(result).__name__, str(result))
    return result


class Random:
    """Makes operations from what the reference store holds now."""

    def __init__(self, rng: random.Random, reference: MemoryStore) -> None:
        self.rng = rng
        self.ref = reference
        self.n = 0

    def key(self, cid: str) -> str:
        keys = [k for k, e in self.ref.data.outbox.items() if e.call_id == cid]
        choice = self.rng.random()
        if keys and choice < 0.7:
            return self.rng.choice(keys)
        if choice < 0.85:
            return self.rng.choice(list(self.ref.data.outbox) or ["none"])  # maybe another's
        return f"{cid}:missing"

    def append(self) -> Op:
        rng, self.n = self.rng, self.n + 1
        cid = rng.choice(CALLS)
        call = self.ref.data.calls[cid]
        version = call.record.version if rng.random() < 0.85 else rng.randrange(1, 4)
        settle = list(dict.fromkeys(self.key(cid) for _ in range(rng.randrange(3))))
        cut = rng.randrange(len(settle) + 1)
        waiting = [e.seq for e in call.journal if not e.applied]
        applied = rng.sample(waiting, min(len(waiting), rng.randrange(2)))
        if rng.random() < 0.1:
            applied.append(rng.randrange(1, len(call.journal) + 2))
        kw: dict[str, Any] = {
            "expected_version": version,
            "snapshot": rng.choice([None, f'{{"n":{self.n}}}']),
            "journal_entries": [
                (rng.choice(["event", "command", "result"]), f"j{self.n}.{i}")
                for i in range(rng.randrange(3))
            ],
            "outbox_new": {
                rng.choice([f"{cid}:{self.n}:{i}", self.key(cid)]): f"cmd{self.n}.{i}"
                for i in range(rng.randrange(3))
            },
            "outbox_done": settle[:cut],
            "outbox_failed": settle[cut:],
            "timers_set": {rng.choice("abc"): EPOCH + rng.randrange(100)}
            if rng.random() < 0.5
            else None,
            "timers_cleared": [rng.choice("abc")] if rng.random() < 0.3 else [],
            "applied": applied,
            "end": rng.random() < 0.03,
        }
        return lambda store: store.append(cid, **kw)

    def other(self) -> Op:
        rng = self.rng
        cid = rng.choice(CALLS)
        pick = rng.randrange(4)
        if pick == 0:
            payload, hook = f"ev{rng.random()}", rng.choice([None, f"w{rng.randrange(30)}"])
            return lambda store: store.accept(cid, payload, webhook_id=hook, ttl=30)
        key = self.key(cid)
        if pick == 1:
            return lambda store: store.begin_command(key)
        if pick == 2:
            state = rng.choice(list(CommandState))
            return lambda store: store.mark_command(key, state)
        hook = f"w{rng.randrange(30)}"
        return lambda store: store.claim_webhook(hook, 30)


@pytest.mark.parametrize("seed", range(6))
async def test_sqlite_answers_as_the_reference_does(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    ref = MemoryStore(clock=clock)
    async with await SQLiteStore.open(tmp_path / "eq.db", clock=clock) as lite:
        for store in (ref, lite):
            for cid in CALLS:
                await store.create_call(
                    cid, flow="f", flow_hash="h", snapshot="{}", outbox_new={f"{cid}:0:0": "c"}
                )
        make = Random(rng, ref)
        for round_ in range(40):
            made = [make.append() if rng.random() < 0.75 else make.other() for _ in range(12)]
            clock.advance(rng.choice([0, 1, 31]))
            want = await asyncio.gather(*(op(ref) for op in made), return_exceptions=True)
            got = await asyncio.gather(*(op(lite) for op in made), return_exceptions=True)
            assert [answer(r) for r in got] == [answer(r) for r in want], (seed, round_)
            assert await state(lite) == await state(ref), (seed, round_)
        assert lite.stats.largest_batch > 1  # the rounds did share transactions
