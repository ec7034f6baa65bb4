"""Group commit on its own, over a fake transaction log: batching, isolation, failures."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from flowengine.store import StoreError, StoreUnavailableError
from flowengine.store.batching import GroupCommitter


class FakeTransactions:
    """Records the verbs; ``fail`` names verbs that raise, by their 1-based count."""

    def __init__(self, **fail: int) -> None:
        self.log: list[str] = []
        self.fail = fail

    def _do(self, verb: str) -> None:
        self.log.append(verb)
        if self.fail.get(verb) == self.log.count(verb):
            raise StoreUnavailableError(f"{verb} failed")

    def begin(self) -> None:
        self._do("begin")

    def savepoint(self) -> None:
        self._do("savepoint")

    def release(self) -> None:
        self._do("release")

    def rollback_to(self) -> None:
        self._do("rollback_to")

    def commit(self) -> None:
        self._do("commit")

    def rollback(self) -> None:
        self._do("rollback")


async def held(writer: GroupCommitter) -> threading.Event:
    """Block the writer inside a job of its own until the returned event is set."""
    inside, gate = threading.Event(), threading.Event()

    def hold() -> None:
        inside.set()
        gate.wait(10)

    writer.submit(hold)
    assert await asyncio.to_thread(inside.wait, 10)
    return gate


async def settle(*futures: asyncio.Future[Any]) -> list[Any]:
    return await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 10)


def refuse() -> object:
    raise StoreError("refused")


async def test_jobs_waiting_together_share_one_commit() -> None:
    tx = FakeTransactions()
    sizes: list[int] = []
    writer = GroupCommitter(tx, on_commit=sizes.append)
    writer.start()
    gate = await held(writer)
    futures = [writer.submit(lambda i=i: i * 10) for i in range(50)]  # type: ignore[misc]
    gate.set()
    assert await settle(*futures) == [i * 10 for i in range(50)]
    assert sizes == [1, 50]
    assert (writer.stats.commits, writer.stats.jobs, writer.stats.largest_batch) == (2, 51, 50)
    assert tx.log.count("begin") == tx.log.count("commit") == 2
    await writer.stop()


async def test_a_batch_has_a_ceiling() -> None:
    tx = FakeTransactions()
    sizes: list[int] = []
    writer = GroupCommitter(tx, max_batch=8, on_commit=sizes.append)
    writer.start()
    gate = await held(writer)
    futures = [writer.submit(lambda: None) for _ in range(20)]
    gate.set()
    await settle(*futures)
    assert sizes == [1, 8, 8, 4]
    await writer.stop()


async def test_a_failing_job_is_rolled_back_alone() -> None:
    tx = FakeTransactions()
    writer = GroupCommitter(tx)
    writer.start()
    gate = await held(writer)
    futures: list[asyncio.Future[Any]] = [
        writer.submit(lambda: "a"),
        writer.submit(refuse),
        writer.submit(lambda: "c"),
    ]
    gate.set()
    a, b, c = await settle(*futures)
    assert (a, c) == ("a", "c")
    assert isinstance(b, StoreError)
    assert str(b) == "refused"
    assert tx.log[-8:] == [
        "begin",
        "savepoint",
        "release",
        "savepoint",
        "rollback_to",
        "savepoint",
        "release",
        "commit",
    ]
    await writer.stop()


async def test_a_failed_commit_fails_every_job_of_its_batch() -> None:
    tx = FakeTransactions(commit=2)
    committed: list[int] = []
    writer = GroupCommitter(tx, on_commit=committed.append)
    writer.start()
    gate = await held(writer)
    lost, refused = writer.submit(lambda: "ok"), writer.submit(refuse)
    gate.set()
    lost_error, refused_error = await settle(lost, refused)
    assert isinstance(lost_error, StoreUnavailableError)
    assert str(lost_error) == "the batch was not committed: commit failed"
    assert str(refused_error) == "refused"  # its own error, not the commit's
    assert tx.log[-2:] == ["commit", "rollback"]
    assert committed == [1]  # the hook sees only commits that happened
    assert (writer.stats.commits, writer.stats.failed_commits) == (1, 1)
    assert await writer.submit(lambda: "next") == "next"  # the writer carries on
    await writer.stop()


async def test_a_transaction_that_cannot_roll_back_a_job_fails_the_batch() -> None:
    tx = FakeTransactions(rollback_to=1)
    writer = GroupCommitter(tx)
    writer.start()
    gate = await held(writer)
    futures: list[asyncio.Future[Any]] = [
        writer.submit(lambda: "a"),
        writer.submit(refuse),
        writer.submit(lambda: "c"),
    ]
    gate.set()
    a, b, c = await settle(*futures)
    assert isinstance(a, StoreUnavailableError)
    assert str(b) == "refused"
    assert isinstance(c, StoreUnavailableError)
    assert tx.log.count("commit") == 1  # the gate's batch only
    assert tx.log[-1] == "rollback"
    await writer.stop()


async def test_a_batch_that_cannot_begin_fails_its_jobs() -> None:
    tx = FakeTransactions(begin=1)
    writer = GroupCommitter(tx)
    writer.start()
    (result,) = await settle(writer.submit(lambda: 1))
    assert str(result) == "begin failed"
    assert await writer.submit(lambda: 2) == 2
    await writer.stop()


async def test_stop_commits_what_is_queued_then_refuses() -> None:
    tx = FakeTransactions()
    writer = GroupCommitter(tx)
    writer.start()
    gate = await held(writer)
    futures = [writer.submit(lambda i=i: i) for i in range(5)]  # type: ignore[misc]
    stopping = asyncio.ensure_future(writer.stop())
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.wait_for(stopping, 10)
    assert await settle(*futures) == [0, 1, 2, 3, 4]
    with pytest.raises(StoreUnavailableError, match="^the store is closed$"):
        writer.submit(lambda: None)
    await writer.stop()


async def test_a_cancelled_caller_does_not_stop_the_batch() -> None:
    tx = FakeTransactions()
    writer = GroupCommitter(tx)
    writer.start()
    gate = await held(writer)
    first = writer.submit(lambda: 1)
    second = writer.submit(lambda: 2)
    first.cancel()
    gate.set()
    assert await asyncio.wait_for(second, 10) == 2
    assert writer.stats.jobs == 3
    await writer.stop()


def test_a_batch_needs_room_for_one_job() -> None:
    with pytest.raises(StoreError, match="^max_batch must be at least 1, not 0$"):
        GroupCommitter(FakeTransactions(), max_batch=0)
