"""SQLite files and connections: the store URL, the lock file, transactions and errors.

What ``sqlite.py`` needs around its connections: ``sqlite_path`` (the file a store URL
names), ``lock_file`` (one process per file), ``Transactions`` (the writer connection's
verbs for ``batching.GroupCommitter``) and ``guard``, which turns every error of ``sqlite3``
into a ``StoreError``.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import StoreConfigError, StoreError, StoreUnavailableError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no lock file, one daemon is on trust
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")

MEMORY = ":memory:"


def sqlite_path(url: str | os.PathLike[str]) -> str:
    """The file a store URL names: ``sqlite:///relative.db``, ``sqlite:////abs.db``, a path.

    The ``sqlite:`` form follows SQLAlchemy's: three slashes then a relative path, four for an
    absolute one. ``sqlite://``, ``sqlite:///:memory:`` and ``:memory:`` name a private
    in-memory database.

    Raises:
        StoreConfigError: the URL has a query, or another scheme.
    """
    text = os.fspath(url)
    if not text.startswith("sqlite:"):
        if "://" in text:
            raise StoreConfigError("store", f"{text!r} is not a SQLite URL or a path")
        return text
    if not text.startswith("sqlite://"):
        raise StoreConfigError("store", f"write {text!r} as sqlite:///relative or sqlite:////abs")
    rest = text[len("sqlite://") :]
    if "?" in rest or "#" in rest:
        raise StoreConfigError("store", f"{text!r}: SQLite URLs take no query or fragment")
    if rest in ("", "/", "/" + MEMORY):
        return MEMORY
    if not rest.startswith("/"):
        raise StoreConfigError("store", f"{text!r} names a host; write sqlite:///path")
    return rest[1:]


def lock_file(path: str) -> int | None:
    """Lock ``<path>.lock`` for this process; the descriptor (closing it releases the lock).

    Raises:
        StoreUnavailableError: the lock file cannot be made, or another process holds it.
    """
    if fcntl is None:  # pragma: no cover
        return None
    lock_path = f"{path}.lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreUnavailableError(f"cannot create {lock_path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StoreUnavailableError(
            f"{path} is in use by another flowengine process (lock {lock_path})"
        ) from None
    return fd


class Transactions:
    """The writer connection's transaction verbs for ``GroupCommitter``."""

    def __init__(self, connection: Callable[[], sqlite3.Connection | None]) -> None:
        self._connection = connection

    def _run(self, sql: str) -> None:
        conn = self._connection()
        if conn is None:
            raise StoreUnavailableError("the store is closed")
        guard(lambda c: c.execute(sql), conn)

    def begin(self) -> None:
        # IMMEDIATE takes the write lock now: a batch never fails half-way on a lock upgrade.
        self._run("BEGIN IMMEDIATE")

    def savepoint(self) -> None:
        self._run("SAVEPOINT job")

    def release(self) -> None:
        self._run("RELEASE job")

    def rollback_to(self) -> None:
        self._run("ROLLBACK TO job")
        self._run("RELEASE job")

    def commit(self) -> None:
        self._run("COMMIT")

    def rollback(self) -> None:
        self._run("ROLLBACK")


def guard(fn: Callable[..., T], conn: sqlite3.Connection, *args: Any) -> T:
    """Run ``fn(conn, *args)``, turning the database's errors into the store's."""
    try:
        return fn(conn, *args)
    except sqlite3.IntegrityError as exc:
        raise StoreError(f"the store refused a write: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreUnavailableError(f"the database failed: {exc}") from exc
