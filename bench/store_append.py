"""Benchmark: durable appends/s of the SQLite store, group commit against a commit per append.

Both sides are ``SQLiteStore`` in the same process, on a fresh file in the same folder, with
the same durability (WAL, ``synchronous=FULL``: every commit fsyncs); only the batching
differs:

* ``group commit``: the default; concurrent appends share one transaction and one fsync;
* ``commit per append``: ``group_commit=False``; one transaction, one fsync, per append.

N calls run concurrently, each appending steps one after another (awaiting each, as a call's
task does): per step a 2 KB snapshot, two journal entries (the event, the command), one new
command in the outbox, the previous command settled, a timer re-armed: what a menu step of a
real call writes. Appends/s is appends over the wall time of the run (median of the runs);
latency is per append, from the call to its acknowledgement; commits are counted by the
store's writer, so appends per commit is the batch size that formed by itself.

Run: ``python bench/store_append.py [--calls 1,16,64,256] [--appends 2000] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flowengine.store import SQLiteStore  # noqa: E402

PAD = "x" * 1800
"""Makes a snapshot about the size of a live call's ``Session.to_json()`` (1.8-3.3 KB)."""


async def one_call(store: SQLiteStore, cid: str, steps: int, latencies: list[float]) -> None:
    version = 1
    for n in range(2, steps + 2):
        started = time.perf_counter()
        version = await store.append(
            cid,
            expected_version=version,
            snapshot=json.dumps({"call_id": cid, "seq": n, "state": "menu", "pad": PAD}),
            journal_entries=[
                ("event", json.dumps({"name": "dtmf", "payload": {"tone": "1"}})),
                ("command", json.dumps({"type": "play", "key": f"{cid}:{n}:0"})),
            ],
            outbox_new={f"{cid}:{n}:0": json.dumps({"type": "play", "prompt": "menu"})},
            outbox_done=[f"{cid}:{n - 1}:0"] if n > 2 else (),
            timers_set={"menu": 1_767_225_600.0 + n},
        )
        latencies.append(time.perf_counter() - started)


async def run(folder: Path, *, calls: int, steps: int, group: bool) -> dict[str, Any]:
    path = folder / f"bench-{calls}-{group}-{time.monotonic_ns()}.db"
    store = await SQLiteStore.open(path, group_commit=group)
    try:
        await asyncio.gather(
            *(
                store.create_call(f"c{i}", flow="bench", flow_hash="h", snapshot="{}")
                for i in range(calls)
            )
        )
        commits = store.stats.commits
        latencies: list[float] = []
        started = time.perf_counter()
        await asyncio.gather(*(one_call(store, f"c{i}", steps, latencies) for i in range(calls)))
        wall = time.perf_counter() - started
        commits = store.stats.commits - commits
    finally:
        await store.close()
        await asyncio.to_thread(_remove, path)
    latencies.sort()
    return {
        "appends": len(latencies),
        "rate": len(latencies) / wall,
        "per_commit": len(latencies) / commits,
        "p50": latencies[len(latencies) // 2] * 1e3,
        "p99": latencies[int(len(latencies) * 0.99)] * 1e3,
    }


def _remove(path: Path) -> None:
    for leftover in path.parent.glob(f"{path.name}*"):  # the file, its -wal, -shm and .lock
        leftover.unlink()


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    runs = sorted(runs, key=lambda r: r["rate"])
    middle = dict(runs[len(runs) // 2])
    middle["low"], middle["high"] = runs[0]["rate"], runs[-1]["rate"]
    return middle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="1,16,64,256", help="concurrent calls, comma-separated")
    parser.add_argument("--appends", type=int, default=2000, help="appends per run, all calls")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="folder for the database files")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.calls.split(",")]
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="store-bench-") as tmp:
        folder = Path(tmp)
        print(f"Python {sys.version.split()[0]}, SQLite {_sqlite_version()}, files in {folder}")
        print(f"{args.appends:,} appends per run, median of {args.runs} runs\n")
        print(
            "| calls | mode | appends/s (min-max) | appends per commit | p50 ms | p99 ms | ratio |"
        )
        print("|---:|---|---:|---:|---:|---:|---:|")
        for calls in counts:
            steps = max(1, args.appends // calls)
            rows = {}
            for group in (True, False):
                asyncio.run(run(folder, calls=calls, steps=min(steps, 5), group=group))  # warm
                runs = [
                    asyncio.run(run(folder, calls=calls, steps=steps, group=group))
                    for _ in range(args.runs)
                ]
                rows[group] = median_run(runs)
            ratio = rows[True]["rate"] / rows[False]["rate"]
            for group, label in ((True, "group commit"), (False, "commit per append")):
                r = rows[group]
                print(
                    f"| {calls} | {label} | {r['rate']:,.0f} ({r['low']:,.0f}-{r['high']:,.0f})"
                    f" | {r['per_commit']:.1f} | {r['p50']:.2f} | {r['p99']:.2f} |"
                    f" {f'**{ratio:.1f}x**' if group else ''} |"
                )
    return 0


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


if __name__ == "__main__":
    raise SystemExit(main())
