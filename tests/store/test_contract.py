"""The store contract, run against every implementation (the ``store`` fixture).

Whatever a store is built on, it must behave exactly as these tests say: versions and
compare-and-set, atomic appends, journal numbering, the outbox's states, webhook dedupe with
a TTL, due timers, the inbox, the flow versions calls are pinned to, and everything still there
when the store is reopened.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from flowengine.store import (
    CallNotFoundError,
    CallRecord,
    CallStatus,
    CommandState,
    DueTimer,
    EntryKind,
    FlowVersion,
    Store,
    StoreConflictError,
    StoreError,
    StoreUnavailableError,
)

from .conftest import EPOCH, FakeClock, Harness


def snap(n: int) -> str:
    return json.dumps({"format": 1, "n": n})


async def new_call(store: Store, call_id: str = "c1", **kw: object) -> CallRecord:
    return await store.create_call(
        call_id,
        flow="support",
        flow_hash="h" * 64,
        snapshot=snap(1),
        **kw,  # type: ignore[arg-type]
    )


async def everything(store: Store, call_id: str) -> tuple[object, ...]:
    """All a store says about one call, to compare before and after."""
    return (
        await store.load_call(call_id),
        await store.journal(call_id),
        await store.inbox(call_id),
        await store.pending_commands(call_id),
        [t for t in await store.due_timers(EPOCH + 10**6) if t.call_id == call_id],
    )


class TestCalls:
    async def test_implements_the_protocol(self, store: Store) -> None:
        assert isinstance(store, Store)

    async def test_a_new_call_is_live_at_version_1(self, store: Store, clock: FakeClock) -> None:
        record = await new_call(store)
        assert record == CallRecord(
            "c1", "support", "h" * 64, snap(1), 1, CallStatus.LIVE, EPOCH, EPOCH
        )
        assert await store.load_call("c1") == record
        assert record.live
        assert await store.load_call("nope") is None

    async def test_creating_a_call_twice_is_a_conflict(self, store: Store) -> None:
        await new_call(store)
        before = await everything(store, "c1")
        with pytest.raises(StoreConflictError, match="^call 'c1' is at version 1, not 0$"):
            await store.create_call(
                "c1", flow="other", flow_hash="x", snapshot="{}", journal_entries=[("event", "1")]
            )
        assert await everything(store, "c1") == before

    async def test_a_call_can_start_with_entries_commands_and_timers(self, store: Store) -> None:
        await new_call(
            store,
            journal_entries=[("event", '{"name":"start"}')],
            outbox_new={"c1:1:0": '{"type":"answer"}'},
            timers_set={"limit": EPOCH + 60},
        )
        assert [(e.seq, e.kind) for e in await store.journal("c1")] == [(1, EntryKind.EVENT)]
        assert [c.key for c in await store.pending_commands("c1")] == ["c1:1:0"]
        assert await store.due_timers(EPOCH + 60) == [DueTimer(EPOCH + 60, "c1", "limit")]

    async def test_append_bumps_the_version_and_replaces_the_snapshot(
        self, store: Store, clock: FakeClock
    ) -> None:
        await new_call(store)
        clock.advance(5)
        assert await store.append("c1", expected_version=1, snapshot=snap(2)) == 2
        assert await store.append("c1", expected_version=2) == 3  # no snapshot: kept
        record = await store.load_call("c1")
        assert record is not None
        assert (record.version, record.snapshot) == (3, snap(2))
        assert (record.created_at, record.updated_at) == (EPOCH, EPOCH + 5)

    async def test_a_stale_version_is_refused_and_writes_nothing(self, store: Store) -> None:
        await new_call(store)
        await store.append("c1", expected_version=1, snapshot=snap(2))
        before = await everything(store, "c1")
        with pytest.raises(StoreConflictError) as info:
            await store.append(
                "c1",
                expected_version=1,
                snapshot=snap(99),
                journal_entries=[("event", "{}")],
                outbox_new={"c1:9:0": "{}"},
                timers_set={"t": EPOCH},
            )
        assert (info.value.call_id, info.value.expected, info.value.actual) == ("c1", 1, 2)
        assert await everything(store, "c1") == before

    async def test_concurrent_writers_of_one_version_one_wins(self, store: Store) -> None:
        await new_call(store)
        results = await asyncio.gather(
            *(store.append("c1", expected_version=1, snapshot=snap(i)) for i in range(10)),
            return_exceptions=True,
        )
        assert results.count(2) == 1
        assert sum(isinstance(r, StoreConflictError) for r in results) == 9
        winner = results.index(2)
        record = await store.load_call("c1")
        assert record is not None
        assert (record.version, record.snapshot) == (2, snap(winner))

    async def test_many_calls_append_concurrently(self, store: Store) -> None:
        for i in range(50):
            await new_call(store, f"c{i}")
        for version in range(1, 4):
            got = await asyncio.gather(
                *(
                    store.append(
                        f"c{i}",
                        expected_version=version,
                        snapshot=snap(version + 1),
                        journal_entries=[("event", str(version))],
                    )
                    for i in range(50)
                )
            )
            assert got == [version + 1] * 50
        for i in range(50):
            assert [e.payload for e in await store.journal(f"c{i}")] == ["1", "2", "3"]

    async def test_unknown_calls_are_reported(self, store: Store) -> None:
        with pytest.raises(CallNotFoundError, match="^no call 'ghost' in the store$"):
            await store.append("ghost", expected_version=1)
        with pytest.raises(CallNotFoundError):
            await store.end_call("ghost")
        with pytest.raises(CallNotFoundError):
            await store.accept("ghost", "{}")
        assert await store.journal("ghost") == []

    async def test_ending_a_call(self, store: Store, clock: FakeClock) -> None:
        await new_call(store, "a")
        await new_call(store, "b", timers_set={"t": EPOCH})
        with pytest.raises(StoreConflictError):
            await store.end_call("b", expected_version=7)
        clock.advance(1)
        assert await store.end_call("b", expected_version=1) == 2
        record = await store.load_call("b")
        assert record is not None
        assert (record.status, record.live, record.updated_at) == (
            CallStatus.ENDED,
            False,
            EPOCH + 1,
        )
        assert [r.call_id for r in await store.live_calls()] == ["a"]
        assert await store.due_timers(EPOCH) == []

    async def test_the_last_append_can_end_the_call(self, store: Store) -> None:
        await new_call(store, timers_set={"t": EPOCH})
        assert await store.append("c1", expected_version=1, snapshot=snap(2), end=True) == 2
        record = await store.load_call("c1")
        assert record is not None
        assert (record.status, record.snapshot) == (CallStatus.ENDED, snap(2))
        assert await store.due_timers(EPOCH) == []

    async def test_live_calls_oldest_first(self, store: Store, clock: FakeClock) -> None:
        for name in ("b", "a", "c"):
            await new_call(store, name)
            clock.advance(1)
        await new_call(store, "d")  # same time as c: then by id
        await store.end_call("a")
        assert [r.call_id for r in await store.live_calls()] == ["b", "c", "d"]

    async def test_purge_drops_calls_ended_long_ago(self, store: Store, clock: FakeClock) -> None:
        await new_call(store, "old", outbox_new={"old:1:0": "{}"})
        await new_call(store, "live")
        await store.end_call("old")
        clock.advance(100)
        await new_call(store, "recent")
        await store.end_call("recent")
        assert await store.purge_ended(EPOCH + 50) == 1
        assert await store.load_call("old") is None
        assert await store.journal("old") == []
        assert await store.command("old:1:0") is None
        assert {r.call_id for r in await store.live_calls()} == {"live"}
        assert await store.load_call("recent") is not None


class TestJournal:
    async def test_entries_are_numbered_from_1_without_gaps(
        self, store: Store, clock: FakeClock
    ) -> None:
        await new_call(store, journal_entries=[("event", "a")])
        await store.accept("c1", "b")
        clock.advance(1)
        await store.append(
            "c1",
            expected_version=1,
            journal_entries=[(EntryKind.COMMAND, "c"), ("result", "d")],
        )
        entries = await store.journal("c1")
        assert [(e.seq, e.kind, e.payload) for e in entries] == [
            (1, EntryKind.EVENT, "a"),
            (2, EntryKind.EVENT, "b"),
            (3, EntryKind.COMMAND, "c"),
            (4, EntryKind.RESULT, "d"),
        ]
        assert [e.at for e in entries] == [EPOCH, EPOCH, EPOCH + 1, EPOCH + 1]
        assert [e.seq for e in await store.journal("c1", after=2)] == [3, 4]

    async def test_an_unknown_kind_is_refused_and_writes_nothing(self, store: Store) -> None:
        await new_call(store)
        before = await everything(store, "c1")
        with pytest.raises(StoreError, match="^unknown journal entry kind 'note'$"):
            await store.append(
                "c1", expected_version=1, journal_entries=[("event", "x"), ("note", "y")]
            )
        assert await everything(store, "c1") == before

    async def test_journals_of_calls_are_separate(self, store: Store) -> None:
        await new_call(store, "a", journal_entries=[("event", "a1")])
        await new_call(store, "b", journal_entries=[("event", "b1")])
        await store.append("a", expected_version=1, journal_entries=[("event", "a2")])
        assert [e.payload for e in await store.journal("a")] == ["a1", "a2"]
        assert [(e.call_id, e.seq) for e in await store.journal("b")] == [("b", 1)]


class TestOutbox:
    async def test_new_commands_are_pending_in_the_order_produced(self, store: Store) -> None:
        await new_call(store, "a", outbox_new={"a:1:0": "{1}", "a:1:1": "{2}"})
        await new_call(store, "b", outbox_new={"b:1:0": "{3}"})
        await store.append("a", expected_version=1, outbox_new={"a:2:0": "{4}"})
        every = await store.pending_commands()
        assert [(c.key, c.call_id, c.command) for c in every] == [
            ("a:1:0", "a", "{1}"),
            ("a:1:1", "a", "{2}"),
            ("b:1:0", "b", "{3}"),
            ("a:2:0", "a", "{4}"),
        ]
        assert {(c.state, c.attempts) for c in every} == {(CommandState.PENDING, 0)}
        assert [c.key for c in await store.pending_commands("a")] == ["a:1:0", "a:1:1", "a:2:0"]

    async def test_results_settle_commands_with_the_step(self, store: Store) -> None:
        await new_call(store, outbox_new={"c1:1:0": "{}", "c1:1:1": "{}", "c1:1:2": "{}"})
        await store.append("c1", expected_version=1, outbox_done=["c1:1:0"])
        await store.append("c1", expected_version=2, outbox_failed=["c1:1:1"])
        states = {k: (await store.command(k)) for k in ("c1:1:0", "c1:1:1", "c1:1:2")}
        assert {k: e.state for k, e in states.items() if e} == {
            "c1:1:0": CommandState.DONE,
            "c1:1:1": CommandState.FAILED,
            "c1:1:2": CommandState.PENDING,
        }
        assert [c.key for c in await store.pending_commands("c1")] == ["c1:1:2"]

    async def test_a_command_made_and_settled_in_one_step(self, store: Store) -> None:
        await new_call(store)
        await store.append(
            "c1", expected_version=1, outbox_new={"c1:2:0": "{}"}, outbox_done=["c1:2:0"]
        )
        entry = await store.command("c1:2:0")
        assert entry is not None
        assert entry.state is CommandState.DONE

    async def test_journaling_a_known_key_again_never_resets_it(self, store: Store) -> None:
        await new_call(store, outbox_new={"c1:1:0": "first"})
        await store.append("c1", expected_version=1, outbox_done=["c1:1:0"])
        await store.append("c1", expected_version=2, outbox_new={"c1:1:0": "again"})
        entry = await store.command("c1:1:0")
        assert entry is not None
        assert (entry.state, entry.command) == (CommandState.DONE, "first")
        assert await store.pending_commands() == []

    @pytest.mark.parametrize(
        ("done", "failed", "message"),
        [
            (["c1:9:9"], [], "^call 'c1' has no command 'c1:9:9'$"),
            (["b:1:0"], [], "^call 'c1' has no command 'b:1:0'$"),
            (["c1:1:0"], ["c1:1:0"], "^call 'c1': a command is settled twice in one append$"),
            (["c1:1:1"], [], "^command 'c1:1:1' is already failed; it cannot become done$"),
        ],
    )
    async def test_a_bad_settlement_refuses_the_whole_append(
        self, store: Store, done: list[str], failed: list[str], message: str
    ) -> None:
        await new_call(store, "b", outbox_new={"b:1:0": "{}"})
        await new_call(store, outbox_new={"c1:1:0": "{}", "c1:1:1": "{}"}, timers_set={"x": EPOCH})
        await store.append("c1", expected_version=1, outbox_failed=["c1:1:1"])
        entry = await store.accept("c1", "{}")
        assert entry is not None
        before = await everything(store, "c1")
        with pytest.raises(StoreError, match=message):
            await store.append(
                "c1",
                expected_version=2,
                snapshot=snap(3),
                journal_entries=[("event", "e"), ("command", "c")],
                outbox_new={"c1:3:0": "{}"},
                outbox_done=done,
                outbox_failed=failed,
                timers_set={"y": EPOCH},
                timers_cleared=["x"],
                applied=[entry.seq],
                end=True,
            )
        assert await everything(store, "c1") == before
        assert await store.command("c1:3:0") is None

    async def test_begin_hands_a_pending_command_out_once(
        self, store: Store, clock: FakeClock
    ) -> None:
        await new_call(store, outbox_new={"c1:1:0": "{}"})
        clock.advance(2)
        first = await store.begin_command("c1:1:0")
        assert first is not None
        assert (first.state, first.attempts, first.updated_at) == (
            CommandState.UNKNOWN,
            1,
            EPOCH + 2,
        )
        assert await store.begin_command("c1:1:0") is None
        # Still open: a daemon restarting must settle it.
        assert [c.state for c in await store.pending_commands()] == [CommandState.UNKNOWN]
        await store.mark_command("c1:1:0", CommandState.PENDING)  # a safe error: send again
        second = await store.begin_command("c1:1:0")
        assert second is not None
        assert second.attempts == 2
        done = await store.mark_command("c1:1:0", CommandState.DONE)
        assert (done.state, done.attempts) == (CommandState.DONE, 2)
        assert await store.begin_command("c1:1:0") is None
        assert await store.pending_commands() == []

    async def test_final_states_are_final(self, store: Store) -> None:
        await new_call(store, outbox_new={"c1:1:0": "{}"})
        await store.mark_command("c1:1:0", CommandState.FAILED)
        again = await store.mark_command("c1:1:0", CommandState.FAILED)  # a no-op
        assert again.state is CommandState.FAILED
        for state in (CommandState.PENDING, CommandState.UNKNOWN, CommandState.DONE):
            with pytest.raises(StoreError, match="^command 'c1:1:0' is already failed"):
                await store.mark_command("c1:1:0", state)

    async def test_unknown_keys_are_reported(self, store: Store) -> None:
        with pytest.raises(StoreError, match="^no command 'x' in the outbox$"):
            await store.begin_command("x")
        with pytest.raises(StoreError, match="^no command 'x' in the outbox$"):
            await store.mark_command("x", CommandState.DONE)
        assert await store.command("x") is None


class TestWebhooks:
    async def test_an_id_is_claimed_once_within_its_ttl(
        self, store: Store, clock: FakeClock
    ) -> None:
        assert await store.claim_webhook("evt-1", 60) is True
        assert await store.claim_webhook("evt-1", 60) is False
        assert await store.claim_webhook("evt-2", 60) is True
        clock.advance(59.5)
        assert await store.claim_webhook("evt-1", 60) is False  # a refusal does not extend it
        clock.advance(0.5)
        assert await store.claim_webhook("evt-1", 60) is True
        assert await store.claim_webhook("evt-1", 60) is False

    async def test_expired_ids_are_claimed_again_among_many(
        self, store: Store, clock: FakeClock
    ) -> None:
        olds = await asyncio.gather(*(store.claim_webhook(f"old-{i}", 1) for i in range(1500)))
        clock.advance(2)
        news = await asyncio.gather(*(store.claim_webhook(f"new-{i}", 100) for i in range(1500)))
        assert all(olds)
        assert all(news)
        assert await store.claim_webhook("new-0", 100) is False
        assert await store.claim_webhook("old-1499", 100) is True

    async def test_a_ttl_must_be_positive(self, store: Store) -> None:
        with pytest.raises(StoreError, match="^a webhook TTL must be positive, not 0$"):
            await store.claim_webhook("x", 0)


class TestInbox:
    async def test_an_accepted_event_waits_in_the_inbox_until_applied(self, store: Store) -> None:
        await new_call(store)
        await new_call(store, "other")
        first = await store.accept("c1", '{"name":"dtmf"}', webhook_id="w1")
        assert first is not None
        assert (first.seq, first.kind, first.applied) == (1, EntryKind.EVENT, False)
        await store.accept("other", "{}")
        second = await store.accept("c1", '{"name":"timer"}')
        record = await store.load_call("c1")
        assert record is not None
        assert record.version == 1  # accepting never conflicts with the call's writer
        assert [(e.call_id, e.seq) for e in await store.inbox()] == [
            ("c1", 1),
            ("c1", 2),
            ("other", 1),
        ]
        assert second is not None
        await store.append("c1", expected_version=1, applied=[first.seq])
        assert [e.seq for e in await store.inbox("c1")] == [2]
        assert [e.applied for e in await store.journal("c1")] == [True, False]

    async def test_a_redelivered_webhook_is_not_journaled_twice(self, store: Store) -> None:
        await new_call(store)
        assert await store.accept("c1", "{}", webhook_id="w1") is not None
        assert await store.accept("c1", "{}", webhook_id="w1") is None
        assert len(await store.journal("c1")) == 1
        assert await store.claim_webhook("w1") is False

    async def test_a_webhook_for_an_unknown_call_is_not_claimed(self, store: Store) -> None:
        with pytest.raises(CallNotFoundError):
            await store.accept("late", "{}", webhook_id="w1")
        await new_call(store, "late")
        assert await store.accept("late", "{}", webhook_id="w1") is not None

    @pytest.mark.parametrize("seq", [1, 2, 3])
    async def test_only_waiting_events_can_be_applied(self, store: Store, seq: int) -> None:
        await new_call(store, journal_entries=[("event", "already applied")])
        entry = await store.accept("c1", "{}")
        assert entry is not None
        await store.append("c1", expected_version=1, applied=[2])
        # 1 was never in the inbox, 2 is applied already, 3 is no entry at all.
        with pytest.raises(StoreError, match=f"^call 'c1' has no accepted event {seq} to apply$"):
            await store.append("c1", expected_version=2, snapshot=snap(3), applied=[seq])
        record = await store.load_call("c1")
        assert record is not None
        assert record.version == 2


class TestTimers:
    async def test_due_timers_earliest_first(self, store: Store) -> None:
        await new_call(store, "b", timers_set={"menu": EPOCH + 5, "limit": EPOCH + 3600})
        await new_call(store, "a", timers_set={"ring": EPOCH + 5, "early": EPOCH + 1})
        assert await store.due_timers(EPOCH) == []
        assert await store.due_timers(EPOCH + 5) == [
            DueTimer(EPOCH + 1, "a", "early"),
            DueTimer(EPOCH + 5, "a", "ring"),
            DueTimer(EPOCH + 5, "b", "menu"),
        ]
        assert len(await store.due_timers(EPOCH + 5, limit=2)) == 2
        assert len(await store.due_timers(EPOCH + 3600)) == 4

    async def test_timers_are_replaced_and_cleared(self, store: Store) -> None:
        await new_call(store, timers_set={"menu": EPOCH + 5, "limit": EPOCH + 60})
        await store.append(
            "c1",
            expected_version=1,
            timers_set={"menu": EPOCH + 10},
            timers_cleared=["limit", "never-set"],
        )
        assert await store.due_timers(EPOCH + 100) == [DueTimer(EPOCH + 10, "c1", "menu")]


class TestReopen:
    async def test_a_reopened_store_has_everything(
        self, harness: Harness, store: Store, clock: FakeClock
    ) -> None:
        for i in range(5):
            await new_call(store, f"c{i}", outbox_new={f"c{i}:1:0": "{}"})
            await store.append(
                f"c{i}",
                expected_version=1,
                snapshot=snap(2),
                journal_entries=[("event", "e"), ("command", "c")],
                outbox_done=[f"c{i}:1:0"],
                outbox_new={f"c{i}:2:0": "{}"},
                timers_set={"menu": EPOCH + i},
            )
        await store.begin_command("c1:2:0")
        await store.accept("c2", "{}", webhook_id="w-c2")
        await store.end_call("c4")
        before = {f"c{i}": await everything(store, f"c{i}") for i in range(5)}
        live = await store.live_calls()
        pending = await store.pending_commands()

        reopened = await harness.reopen()
        assert reopened is not store
        assert {f"c{i}": await everything(reopened, f"c{i}") for i in range(5)} == before
        assert await reopened.live_calls() == live
        assert [r.call_id for r in live] == ["c0", "c1", "c2", "c3"]
        assert await reopened.pending_commands() == pending
        assert await reopened.claim_webhook("w-c2") is False
        assert await reopened.append("c0", expected_version=2) == 3

    async def test_a_closed_store_refuses_work(self, harness: Harness, store: Store) -> None:
        await new_call(store)
        await store.close()
        with pytest.raises(StoreUnavailableError, match="^the store is closed$"):
            await store.load_call("c1")
        with pytest.raises(StoreUnavailableError, match="^the store is closed$"):
            await store.append("c1", expected_version=1)
        await store.close()  # twice is fine


class TestFlowVersions:
    HASH = "a" * 64
    SOURCE = json.dumps({"files": {"desk.yaml": "name: desk\nstart: bye\n  é ✓"}})

    async def test_a_saved_version_comes_back_as_saved(
        self, store: Store, clock: FakeClock
    ) -> None:
        assert await store.save_flow_version(self.HASH, name="desk", source=self.SOURCE)
        assert await store.flow_version(self.HASH) == FlowVersion(
            self.HASH, "desk", self.SOURCE, EPOCH
        )

    async def test_saving_a_hash_again_is_a_no_op(self, store: Store, clock: FakeClock) -> None:
        assert await store.save_flow_version(self.HASH, name="desk", source=self.SOURCE) is True
        clock.advance(5)
        assert await store.save_flow_version(self.HASH, name="desk", source=self.SOURCE) is False
        assert await store.save_flow_version(self.HASH, name="other", source="{}") is False
        assert await store.flow_version(self.HASH) == FlowVersion(
            self.HASH, "desk", self.SOURCE, EPOCH
        )

    async def test_an_unknown_hash_is_none(self, store: Store) -> None:
        assert await store.flow_version("b" * 64) is None
        await store.save_flow_version(self.HASH, name="desk", source=self.SOURCE)
        assert await store.flow_version("b" * 64) is None
        assert await store.flow_version("") is None

    async def test_several_versions_of_one_flow_are_kept_apart(self, store: Store) -> None:
        hashes = [str(i) * 64 for i in range(3)]
        saved = await asyncio.gather(
            *(store.save_flow_version(h, name="desk", source=f"v{h[0]}") for h in hashes)
        )
        assert saved == [True, True, True]
        for h in hashes:
            version = await store.flow_version(h)
            assert version is not None
            assert (version.name, version.source) == ("desk", f"v{h[0]}")

    async def test_concurrent_saves_of_one_hash_make_one_new_version(self, store: Store) -> None:
        saved = await asyncio.gather(
            *(store.save_flow_version(self.HASH, name="desk", source="s") for _ in range(10))
        )
        assert sorted(saved) == [False] * 9 + [True]

    async def test_a_version_needs_a_hash_and_a_name(self, store: Store) -> None:
        with pytest.raises(StoreError, match="content hash"):
            await store.save_flow_version("", name="desk", source="s")
        with pytest.raises(StoreError, match="name"):
            await store.save_flow_version(self.HASH, name="", source="s")
        assert await store.flow_version(self.HASH) is None

    async def test_versions_outlive_a_purge_and_a_reopen(
        self, harness: Harness, store: Store, clock: FakeClock
    ) -> None:
        await store.save_flow_version(self.HASH, name="desk", source=self.SOURCE)
        await new_call(store)
        await store.end_call("c1")
        clock.advance(10)
        assert await store.purge_ended(clock.now) == 1
        reopened = await harness.reopen()
        assert await reopened.flow_version(self.HASH) == FlowVersion(
            self.HASH, "desk", self.SOURCE, EPOCH
        )

    async def test_a_closed_store_refuses_versions(self, store: Store) -> None:
        await store.close()
        with pytest.raises(StoreUnavailableError):
            await store.save_flow_version(self.HASH, name="desk", source="s")
        with pytest.raises(StoreUnavailableError):
            await store.flow_version(self.HASH)


async def test_the_inbox_of_all_calls_is_by_call_then_in_order(store: Store) -> None:
    for cid in ("b", "a"):
        await new_call(store, cid)
    for cid in ("b", "a", "b"):
        await store.accept(cid, "{}")
    assert [(e.call_id, e.seq) for e in await store.inbox()] == [("a", 1), ("b", 1), ("b", 2)]
