"""What several daemons need of a store, and what only the Redis store does.

``TestLeases``, ``TestFencing``, ``TestTimerClaims`` and ``TestWakeups`` run on every store
(the ``store`` fixture): a daemon runs the same code on each, and in one process the memory and
SQLite stores keep the same rules. The rest is Redis's: the equivalence with the reference
store under random concurrent writes, two stores (two daemons) on one Redis claiming timers and
handing an inbox over, real expiry of leases and webhook ids, key prefixes, URLs, the script
cache. Every Redis test uses a key prefix of its own and deletes its keys when it ends.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio

from flowengine.store import (
    DueTimer,
    Lease,
    LeaseLostError,
    MemoryStore,
    RedisStore,
    Store,
    StoreConfigError,
    StoreError,
    StoreUnavailableError,
    open_store,
)

from .conftest import EPOCH, FakeClock, drop_keys, redis_keys, unique_prefix, with_prefix
from .test_contract import everything, new_call, snap
from .test_equivalence import CALLS, Random, answer, state


class Daemons:
    """Stores on one Redis key prefix, as several daemons would open them; drops the keys."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = unique_prefix()
        self.stores: list[RedisStore] = []

    async def open(self, clock: Callable[[], float] = time.time) -> RedisStore:
        store = await RedisStore.open(with_prefix(self.url, self.prefix), clock=clock)
        self.stores.append(store)
        return store

    async def close(self) -> None:
        for store in self.stores:
            await store.close()
        await drop_keys(self.url, self.prefix)


@pytest.fixture
async def daemons(redis_server: str) -> AsyncIterator[Daemons]:
    """Opens stores on one fresh prefix; closes them and deletes the prefix's keys."""
    made = Daemons(redis_server)
    yield made
    await made.close()


# -- on every store ----------------------------------------------------------------------------


class TestLeases:
    async def test_a_lease_is_exclusive_until_it_lapses(
        self, store: Store, clock: FakeClock
    ) -> None:
        first = await store.acquire_lease("c1", "a", 10)
        assert first is not None
        assert await store.acquire_lease("c1", "b", 10) is None
        assert await store.lease("c1") == Lease("c1", "a", first, EPOCH + 10)
        clock.advance(10)
        assert await store.lease("c1") is None
        second = await store.acquire_lease("c1", "b", 10)
        assert second is not None
        assert second > first
        assert await store.acquire_lease("c1", "a", 10) is None

    async def test_the_holder_acquiring_again_keeps_its_token(
        self, store: Store, clock: FakeClock
    ) -> None:
        token = await store.acquire_lease("c1", "a", 10)
        clock.advance(5)
        assert await store.acquire_lease("c1", "a", 10) == token
        lease = await store.lease("c1")
        assert lease is not None
        assert lease.expires_at == EPOCH + 15

    async def test_tokens_increase_across_calls(self, store: Store) -> None:
        tokens = [await store.acquire_lease(f"c{i}", "a", 10) for i in range(5)]
        assert tokens == sorted(tokens)
        assert len(set(tokens)) == 5

    async def test_renew_extends_a_live_lease_only(self, store: Store, clock: FakeClock) -> None:
        token = await store.acquire_lease("c1", "a", 10)
        assert token is not None
        clock.advance(8)
        assert await store.renew_lease("c1", "a", token, 10) is True
        clock.advance(8)  # 16 s after the grant: alive thanks to the renewal
        assert await store.renew_lease("c1", "b", token, 10) is False
        assert await store.renew_lease("c1", "a", token + 1, 10) is False
        clock.advance(10)
        assert await store.renew_lease("c1", "a", token, 10) is False  # lapsed: lost
        assert await store.lease("c1") is None

    async def test_release_lets_another_owner_in(self, store: Store) -> None:
        token = await store.acquire_lease("c1", "a", 10)
        assert token is not None
        assert await store.release_lease("c1", "b", token) is False
        assert await store.release_lease("c1", "a", token + 1) is False
        assert await store.release_lease("c1", "a", token) is True
        assert await store.release_lease("c1", "a", token) is False
        assert await store.lease("c1") is None
        assert await store.acquire_lease("c1", "b", 10) == token + 1

    async def test_bad_leases_are_refused(self, store: Store) -> None:
        with pytest.raises(StoreError, match="^a lease TTL must be positive, not 0$"):
            await store.acquire_lease("c1", "a", 0)
        with pytest.raises(StoreError, match="^a lease owner must not be empty$"):
            await store.acquire_lease("c1", "", 10)


