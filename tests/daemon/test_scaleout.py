"""Scale-out: two ``flowengine serve`` on one Redis, Daily's requests spread over both.

The issue's definition of done, as two tests on the crash test's line (``crashline``): two
daemons run as child processes on one Redis key prefix (unique per run, deleted afterwards),
and the emulator, standing for Daily behind a load balancer, sends each webhook delivery
attempt and each pinless request to one of them at random (seeded), as the bridge does with
the callers' key presses. 500 calls are placed; only the emulator's rate limits are off, and
only one call in fifty asks for the desk, since each daemon paces its transfers (about one a
second). Afterwards:

- every call has ended exactly on its flow's path for what its caller did, with exactly the
  Daily side effects of that path;
- the emulator's request log shows no side effect done twice;
- no webhook answered 2xx is lost: each is in its call's journal in Redis, or a daemon logged
  that it ignored it after its call had ended;
- each call was started by exactly one daemon, and both daemons started calls.

The second test SIGKILLs daemon 0 once, mid-run, and does not restart it: the load balancer
(the stack) sends everything to daemon 1 from then on, and daemon 1 must take daemon 0's calls
over once their leases lapse (``--lease-ttl 2``), logging ``call taken over`` for each. The
same checks hold.

What makes it hold is docs/daemon.md#several-daemons: per-call leases, events handed to the
call's owner, and the takeover of a dead daemon's calls.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from flowengine.emulator import Delivery, FarEnds
from flowengine.harness import Stack
from flowengine.harness.report import effects_by_call
from flowengine.store import RedisStore
from tests.store.conftest import NO_REDIS, REDIS_URL, drop_keys, unique_prefix, with_prefix

from .crashline import (
    FLOW,
    Script,
    assert_nothing_doubled,
    assert_on_path,
    journals,
    lost_webhooks,
    place_all,
    scripts,
    story,
)

CALLS = 500
DESK_EVERY = 50
SEED = 11
LEASE_TTL = 2
BOUND = 80.0
"""Seconds each test may take in all."""
SETTLE = 15.0
"""Seconds of the bound kept for reading back traces, logs and journals."""
TAKEN_OVER = "call taken over"


@pytest.fixture
async def redis_store() -> AsyncIterator[str]:
    """A Redis store URL on a key prefix of its own; its keys are deleted afterwards."""
    if REDIS_URL is None:
        pytest.skip("FLOWENGINE_REDIS_URL=off: scale-out needs Redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(NO_REDIS.format(url=REDIS_URL, error=exc), pytrace=False)
    finally:
        client.close()
    prefix = unique_prefix()
    yield with_prefix(REDIS_URL, prefix)
    await drop_keys(REDIS_URL, prefix)


@dataclass
class Run:
    """What one run left behind, read back once every call ended (or the time ran out)."""

    plan: list[Script]
    ids: list[str]
    calls: dict[str, dict[str, Any]]
    traces: dict[str, list[dict[str, Any]]]
    effects: dict[str, list[str]]
    deliveries: list[Delivery]
    records: list[list[dict[str, Any]]]
    """Each daemon's log lines."""
    journal_of: dict[str, list[dict[str, Any]]]
    daemon_urls: list[str]
    started: float

    @property
    def all_records(self) -> list[dict[str, Any]]:
        return [line for lines in self.records for line in lines]

    def logged(self, daemon: int, event: str) -> set[str]:
        """The call ids of the lines ``event`` in daemon ``daemon``'s log."""
        return {str(r["call_id"]) for r in self.records[daemon] if r.get("event") == event}


async def _traces(stack: Stack, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each call's trace (empty when no daemon could give it: the checks then name the call)."""
    gate = asyncio.Semaphore(8)

    async def one(call_id: str) -> list[dict[str, Any]]:
        async with gate:
            try:
                return await stack.trace(call_id)
            except httpx.HTTPError:
                return []

    return dict(zip(ids, await asyncio.gather(*(one(c) for c in ids)), strict=True))


async def _run(tmp_path: Path, store: str, *, kill: bool) -> Run:
    rng = random.Random(SEED)
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "crash-line.yaml").write_text(FLOW, encoding="utf-8")
    plan = scripts(rng, CALLS, desk_every=DESK_EVERY)
    started = time.monotonic()
    async with asyncio.timeout(BOUND):
        async with Stack(
            flows=flows,
            workdir=tmp_path / "run",
            far_ends=FarEnds(),  # everyone answers at once, the desk included
            rate_limits=False,
            seed=SEED,
            daemons=2,
            store=store,
            daemon_args=["--lease-ttl", str(LEASE_TTL)] if kill else [],
        ) as stack:
            ids = await place_all(stack, plan)
            if kill:
                # Mid-run: the first callers act 8 s after they were connected.
                await asyncio.sleep(rng.uniform(1.0, 4.0))
                stack.kill_daemon(0)
            left = BOUND - (time.monotonic() - started) - SETTLE
            calls = await stack.wait_ended(ids, left, every=0.5)
            traces = await _traces(stack, ids)
            for i in stack.live():
                assert await stack.daemons[i].stop() == 0  # each drains and exits 0
            effects = effects_by_call(stack.emulator.log.side_effects())
            deliveries = list(stack.emulator.webhooks.deliveries)
            records = [daemon.log_records() for daemon in stack.daemons]
            daemon_urls = stack.daemon_urls
        async with await RedisStore.open(store) as redis_store:
            journal_of = await journals(redis_store, ids)
    return Run(
        plan, ids, calls, traces, effects, deliveries, records, journal_of, daemon_urls, started
    )


def _check(run: Run) -> None:
    """The checks both tests share (the module docstring lists them)."""
    assert len(set(run.ids)) == CALLS
    assert_on_path(
        run.ids,
        run.plan,
        run.calls,
        run.traces,
        run.effects,
        lambda c: story(c, run.traces[c], run.deliveries, run.started),
    )
    assert_nothing_doubled(run.effects)
    assert lost_webhooks(run.deliveries, run.journal_of, run.all_records) == []
    started = [run.logged(i, "call started") for i in range(2)]
    assert all(started), [len(s) for s in started]  # both daemons took calls
    assert started[0].isdisjoint(started[1])
    assert started[0] | started[1] == set(run.ids)


async def test_two_daemons_share_500_calls(tmp_path: Path, redis_store: str) -> None:
    run = await _run(tmp_path, redis_store, kill=False)
    _check(run)
    # Daily's webhooks reached both daemons.
    assert {d.url for d in run.deliveries if d.ok} == {
        f"{url}/daily/webhooks" for url in run.daemon_urls
    }


async def test_a_daemon_killed_mid_run_loses_nothing(tmp_path: Path, redis_store: str) -> None:
    run = await _run(tmp_path, redis_store, kill=True)
    _check(run)
    taken_over = run.logged(1, TAKEN_OVER)
    assert taken_over, "daemon 1 took none of daemon 0's calls over"
    assert taken_over <= run.logged(0, "call started")
    # A call daemon 0 started and daemon 1 finished was taken over first.
    finished_by_1 = run.logged(1, "cdr")
    assert run.logged(0, "call started") & finished_by_1 <= taken_over
    assert run.logged(0, TAKEN_OVER) == set()
