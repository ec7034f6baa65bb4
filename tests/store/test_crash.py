"""SIGKILL a process in the middle of its writes: every acknowledged write survives, whole.

A child process runs ``WRITER``: calls appending steps concurrently (so batches form), and a
line on stdout for each step *after* its append returned. The test kills it at a random moment,
several times over the same file, and after each kill opens the file in a new store: each
call must hold at least every acknowledged step, and each step entirely or not at all (its
snapshot, two journal entries, its command, the previous command settled, its timer).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from flowengine.store import CommandState, SQLiteStore

from ..conftest import ROOT

CALLS = 8

WRITER = textwrap.dedent(
    """
    import asyncio, json, sys
    from flowengine.store import SQLiteStore

    async def step(store, cid, version):
        n = version + 1
        settle = [f"{cid}:{version}"] if version > 1 else []
        return await store.append(
            cid,
            expected_version=version,
            snapshot=json.dumps({"n": n, "pad": "x" * 1500}),
            journal_entries=[("event", json.dumps({"n": n})), ("command", json.dumps({"n": n}))],
            outbox_new={f"{cid}:{n}": json.dumps({"n": n})},
            outbox_done=settle,
            timers_set={"t": float(n)},
        )

    async def run(store, cid):
        record = await store.load_call(cid)
        if record is None:
            record = await store.create_call(cid, flow="f", flow_hash="h", snapshot='{"n": 1}')
        version = record.version
        while True:
            version = await step(store, cid, version)
            sys.stdout.write(f"{cid} {version}\\n")
            sys.stdout.flush()

    async def main(path, calls):
        store = await SQLiteStore.open(path)
        sys.stdout.write("ready\\n")
        sys.stdout.flush()
        await asyncio.gather(*(run(store, f"c{i}") for i in range(calls)))

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


def run_and_kill(path: Path, acks_wanted: int, deadline: float) -> dict[str, int]:
    """Start the writer, read acknowledgements until ``acks_wanted``, SIGKILL it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(CALLS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    acked: dict[str, int] = {}
    # A writer that stops talking must not hang the test: kill it at the deadline regardless.
    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), child.kill)
    watchdog.start()
    try:
        assert child.stdout is not None
        count = 0
        while count < acks_wanted and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            if line.startswith("ready"):
                continue
            cid, version = line.split()
            acked[cid] = int(version)
            count += 1
    finally:
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate(timeout=10)
        watchdog.cancel()
    assert child.returncode == -signal.SIGKILL, err
    assert count == acks_wanted, f"the writer acknowledged only {count} steps:\n{err}"
    return acked


async def check(path: Path, acked: dict[str, int]) -> dict[str, int]:
    """Every acknowledged step is there, and each step is whole."""
    versions = {}
    async with await SQLiteStore.open(path) as store:
        for i in range(CALLS):
            cid = f"c{i}"
            record = await store.load_call(cid)
            assert record is not None
            v = record.version
            assert v >= acked.get(cid, 0)
            assert json.loads(record.snapshot)["n"] == v
            journal = await store.journal(cid)
            assert [e.seq for e in journal] == list(range(1, 2 * (v - 1) + 1))
            assert [json.loads(e.payload)["n"] for e in journal] == [
                n for n in range(2, v + 1) for _ in (0, 1)
            ]
            for n in range(2, v + 1):
                entry = await store.command(f"{cid}:{n}")
                assert entry is not None
                want = CommandState.PENDING if n == v else CommandState.DONE
                assert entry.state is want
            assert await store.command(f"{cid}:{v + 1}") is None
            assert [t.deadline for t in await store.due_timers(1e9) if t.call_id == cid] == (
                [float(v)] if v > 1 else []
            )
            versions[cid] = v
        assert store._read is not None
        assert store._read.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    return versions


async def test_killed_mid_write_keeps_every_acknowledged_step_whole(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    deadline = time.monotonic() + 60
    rng = random.Random()
    seed = rng.randrange(10**6)
    rng.seed(seed)
    previous: dict[str, int] = {}
    for round_ in range(3):
        acked = run_and_kill(path, rng.randrange(100, 400), deadline)
        versions = await check(path, acked)
        # The writer resumed from what the last round stored, and moved on.
        assert all(versions[c] >= previous.get(c, 0) for c in versions), (seed, round_)
        assert sum(versions.values()) > sum(previous.values()), (seed, round_)
        previous = versions
