"""Exceptions of the durable store, all under ``FlowEngineError``.

The bottom of ``flowengine.store``: every store raises only these, so the daemon handles a
lost compare-and-set or an unusable database without knowing which database it is. Errors of
the database library are caught in the one module that imports it and re-raised as one of
these (``raise ... from exc``). The tree::

    * FlowEngineError
      x StoreError                - a request the store refuses (a bug of its caller)
        + StoreConfigError        - an unusable store URL or setting
        + CallNotFoundError       - no call with that id
        + StoreConflictError      - compare-and-set lost: another writer moved the call
        + StoreUnavailableError   - the database cannot be used (closed, locked, disk, corrupt)
"""

from __future__ import annotations

from flowengine.errors import FlowEngineError


class StoreError(FlowEngineError):
    """Raised when a store refuses a request: unknown command key, inconsistent arguments."""


class StoreConfigError(StoreError):
    """Raised when a store is opened with an unusable URL or setting."""

    def __init__(self, setting: str, reason: str) -> None:
        self.setting = setting
        self.reason = reason
        super().__init__(f"{setting}: {reason}")


class CallNotFoundError(StoreError):
    """Raised when an operation names a call the store does not hold."""

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        super().__init__(f"no call {call_id!r} in the store")


class StoreConflictError(StoreError):
    """Raised when a write expected a version of the call that is no longer current.

    Another writer (another task, or another daemon) moved the call first, or the call was
    already created. Nothing of the refused write was stored; reload the call and decide.
    """

    def __init__(self, call_id: str, expected: int, actual: int) -> None:
        self.call_id = call_id
        self.expected = expected
        self.actual = actual
        super().__init__(f"call {call_id!r} is at version {actual}, not {expected}")


class StoreUnavailableError(StoreError):
    """Raised when the database cannot be used: closed, locked, full, unreadable or corrupt.

    A write that raised this was not acknowledged; it may only be retried as a whole.
    """