class TestFencing:
    async def test_the_holders_token_writes(self, store: Store) -> None:
        token = await store.acquire_lease("c1", "a", 10)
        assert token is not None
        await new_call(store, fence=token, outbox_new={"c1:1:0": "{}"})
        assert await store.append("c1", expected_version=1, snapshot=snap(2), fence=token) == 2
        assert await store.begin_command("c1:1:0", fence=token) is not None
        assert await store.end_call("c1", fence=token) == 3

    async def test_a_stale_token_writes_nothing(self, store: Store, clock: FakeClock) -> None:
        old = await store.acquire_lease("c1", "a", 10)
        assert old is not None
        await new_call(store, fence=old, outbox_new={"c1:1:0": "{}"})
        clock.advance(11)  # daemon a paused past its lease; b took the call over
        new = await store.acquire_lease("c1", "b", 10)
        assert new is not None
        before = await everything(store, "c1")
        for write in (
            lambda: store.append(
                "c1",
                expected_version=1,
                snapshot=snap(9),
                journal_entries=[("event", "{}")],
                outbox_new={"c1:2:0": "{}"},
                timers_set={"t": EPOCH},
                fence=old,
            ),
            lambda: store.end_call("c1", fence=old),
            lambda: store.begin_command("c1:1:0", fence=old),
        ):
            with pytest.raises(LeaseLostError) as lost:
                await write()
            assert (lost.value.call_id, lost.value.token, lost.value.current) == ("c1", old, new)
            assert str(lost.value) == (
                f"call 'c1': lease token {old} is not valid (the live lease has token {new})"
            )
        assert await everything(store, "c1") == before
        assert await store.append("c1", expected_version=1, fence=new) == 2

    async def test_a_lapsed_lease_writes_nothing_even_unclaimed(
        self, store: Store, clock: FakeClock
    ) -> None:
        token = await store.acquire_lease("c1", "a", 10)
        assert token is not None
        clock.advance(10)
        with pytest.raises(LeaseLostError, match=r"\(no live lease\)$"):
            await store.create_call("c1", flow="f", flow_hash="h", snapshot="{}", fence=token)
        assert await store.load_call("c1") is None

    async def test_the_fence_is_checked_before_the_version(
        self, store: Store, clock: FakeClock
    ) -> None:
        token = await store.acquire_lease("c1", "a", 10)
        await new_call(store)
        await store.release_lease("c1", "a", token or 0)
        with pytest.raises(LeaseLostError):
            await store.append("c1", expected_version=7, fence=token)
        with pytest.raises(LeaseLostError):
            await store.append("ghost", expected_version=1, fence=token)


class TestTimerClaims:
    async def test_each_due_timer_is_claimed_once_until_its_hold_passes(
        self, store: Store, clock: FakeClock
    ) -> None:
        await new_call(store, "a", timers_set={"menu": EPOCH + 5, "limit": EPOCH + 60})
        await new_call(store, "b", timers_set={"ring": EPOCH + 1})
        now = EPOCH + 10
        assert await store.claim_timers(now, hold=30) == [
            DueTimer(EPOCH + 1, "b", "ring"),
            DueTimer(EPOCH + 5, "a", "menu"),
        ]
        assert await store.claim_timers(now, hold=30) == []
        assert len(await store.due_timers(now)) == 2  # claimed, still due
        # Set again (another deadline): a new timer, claimable at once.
        await store.append("a", expected_version=1, timers_set={"menu": EPOCH + 6})
        assert await store.claim_timers(now, hold=30) == [DueTimer(EPOCH + 6, "a", "menu")]
        # The claimer died: after the hold, the unhandled timers come back.
        assert await store.claim_timers(now + 30, hold=30, limit=1) == [
            DueTimer(EPOCH + 1, "b", "ring")
        ]
        assert await store.claim_timers(now + 30, hold=30) == [DueTimer(EPOCH + 6, "a", "menu")]
        assert await store.claim_timers(now + 60, hold=30, limit=0) == []
        with pytest.raises(StoreError, match="^a claim hold must be positive, not 0$"):
            await store.claim_timers(now, hold=0)

    async def test_handled_and_ended_timers_are_not_claimed(self, store: Store) -> None:
        await new_call(store, "a", timers_set={"menu": EPOCH})
        await new_call(store, "b", timers_set={"menu": EPOCH})
        await store.append("a", expected_version=1, timers_cleared=["menu"])
        await store.end_call("b")
        assert await store.claim_timers(EPOCH + 100, hold=30) == []


