"""The request log: every REST request the emulator received, and whether it acted on it.

Tests assert side effects from it: ``log.count("dialOut/start")`` (requests), ``log.count(
"dialOut/start", acted=True)`` (dial-outs that really started), ``log.side_effects()`` (each
effect that happened, in order). ``acted`` is true for a request that changed Daily's state,
including one answered 500 by the ``rest_5xx_after`` fault: that is the case a client must
never repeat blindly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

EFFECTFUL = frozenset(
    {
        "rooms/create",
        "rooms/delete",
        "meeting-tokens/create",
        "dialOut/start",
        "dialOut/stop",
        "dialOut/sendDTMF",
        "sipCallTransfer",
        "sipRefer",
        "dialin/pinlessCallUpdate",
    }
)
"""Endpoints whose success changes Daily's state."""

DEFAULT_MAX_ENTRIES = 100_000


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One request: what was asked, what was answered, what was done."""

    seq: int
    time: float
    method: str
    path: str
    endpoint: str
    """Daily's operation, named as ``flowengine.daily.retry`` names it (``dialOut/start``)."""
    body: Any
    status: int
    answer: Any
    acted: bool
    fault: str | None = None
    """The injected fault, if any: ``429``, ``5xx``, ``5xx-after``, ``slow``."""

    def to_json(self) -> dict[str, Any]:
        """The entry as JSON (for the control API)."""
        return {
            "seq": self.seq,
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "endpoint": self.endpoint,
            "body": self.body,
            "status": self.status,
            "answer": self.answer,
            "acted": self.acted,
            "fault": self.fault,
        }


class RequestLog:
    """Entries in arrival order; the oldest are forgotten past ``max_entries``."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=max_entries)
        self._seq = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(list(self._entries))

    def add(self, **fields: Any) -> LogEntry:
        """Record a request (the emulator's REST layer calls this)."""
        self._seq += 1
        entry = LogEntry(seq=self._seq, **fields)
        self._entries.append(entry)
        return entry

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    def entries(
        self,
        endpoint: str | None = None,
        *,
        status: int | None = None,
        acted: bool | None = None,
    ) -> list[LogEntry]:
        """Entries for ``endpoint`` (a name like ``dialOut/start``, or the end of a path),
        optionally only those answered ``status`` or that did (not) act."""
        return [
            e
            for e in self._entries
            if (endpoint is None or e.endpoint == endpoint or e.path.endswith(endpoint))
            and (status is None or e.status == status)
            and (acted is None or e.acted == acted)
        ]

    def count(
        self, endpoint: str | None = None, *, status: int | None = None, acted: bool | None = None
    ) -> int:
        """How many entries ``entries(...)`` would return."""
        return len(self.entries(endpoint, status=status, acted=acted))

    def side_effects(self, endpoint: str | None = None) -> list[LogEntry]:
        """Requests that changed Daily's state, in order (optionally of one endpoint)."""
        return [e for e in self.entries(endpoint, acted=True) if e.endpoint in EFFECTFUL]

    def statuses(self, endpoint: str | None = None) -> list[int]:
        """The answer statuses, in order."""
        return [e.status for e in self.entries(endpoint)]
