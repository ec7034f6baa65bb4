"""The SQLite store's tables, and the migrations that build them, by ``user_version``.

``MIGRATIONS[i]`` takes a database from ``user_version`` i to i + 1; a new file gets all of
them, an older one the ones it lacks, each in one transaction with the version bump. A file
with a ``user_version`` above ``SCHEMA_VERSION`` was written by a newer flowengine and is
refused rather than guessed at. Never edit a migration that has shipped: add one.
"""

from __future__ import annotations

import sqlite3

from .errors import StoreUnavailableError

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: calls, journal, outbox, timers, webhook ids.
    (
        # One row per call: the snapshot (the Session's JSON) and its compare-and-set version.
        # journal_len numbers the next journal entry without a max() over the journal.
        """
        CREATE TABLE calls (
            call_id     TEXT PRIMARY KEY,
            flow        TEXT NOT NULL,
            flow_hash   TEXT NOT NULL,
            snapshot    TEXT NOT NULL,
            version     INTEGER NOT NULL,
            status      TEXT NOT NULL CHECK (status IN ('live', 'ended')),
            journal_len INTEGER NOT NULL DEFAULT 0,
            created_at  REAL NOT NULL,
            updated_at  REAL NOT NULL
        )
        """,
        # Restoring on start reads live calls only; purging reads old ended ones only.
        "CREATE INDEX calls_live ON calls (created_at, call_id) WHERE status = 'live'",
        "CREATE INDEX calls_ended ON calls (updated_at) WHERE status = 'ended'",
        """
        CREATE TABLE journal (
            call_id TEXT NOT NULL,
            seq     INTEGER NOT NULL,
            kind    TEXT NOT NULL CHECK (kind IN ('event', 'command', 'result')),
            payload TEXT NOT NULL,
            at      REAL NOT NULL,
            applied INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (call_id, seq)
        )
        """,
        # The inbox: accepted events no snapshot includes yet; tiny, so a partial index.
        "CREATE INDEX journal_inbox ON journal (call_id, seq) WHERE applied = 0",
        # id keeps the order commands were produced in; key is the idempotency key.
        """
        CREATE TABLE outbox (
            id         INTEGER PRIMARY KEY,
            key        TEXT NOT NULL UNIQUE,
            call_id    TEXT NOT NULL,
            command    TEXT NOT NULL,
            state      TEXT NOT NULL
                       CHECK (state IN ('pending', 'unknown', 'done', 'failed')),
            attempts   INTEGER NOT NULL DEFAULT 0,
            updated_at REAL NOT NULL
        )
        """,
        "CREATE INDEX outbox_call ON outbox (call_id)",
        "CREATE INDEX outbox_open ON outbox (id) WHERE state IN ('pending', 'unknown')",
        """
        CREATE TABLE timers (
            call_id  TEXT NOT NULL,
            timer_id TEXT NOT NULL,
            deadline REAL NOT NULL,
            PRIMARY KEY (call_id, timer_id)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX timers_due ON timers (deadline, call_id, timer_id)",
        """
        CREATE TABLE webhooks (
            id         TEXT PRIMARY KEY,
            expires_at REAL NOT NULL
        ) WITHOUT ROWID
        """,
        "CREATE INDEX webhooks_expiry ON webhooks (expires_at)",
    ),
    # 2: the flow versions calls are pinned to, by content hash (kept: see flow_versions.py).
    (
        """
        CREATE TABLE flow_versions (
            flow_hash TEXT PRIMARY KEY,
            name      TEXT NOT NULL,
            source    TEXT NOT NULL,
            saved_at  REAL NOT NULL
        )
        """,
    ),
)
"""The schema, as the steps from each version to the next."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The ``user_version`` this flowengine writes."""


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the schema to ``SCHEMA_VERSION``, one transaction per step.

    Raises:
        StoreUnavailableError: the file is from a newer flowengine.
        sqlite3.Error: the database failed (the caller turns it into a ``StoreError``).
    """
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read inside the write lock: two processes opening a new file migrate it once.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreUnavailableError(
                    f"{path} has schema version {version}; this flowengine knows up to "
                    f"{SCHEMA_VERSION}: upgrade flowengine"
                )
            if version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
