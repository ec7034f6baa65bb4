"""Benchmark: durable appends/s of the SQLite store, group commit against a commit per append.

Both sides are ``SQLiteStore`` in the same process, on a fresh file in the same folder, with
the same durability (WAL, ``synchronous=FULL``: every commit fsyncs); only the batching
differs:

* ``group commit``: the default; concurrent appends share one transaction and one fsync;
* ``commit per append``: ``group_commit=False``; one transaction, one fsync, per append.

Then, with a Redis server at ``--redis`` (default ``$FLOWENGINE_REDIS_URL``, else
``redis://127.0.0.1:6379/0``; ``--redis off`` to leave it out), the same load through
``RedisStore``, on a fresh key prefix deleted afterwards; its ratio is against SQLite's group
commit. Its durability is the server's (printed): compare like with like (``appendonly yes``,
``appendfsync always`` against SQLite's ``synchronous=FULL``).

N calls run concurrently, each appending steps one after another (awaiting each, as a call's
task does): per step a 2 KB snapshot, two journal entries (the event, the command), one new
command in the outbox, the previous command settled, a timer re-armed: what a menu step of a
real call writes. Appends/s is appends over the wall time of the run (median of the runs);
latency is per append, from the call to its acknowledgement; commits are counted by the
store's writer, so appends per commit is the batch size that formed by itself.

Run: ``python bench/store_append.py [--calls 1,16,64,256] [--appends 2000] [--runs 3]
[--redis URL|off]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flowengine.store import RedisStore, SQLiteStore, Store, StoreError  # noqa: E402

PAD = "x" * 1800
"""Makes a snapshot about the size of a live call's ``Session.to_json()`` (1.8-3.3 KB)."""


async def one_call(store: Store, cid: str, steps: int, latencies: list[float]) -> None:
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


def _commits(store: Store) -> int:
    """Transactions (SQLite) or round trips of write scripts (Redis) so far."""
    if isinstance(store, RedisStore):
        return store.batches[0]
    assert isinstance(store, SQLiteStore)
    return store.stats.commits


async def run(
    folder: Path, *, calls: int, steps: int, group: bool, redis: str | None = None
) -> dict[str, Any]:
    path = folder / f"bench-{calls}-{group}-{time.monotonic_ns()}.db"
    prefix = f"flowengine-bench-{uuid.uuid4().hex[:12]}"
    store: Store
    if redis is None:
        store = await SQLiteStore.open(path, group_commit=group)
    else:
        store = await RedisStore.open(f"{redis}{'&' if '?' in redis else '?'}prefix={prefix}")
    try:
        await asyncio.gather(
            *(
                store.create_call(f"c{i}", flow="bench", flow_hash="h", snapshot="{}")
                for i in range(calls)
            )
        )
        commits = _commits(store)
        latencies: list[float] = []
        started = time.perf_counter()
        await asyncio.gather(*(one_call(store, f"c{i}", steps, latencies) for i in range(calls)))
        wall = time.perf_counter() - started
        commits = _commits(store) - commits
    finally:
        if isinstance(store, RedisStore):
            await _drop(store, prefix)
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


async def _drop(store: RedisStore, prefix: str) -> None:
    keys = [key async for key in store.client.scan_iter(match=f"{prefix}:*", count=1000)]
    for start in range(0, len(keys), 500):
        await store.client.unlink(*keys[start : start + 500])


async def _redis_server(url: str) -> str | None:
    """What the server at ``url`` keeps on disk, or ``None`` when it cannot be used."""
    try:
        store = await RedisStore.open(url)
    except StoreError as exc:
        print(f"Redis left out: {exc}")
        return None
    await store.close()
    return store.persistence


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
    parser.add_argument(
        "--redis",
        default=os.environ.get("FLOWENGINE_REDIS_URL") or "redis://127.0.0.1:6379/0",
        help="a Redis server to compare with (redis://host:port/db), or 'off'",
    )
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.calls.split(",")]
    redis = None if args.redis == "off" else args.redis
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="store-bench-") as tmp:
        folder = Path(tmp)
        print(f"Python {sys.version.split()[0]}, SQLite {_sqlite_version()}, files in {folder}")
        if redis is not None:
            persistence = asyncio.run(_redis_server(redis))
            redis = None if persistence is None else redis
            if persistence is not None:
                print(f"Redis at {redis.split('@')[-1]}, persistence: {persistence}")
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
                _row(calls, label, rows[group], f"**{ratio:.1f}x**" if group else "")
            if redis is not None:
                asyncio.run(run(folder, calls=calls, steps=min(steps, 5), group=True, redis=redis))
                runs = [
                    asyncio.run(run(folder, calls=calls, steps=steps, group=True, redis=redis))
                    for _ in range(args.runs)
                ]
                r = median_run(runs)
                _row(calls, "redis", r, f"{r['rate'] / rows[True]['rate']:.1f}x")
    return 0


def _row(calls: int, label: str, r: dict[str, Any], ratio: str) -> None:
    print(
        f"| {calls} | {label} | {r['rate']:,.0f} ({r['low']:,.0f}-{r['high']:,.0f})"
        f" | {r['per_commit']:.1f} | {r['p50']:.2f} | {r['p99']:.2f} | {ratio} |"
    )


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


if __name__ == "__main__":
    raise SystemExit(main())
