"""What only the SQLite store does: group commit, durability settings, schema, lock, URLs."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from flowengine.store import (
    MemoryStore,
    SQLiteStore,
    StoreConfigError,
    StoreConflictError,
    StoreUnavailableError,
    open_store,
    sqlite_path,
)
from flowengine.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION

from .conftest import FakeClock


async def create(store: SQLiteStore, calls: int) -> None:
    await asyncio.gather(
        *(store.create_call(f"c{i}", flow="f", flow_hash="h", snapshot="{}") for i in range(calls))
    )


class TestGroupCommit:
    async def test_concurrent_appends_of_many_calls_share_a_commit(self, tmp_path: Path) -> None:
        inside, gate = threading.Event(), threading.Event()
        sizes: list[int] = []
        hold = False

        def on_commit(size: int) -> None:
            sizes.append(size)
            if hold:  # keep the writer busy until every append below is queued
                inside.set()
                gate.wait(10)

        async with await SQLiteStore.open(tmp_path / "g.db", on_commit=on_commit) as store:
            await create(store, 100)
            hold = True
            busy = asyncio.ensure_future(store.claim_webhook("w"))
            assert await asyncio.to_thread(inside.wait, 10)
            hold = False
            start = store.stats.commits
            appends = [
                store.append(
                    f"c{i}",
                    expected_version=1,
                    snapshot='{"n":2}',
                    journal_entries=[("event", "{}")],
                    outbox_new={f"c{i}:1:0": "{}"},
                )
                for i in range(100)
            ]
            # One more loses its compare-and-set: it fails alone, the rest commit.
            stale = store.append("c0", expected_version=1, snapshot="{}")
            tasks = [asyncio.ensure_future(a) for a in [*appends, stale]]
            await asyncio.sleep(0.05)
            gate.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert await busy is True
            assert results[:100] == [2] * 100
            assert isinstance(results[100], StoreConflictError)
            assert store.stats.commits - start == 1  # 101 writes, one transaction, one fsync
            assert sizes[-1] == 101
            assert len(await store.pending_commands()) == 100

    async def test_without_group_commit_each_append_is_a_transaction(self, tmp_path: Path) -> None:
        async with await SQLiteStore.open(tmp_path / "s.db", group_commit=False) as store:
            await create(store, 20)
            assert store.stats.commits == 20
            versions = await asyncio.gather(
                *(store.append(f"c{i}", expected_version=1) for i in range(20))
            )
            assert versions == [2] * 20
            assert (store.stats.commits, store.stats.largest_batch) == (40, 1)

    async def test_under_load_batches_form_by_themselves(self, tmp_path: Path) -> None:
        async with await SQLiteStore.open(tmp_path / "l.db") as store:
            await create(store, 200)
            before = store.stats.commits
            await asyncio.gather(*(store.append(f"c{i}", expected_version=1) for i in range(200)))
            assert store.stats.commits - before < 50


class TestFile:
    async def test_wal_and_full_synchronous(self, tmp_path: Path) -> None:
        path = tmp_path / "d.db"
        async with await SQLiteStore.open(path) as store:
            assert store._write is not None
            assert store._write.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
            probe = sqlite3.connect(path)
            assert probe.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert probe.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
            tables = {r[0] for r in probe.execute("SELECT name FROM sqlite_master")}
            assert {"calls", "journal", "outbox", "timers", "webhooks", "flow_versions"} <= tables
            probe.close()

    async def test_reads_do_not_wait_for_a_batch_in_progress(self, tmp_path: Path) -> None:
        inside, gate = threading.Event(), threading.Event()

        def on_commit(size: int) -> None:
            inside.set()
            gate.wait(10)

        async with await SQLiteStore.open(tmp_path / "r.db", on_commit=on_commit) as store:
            created = asyncio.ensure_future(
                store.create_call("c1", flow="f", flow_hash="h", snapshot="{}")
            )
            assert await asyncio.to_thread(inside.wait, 10)
            # Committed but not yet acknowledged: the reader connection already sees it.
            record = await asyncio.wait_for(store.load_call("c1"), 5)
            assert record is not None
            gate.set()
            assert await created == record

    async def test_a_second_process_cannot_open_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "x.db"
        async with await SQLiteStore.open(path):
            with pytest.raises(StoreUnavailableError, match="is in use by another flowengine"):
                await SQLiteStore.open(path)
        async with await SQLiteStore.open(path):  # closing released it
            pass

    async def test_a_file_of_schema_1_is_migrated_and_keeps_its_calls(self, tmp_path: Path) -> None:
        path = tmp_path / "old.db"
        conn = sqlite3.connect(path, isolation_level=None)
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO calls (call_id, flow, flow_hash, snapshot, version, status,"
            " created_at, updated_at) VALUES ('c1', 'desk', 'h1', '{}', 3, 'live', 1.0, 2.0)"
        )
        conn.close()
        async with await SQLiteStore.open(path) as store:
            record = await store.load_call("c1")
            assert record is not None
            assert (record.flow_hash, record.version) == ("h1", 3)
            assert await store.save_flow_version("h1", name="desk", source="{}") is True
            version = await store.flow_version("h1")
            assert version is not None
            assert version.source == "{}"
        probe = sqlite3.connect(path)
        assert probe.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        probe.close()

    async def test_a_file_from_a_newer_flowengine_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "new.db"
        conn = sqlite3.connect(path)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.close()
        with pytest.raises(StoreUnavailableError, match="upgrade flowengine$"):
            await SQLiteStore.open(path)
        async with await SQLiteStore.open(tmp_path / "other.db"):  # nothing leaked
            pass
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)
        conn.close()

    async def test_a_file_that_is_not_a_database_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "junk.db"
        path.write_bytes(b"not a database at all" * 100)
        with pytest.raises(StoreUnavailableError, match=r"^cannot open .*junk\.db: "):
            await SQLiteStore.open(path)

    async def test_a_missing_folder_is_reported(self, tmp_path: Path) -> None:
        with pytest.raises(StoreUnavailableError, match="^cannot "):
            await SQLiteStore.open(tmp_path / "no" / "such" / "calls.db")

    async def test_private_memory_database_for_tests(self) -> None:
        async with await SQLiteStore.open(":memory:", clock=FakeClock()) as store:
            await create(store, 30)
            await asyncio.gather(*(store.append(f"c{i}", expected_version=1) for i in range(30)))
            assert len(await store.live_calls()) == 30
            assert store.memory


class TestUrls:
    @pytest.mark.parametrize(
        ("url", "path"),
        [
            ("calls.db", "calls.db"),
            ("/var/lib/flowengine/calls.db", "/var/lib/flowengine/calls.db"),
            ("sqlite:///calls.db", "calls.db"),
            ("sqlite:///data/calls.db", "data/calls.db"),
            ("sqlite:////var/lib/calls.db", "/var/lib/calls.db"),
            ("sqlite://", ":memory:"),
            ("sqlite:///:memory:", ":memory:"),
            (":memory:", ":memory:"),
        ],
    )
    def test_sqlite_urls_and_paths(self, url: str, path: str) -> None:
        assert sqlite_path(url) == path

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("postgres://db/calls", "is not a SQLite URL or a path"),
            ("sqlite:calls.db", "as sqlite:///relative or sqlite:////abs"),
            ("sqlite://host/calls.db", "names a host; write sqlite:///path"),
            ("sqlite:///calls.db?mode=ro", "take no query or fragment"),
        ],
    )
    def test_bad_urls(self, url: str, message: str) -> None:
        with pytest.raises(StoreConfigError, match=message):
            sqlite_path(url)

    async def test_open_store_picks_the_implementation(self, tmp_path: Path) -> None:
        store = await open_store(f"sqlite:///{tmp_path}/a.db")  # tmp_path is absolute: 4 slashes
        assert isinstance(store, SQLiteStore)
        assert store.path == f"{tmp_path}/a.db"
        await store.close()
        volatile = await open_store("memory://", durable=False)
        assert isinstance(volatile, MemoryStore)
        tests_only = await open_store(":memory:", durable=False)
        assert isinstance(tests_only, SQLiteStore)
        await tests_only.close()

    @pytest.mark.parametrize("url", [":memory:", "sqlite://", "memory://"])
    async def test_the_daemon_refuses_a_store_that_forgets(self, url: str) -> None:
        with pytest.raises(StoreConfigError, match="a restart would lose every live call"):
            await open_store(url)


class TestWebhookTable:
    async def test_expired_ids_are_deleted_as_new_ones_come(self, tmp_path: Path) -> None:
        clock = FakeClock()
        async with await SQLiteStore.open(tmp_path / "w.db", clock=clock) as store:
            await asyncio.gather(*(store.claim_webhook(f"old-{i}", 1) for i in range(400)))
            clock.advance(2)
            await asyncio.gather(*(store.claim_webhook(f"new-{i}", 100) for i in range(200)))
            assert store._read is not None
            (rows,) = store._read.execute("SELECT count(*) FROM webhooks").fetchone()
            assert rows == 200  # each claim deleted up to 4 expired ids: all 400 are gone
