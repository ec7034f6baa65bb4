"""Two daemons on one shared store, in one process: hand-over, take-over and fencing.

Both daemons share one store, a Redis one (a prefix of its own) or one ``MemoryData`` (the
leases, timer claims and wake-ups of a shared store, with the Redis store's semantics), and one
``VirtualClock`` with the emulator, so a lease lapses exactly when the test moves time past it.
Which daemon Daily talks to is chosen per test with the emulator's targets. The tests with
``flowengine serve`` processes, Redis and a SIGKILL are in tests/e2e.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import structlog.testing

from flowengine.daemon.app import Daemon
from flowengine.daemon.logs import path_of
from flowengine.emulator import Callee, Caller, Emulator
from flowengine.runtime.ports import VirtualClock
from flowengine.store import MemoryData, MemoryStore, RedisStore, Store, StoreConflictError
from tests.store.conftest import drop_keys, redis_server, unique_prefix, with_prefix

from .conftest import AUTH, BASE, NoPacing, settings
from .test_call import EXPECTED

TTL = 2.0


class Pair:
    """Two daemons, A and B, on one shared store, and the emulator.

    ``redis_url``: the daemons share a Redis store on a prefix of their own (deleted at the
    end); without it, one ``MemoryData``.
    """

    def __init__(self, flows: Path, redis_url: str | None = None) -> None:
        self.clock = VirtualClock()
        self.emu = Emulator(clock=self.clock)
        self.emu.limits(False)
        self.data = MemoryData()
        self.redis_url = redis_url
        self.prefix = unique_prefix()
        self.stores: list[Store] = []
        self.daemons: dict[str, Daemon] = {}
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.flows = flows

    async def open_store(self) -> Store:
        store: Store
        if self.redis_url is None:
            store = MemoryStore(self.data, clock=self.clock.now)
        else:
            url = with_prefix(self.redis_url, self.prefix)
            store = await RedisStore.open(url, clock=self.clock.now)
        self.stores.append(store)
        return store

    async def start(self, name: str, flows: Path | None = None) -> Daemon:
        store = await self.open_store()
        daily = self.emu.daily_client(limiter=NoPacing())
        daemon = Daemon(
            settings(flows or self.flows, lease_ttl=TTL, owner=f"daemon-{name}"),
            store=store,
            daily=daily,
            clock=self.clock,
            shared=True,
        )
        self.daemons[name] = daemon
        self.clients[name] = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=daemon.app()), base_url=BASE
        )
        await daemon.start()
        return daemon

    def route(self, *, dialin: str, webhooks: str) -> None:
        """Send pinless requests to one daemon and webhooks to another (or the same)."""
        self.emu.set_dialin_target(f"{BASE}/daily/dialin", self.daemons[dialin].app())
        self.emu.set_webhook_target(f"{BASE}/daily/webhooks", self.daemons[webhooks].app())

    async def die(self, name: str) -> None:
        """Stop a daemon as SIGKILL would: its leases are left to lapse, nothing drained."""
        daemon = self.daemons.pop(name)
        assert daemon.ownership is not None
        await daemon.ownership.stop(release=False)
        await daemon.engine.aclose()
        await self.clients.pop(name).aclose()

    async def settle(self) -> None:
        for _ in range(50):
            await self.emu.settle()
            for daemon in self.daemons.values():
                await daemon.engine.idle()
                await daemon.persistence.drain()
            await asyncio.sleep(0.01)  # wake-ups cross between the daemons
            await self.emu.settle()
            busy = any(d.engine._pending for d in self.daemons.values())
            if not self.emu.outbox.pending and not busy:
                return

    async def advance(self, seconds: float, step: float = 0.25) -> None:
        moved = 0.0
        while moved < seconds:
            await self.emu.advance(min(step, seconds - moved))
            await self.settle()
            moved += step

    async def press(self, via: str, call_id: str, key: str) -> None:
        answer = await self.clients[via].post(
            f"/v1/calls/{call_id}/events",
            json={"name": "dtmf", "payload": {"tone": key}},
            headers=AUTH,
        )
        assert answer.status_code == 202, answer.text
        await self.settle()

    async def aclose(self) -> None:
        for daemon in self.daemons.values():
            await daemon.stop()
        for client in self.clients.values():
            await client.aclose()
        await self.emu.aclose()
        for store in self.stores:
            await store.close()
        if self.redis_url is not None:
            await drop_keys(self.redis_url, self.prefix)


__all__ = ["redis_server"]  # the Redis tests' fixture, shared with tests/store


@pytest.fixture(params=["memory", "redis"])
async def pair(request: pytest.FixtureRequest, flows_dir: Path) -> AsyncIterator[Pair]:
    redis_url = request.getfixturevalue("redis_server") if request.param == "redis" else None
    pair = Pair(flows_dir, redis_url)
    await pair.start("a")
    await pair.start("b")
    yield pair
    await pair.aclose()


async def _call_on_a(pair: Pair) -> str:
    pair.emu.callee("+14155550111", Callee.answers(after=1))
    inbound = await pair.emu.place_call("+14155550100", "+14155550123", caller=Caller())
    await pair.settle()
    await pair.advance(2)  # dialin.ready -> pinlessCallUpdate -> dialin.connected
    return "in-" + inbound.call_id


async def test_events_that_land_on_the_other_daemon_reach_the_calls_owner(pair: Pair) -> None:
    async with asyncio.timeout(20):
        pair.route(dialin="a", webhooks="b")
        call_id = await _call_on_a(pair)
        a, b = pair.daemons["a"], pair.daemons["b"]
        session = a.engine.get(call_id)
        assert session is not None
        assert session.state == "menu"
        await pair.press("b", call_id, "1")  # the caller's key, heard through daemon B
        assert session.state == "desk"  # B woke A at once: no time has passed
        await pair.advance(4)
    assert session.ended
    assert session.outcome == "hangup"
    assert path_of(session) == ["welcome", "menu", "desk", "code", "bye"]
    assert b.engine.get(call_id) is None  # B journaled and handed over; it never ran the call
    assert [e.endpoint for e in pair.emu.log.side_effects()] == EXPECTED
    assert await a.store.inbox(call_id) == []


async def test_a_dead_daemons_call_is_taken_over_once_its_lease_lapses(pair: Pair) -> None:
    async with asyncio.timeout(20):
        pair.route(dialin="a", webhooks="a")
        call_id = await _call_on_a(pair)
        await pair.die("a")
        pair.route(dialin="b", webhooks="b")
        b = pair.daemons["b"]
        with structlog.testing.capture_logs() as logs:
            await pair.press("b", call_id, "1")  # accepted by B while A's lease still holds
            assert b.engine.get(call_id) is None
            await pair.advance(TTL + 1.5)  # A's lease lapses; B's sweep takes the call
            session = b.engine.get(call_id)
            assert session is not None
            await pair.advance(4)
    assert session.ended
    # The key accepted before the menu's timer came due is handled before it.
    assert path_of(session) == ["welcome", "menu", "desk", "code", "bye"]
    assert [e.endpoint for e in pair.emu.log.side_effects()] == EXPECTED
    taken = [e for e in logs if e["event"] == "call taken over"]
    assert [(e["call_id"], e["owner"]) for e in taken] == [(call_id, "daemon-b")]
    metrics = b.metrics.render().decode()
    assert 'flowengine_calls_handed_over_total{direction="taken"} 1.0' in metrics


async def test_a_paused_daemon_writes_nothing_once_its_call_was_taken(pair: Pair) -> None:
    async with asyncio.timeout(20):
        pair.route(dialin="a", webhooks="a")
        call_id = await _call_on_a(pair)
        a, b = pair.daemons["a"], pair.daemons["b"]
        assert a.ownership is not None
        assert b.ownership is not None
        await a.ownership.stop(release=False)  # A stalls: no renewals, its engine still runs
        await pair.clock.advance(TTL + 0.5)  # past the lease, short of the menu's timeout
        taken = await b.ownership.take_over(call_id)
        assert taken is not None
        assert taken.state == "menu"
        record = await b.store.load_call(call_id)
        assert record is not None
        version = record.version
        # A, still holding the call in memory, hears a key: it is journaled (anyone may
        # accept), but A's step is refused and A drops the call; B, woken, runs the key.
        with structlog.testing.capture_logs() as logs:
            await pair.press("a", call_id, "1")
            await pair.advance(4)
    assert a.engine.get(call_id) is None
    assert any(e["event"] == "call lost to another daemon" for e in logs)
    assert 'flowengine_calls_handed_over_total{direction="lost"} 1.0' in a.metrics.render().decode()
    assert taken.ended
    assert path_of(taken) == ["welcome", "menu", "desk", "code", "bye"]
    record = await b.store.load_call(call_id)
    assert record is not None
    assert record.version > version
    assert [e.endpoint for e in pair.emu.log.side_effects()] == EXPECTED


async def test_a_pinless_retry_on_the_other_daemon_finds_the_call(pair: Pair) -> None:
    pair.route(dialin="a", webhooks="a")
    call_id = await _call_on_a(pair)
    a, b = pair.daemons["a"], pair.daemons["b"]
    assert b.ownership is not None
    assert await b.ownership.lease(call_id) is None  # A holds it
    with pytest.raises(StoreConflictError):
        await b.store.create_call(call_id, flow="desk", flow_hash="x", snapshot="{}")
    assert a.engine.get(call_id) is not None


async def test_a_stopping_daemon_releases_its_calls_to_the_others(pair: Pair) -> None:
    async with asyncio.timeout(20):
        pair.route(dialin="a", webhooks="a")
        call_id = await _call_on_a(pair)
        a = pair.daemons.pop("a")
        await a.stop()
        await pair.clients.pop("a").aclose()
        pair.route(dialin="b", webhooks="b")
        b = pair.daemons["b"]
        assert await b.store.lease(call_id) is None  # released, not left to lapse
        await pair.press("b", call_id, "1")  # B takes the call on the spot
        session = b.engine.get(call_id)
        assert session is not None
        await pair.advance(4)
    assert session.ended
    assert path_of(session) == ["welcome", "menu", "desk", "code", "bye"]
    assert [e.endpoint for e in pair.emu.log.side_effects()] == EXPECTED


async def test_a_call_is_taken_over_on_a_flow_version_the_taker_never_loaded(
    pair: Pair, tmp_path: Path
) -> None:
    async with asyncio.timeout(20):
        # C is deployed with a newer desk flow (its menu sends 1 elsewhere) before the call.
        newer = tmp_path / "newer"
        newer.mkdir()
        text = (pair.flows / "desk.yaml").read_text(encoding="utf-8")
        (newer / "desk.yaml").write_text(
            text.replace("options: {1: desk}", "options: {1: bye}"), encoding="utf-8"
        )
        await pair.daemons.pop("b").stop()
        await pair.clients.pop("b").aclose()
        c = await pair.start("c", newer)
        pair.route(dialin="a", webhooks="a")
        call_id = await _call_on_a(pair)
        old = pair.daemons["a"].engine.get(call_id)
        assert old is not None
        assert c.catalog.flows.version(old.flow_hash) is None  # never loaded by C
        await pair.die("a")
        pair.route(dialin="c", webhooks="c")
        await pair.press("c", call_id, "1")
        await pair.advance(TTL + 1.5)
        session = c.engine.get(call_id)
        assert session is not None
        await pair.advance(4)
    assert session.flow_hash == old.flow_hash  # finished on the version it started on
    assert path_of(session) == ["welcome", "menu", "desk", "code", "bye"]
    current = c.catalog.flows.get("desk")
    assert current is not None
    assert current.content_hash != old.flow_hash  # new calls still get C's version