class TestWakeups:
    async def test_an_event_accepted_elsewhere_wakes_the_owner(self, store: Store) -> None:
        await new_call(store, "c1")
        await new_call(store, "c2")
        await store.acquire_lease("c1", "b", 10)
        await store.acquire_lease("c2", "b", 10)
        await store.accept("c1", "{}", by="a")
        await store.accept("c2", "{}", by="a")
        await store.accept("c1", "{}", by="a")
        await store.accept("c1", "{}", by="b")  # b took it in itself: nothing to tell
        assert await store.wakeups("b", wait=0) == ["c1", "c2"]  # each call once, in order
        assert await store.wakeups("b", wait=0) == []
        assert await store.wakeups("a", wait=0) == []

    async def test_nobody_is_woken_for_a_call_without_owner(
        self, store: Store, clock: FakeClock
    ) -> None:
        await new_call(store)
        await store.acquire_lease("c1", "b", 10)
        clock.advance(10)
        await store.accept("c1", "{}", by="a")
        assert await store.wakeups("b", wait=0) == []
        assert [e.seq for e in await store.inbox("c1")] == [1]  # kept for the next owner

    async def test_a_waiting_owner_is_woken_at_once(self, store: Store) -> None:
        await new_call(store)
        await store.acquire_lease("c1", "b", 10)
        waiting = asyncio.ensure_future(store.wakeups("b", wait=5))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await store.accept("c1", "{}", by="a")
        assert await asyncio.wait_for(waiting, 2) == ["c1"]
        assert time.monotonic() - started < 1
        assert await store.wakeups("b", wait=0.05) == []  # nothing more: the wait ends


# -- Redis only --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
async def test_redis_answers_as_the_reference_does(daemons: Daemons, seed: int) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    ref = MemoryStore(clock=clock)
    red = await daemons.open(clock)
    for store in (ref, red):
        for cid in CALLS:
            await store.create_call(
                cid, flow="f", flow_hash="h", snapshot="{}", outbox_new={f"{cid}:0:0": "c"}
            )
    make = Random(rng, ref)
    for round_ in range(40):
        made = [make.append() if rng.random() < 0.75 else make.other() for _ in range(12)]
        clock.advance(rng.choice([0, 1, 31]))
        want = await asyncio.gather(*(op(ref) for op in made), return_exceptions=True)
        got = await asyncio.gather(*(op(red) for op in made), return_exceptions=True)
        assert [answer(r) for r in got] == [answer(r) for r in want], (seed, round_)
        assert await state(red) == await state(ref), (seed, round_)
    batches, jobs = red.batches
    assert jobs > batches  # the rounds did share round trips


class TestSeveralDaemons:
    async def test_two_daemons_claim_each_due_timer_once(self, daemons: Daemons) -> None:
        clock = FakeClock()
        a, b = await daemons.open(clock), await daemons.open(clock)
        await asyncio.gather(
            *(new_call(a, f"c{i}", timers_set={"t": EPOCH + i % 7, "u": EPOCH}) for i in range(150))
        )
        claimed: dict[str, list[DueTimer]] = {"a": [], "b": []}

        async def claimer(name: str, store: RedisStore) -> None:
            while got := await store.claim_timers(EPOCH + 10, hold=60, limit=7):
                claimed[name] += got
                await asyncio.sleep(0)

        await asyncio.gather(claimer("a", a), claimer("b", b))
        every = claimed["a"] + claimed["b"]
        assert len(every) == 300
        assert set(every) == set(await a.due_timers(EPOCH + 10))
        assert claimed["a"]
        assert claimed["b"]  # both took part, none twice

    async def test_two_daemons_never_both_win_a_write_or_a_command(self, daemons: Daemons) -> None:
        a, b = await daemons.open(), await daemons.open()
        keys = [f"c1:1:{i}" for i in range(50)]
        await new_call(a, outbox_new=dict.fromkeys(keys, "{}"))
        begun = await asyncio.gather(
            *(store.begin_command(key) for key in keys for store in (a, b))
        )
        assert sorted(e.key for e in begun if e is not None) == sorted(keys)  # each sent once
        writes = await asyncio.gather(
            *(
                store.append("c1", expected_version=1, snapshot=snap(i))
                for i in range(10)
                for store in (a, b)
            ),
            return_exceptions=True,
        )
        assert writes.count(2) == 1  # one compare-and-set won, across both daemons

    async def test_an_inbox_is_handed_over_in_order_and_once(self, daemons: Daemons) -> None:
        clock = FakeClock()
        a, b = await daemons.open(clock), await daemons.open(clock)
        handled: list[tuple[str, str]] = []
        tokens: dict[str, int] = {}

        async def run(name: str, store: RedisStore, version: int) -> int:
            """What an owner does when woken: apply its inbox in order, fenced."""
            for entry in await store.inbox("c1"):
                version = await store.append(
                    "c1", expected_version=version, applied=[entry.seq], fence=tokens[name]
                )
                handled.append((name, entry.payload))
            return version

        token = await b.acquire_lease("c1", "b", 10)
        assert token is not None
        tokens["b"] = token
        await b.create_call("c1", flow="f", flow_hash="h", snapshot="{}", fence=token)
        # Webhooks land on a, for a call b owns: a keeps them, b is woken and applies them.
        for n in range(3):
            assert await a.accept("c1", f"e{n}", webhook_id=f"w{n}", by="a") is not None
        assert await a.accept("c1", "e0", webhook_id="w0", by="a") is None  # a redelivery
        assert await b.wakeups("b", wait=1) == ["c1"]
        version = await run("b", b, 1)
        # b dies (no renewal); an event arrives meanwhile; its lease lapses; a takes over.
        assert await a.accept("c1", "e3", webhook_id="w3", by="a") is not None
        assert await a.acquire_lease("c1", "a", 10) is None  # not before the lapse
        clock.advance(10)
        token = await a.acquire_lease("c1", "a", 10)
        assert token is not None
        tokens["a"] = token
        version = await run("a", a, version)
        # b comes back from its pause: nothing is left for it, and it cannot write.
        assert await b.inbox("c1") == []
        with pytest.raises(LeaseLostError):
            await b.append("c1", expected_version=version, snapshot="{}", fence=tokens["b"])
        assert handled == [("b", "e0"), ("b", "e1"), ("b", "e2"), ("a", "e3")]
        assert await a.inbox() == []
        assert [e.applied for e in await b.journal("c1")] == [True] * 4

    async def test_a_lease_lapses_in_real_time(self, daemons: Daemons) -> None:
        a, b = await daemons.open(), await daemons.open()
        old = await a.acquire_lease("c1", "a", 0.2)
        assert old is not None
        await a.create_call("c1", flow="f", flow_hash="h", snapshot="{}", fence=old)
        lease_key = f"{daemons.prefix}:lease:c1"
        assert 0 < await a.client.pttl(lease_key) <= 200
        await asyncio.sleep(0.3)
        assert await a.client.exists(lease_key) == 0  # Redis expired it too
        new = await b.acquire_lease("c1", "b", 5)
        assert new is not None
        assert new > old
        with pytest.raises(LeaseLostError):
            await a.append("c1", expected_version=1, fence=old)
        assert await b.append("c1", expected_version=1, fence=new) == 2

    async def test_webhook_ids_expire_in_real_time(self, daemons: Daemons) -> None:
        store = await daemons.open()
        await new_call(store)
        assert await store.accept("c1", "{}", webhook_id="w1", ttl=0.2) is not None
        assert await store.claim_webhook("w1", 0.2) is False
        hook_key = f"{daemons.prefix}:hook:w1"
        assert 0 < await store.client.pttl(hook_key) <= 200
        await asyncio.sleep(0.3)
        assert await store.client.exists(hook_key) == 0  # no sweeping: Redis dropped it
        assert await store.claim_webhook("w1", 0.2) is True

    async def test_concurrent_writes_share_round_trips(self, daemons: Daemons) -> None:
        store = await daemons.open()
        await asyncio.gather(*(new_call(store, f"c{i}") for i in range(100)))
        before = store.batches
        await asyncio.gather(
            *(store.append(f"c{i}", expected_version=1, snapshot=snap(2)) for i in range(100))
        )
        batches, jobs = (now - then for now, then in zip(store.batches, before, strict=True))
        assert jobs == 100
        assert batches < 20


class TestKeys:
    async def test_prefixes_keep_stores_apart_and_are_cleaned_up(self, redis_server: str) -> None:
        one, two = Daemons(redis_server), Daemons(redis_server)
        a, b = await one.open(), await two.open()
        try:
            await asyncio.gather(*(new_call(a, f"c{i}") for i in range(600)))
            await new_call(b, "c0", timers_set={"t": EPOCH})
            await a.accept("c1", "{}", webhook_id="w")
            assert len(await a.live_calls()) == 600  # more than one pipeline of reads
            assert [r.call_id for r in await b.live_calls()] == ["c0"]
            assert await b.claim_webhook("w") is True
            assert await b.inbox() == []
            assert await a.due_timers(EPOCH) == []
            keys = await redis_keys(redis_server, one.prefix)
            assert len(keys) > 600
            assert all(k.startswith(f"{one.prefix}:") for k in keys)
        finally:
            await one.close()
            await two.close()
        assert await redis_keys(redis_server, one.prefix) == []
        assert await redis_keys(redis_server, two.prefix) == []

    async def test_purge_deletes_every_key_of_a_call(self, daemons: Daemons) -> None:
        clock = FakeClock()
        store = await daemons.open(clock)
        await new_call(store, "old", outbox_new={"old:1:0": "{}"}, timers_set={"t": EPOCH})
        await store.accept("old", "{}")
        await store.end_call("old")
        clock.advance(10)
        assert await store.purge_ended(EPOCH + 5) == 1
        left = set(await redis_keys(daemons.url, daemons.prefix))
        assert not any(":old" in key for key in left), left


class TestOpening:
    async def test_open_store_opens_redis(self, daemons: Daemons) -> None:
        store = await open_store(with_prefix(daemons.url, daemons.prefix))
        assert isinstance(store, RedisStore)
        daemons.stores.append(store)
        assert store.prefix == daemons.prefix
        assert store.persistence  # what the server keeps, for the daemon's start-up log
        await new_call(store)
        assert await redis_keys(daemons.url, daemons.prefix)

    async def test_the_url_names_the_database(self, redis_server: str) -> None:
        prefix = unique_prefix()
        base = redis_server.rsplit("/", 1)[0]
        store = await RedisStore.open(f"{base}/3?prefix={prefix}")
        try:
            await new_call(store)
            async with redis.asyncio.Redis.from_url(f"{base}/3") as db3:
                assert await db3.exists(f"{prefix}:call:c1") == 1
            assert await redis_keys(f"{base}/0", prefix) == []
        finally:
            await store.close()
            await drop_keys(f"{base}/3", prefix)

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("redis://127.0.0.1:6379/0?prefix=a%20b", "key prefix 'a b'"),
            ("redis://127.0.0.1:6379/zero", "the path must be a database number"),
            ("redis://u:secret@127.0.0.1:6379/x", "redis://u:\\*\\*\\*@127.0.0.1:6379/x"),
            ("redis://127.0.0.1:6379/0?max_connections=many", "Invalid value"),
        ],
    )
    async def test_bad_urls(self, url: str, message: str) -> None:
        with pytest.raises(StoreConfigError, match=message) as info:
            await open_store(url)
        assert "secret" not in str(info.value)

    async def test_no_server_is_a_clear_error(self) -> None:
        with socket.socket() as probe:  # a loopback port where nothing listens
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(
            StoreUnavailableError, match=f"cannot use Redis at redis://127.0.0.1:{port}/0"
        ):
            await open_store(f"redis://127.0.0.1:{port}/0")
        assert time.monotonic() - started < 5

    async def test_a_flushed_script_cache_is_loaded_again(self, daemons: Daemons) -> None:
        store = await daemons.open()
        await new_call(store)
        await store.client.script_flush()
        assert await store.append("c1", expected_version=1) == 2
        await store.client.script_flush()
        assert await store.pending_commands() == []

    async def test_a_closed_store_refuses_every_operation(self, daemons: Daemons) -> None:
        store = await daemons.open()
        await store.close()
        for op in (
            store.acquire_lease("c1", "a", 1),
            store.lease("c1"),
            store.wakeups("a", wait=0),
            store.claim_timers(EPOCH, hold=1),
            store.command("k"),
            store.due_timers(EPOCH),
        ):
            with pytest.raises(StoreUnavailableError, match="^the store is closed$"):
                await op
