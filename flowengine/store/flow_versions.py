"""Flow versions in the store: the part of the contract that keeps the flows live calls run on.

A live call is pinned to the version of its flow it started on (``CallRecord.flow_hash``, the
flow's content hash). The daemon keeps the versions it loaded in memory, but a daemon that
starts after the flow file was edited, or that takes over a call another daemon started, may
never have loaded that version. So the daemon saves every version it loads
(``save_flow_version``) before a call can start on it, and fetches one it lacks
(``flow_version``) to rebuild it. The store keeps the version's ``source`` as opaque text (the
daemon's bundle of the files that make it, see ``flowengine.daemon.versions``).

A hash names one version for good: the first ``source`` saved for it is kept, and saving it
again is a no-op. Versions are kept for as long as the store lives (``purge_ended`` leaves them):
a version is a few kilobytes and there is one per edit of a flow, and deleting the versions no
call uses would race with a daemon that has just saved one and is about to start its first call
on it.

``FlowVersions`` is a Protocol that ``base.Store`` extends; it lives here so that ``base.py``
keeps to the calls' own records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from .errors import StoreError


@dataclass(frozen=True, slots=True)
class FlowVersion:
    """One version of a flow, as saved: enough to rebuild it exactly."""

    flow_hash: str
    """The flow's content hash (``Flow.content_hash``): the version's name."""
    name: str
    """The flow's name."""
    source: str
    """What rebuilds the version (the daemon's JSON bundle of its files), stored as given."""
    saved_at: float
    """When it was first saved (the store's clock)."""


@runtime_checkable
class FlowVersions(Protocol):
    """Saving and fetching flow versions, by content hash."""

    async def save_flow_version(self, flow_hash: str, *, name: str, source: str) -> bool:
        """Keep a flow version; ``True`` if it is new, ``False`` if the hash was saved before.

        Idempotent: a hash already saved keeps its first ``name`` and ``source`` (a hash
        names one text, so saving it again changes nothing). Durable when it returns.

        Raises:
            StoreError: ``flow_hash`` or ``name`` is empty.
        """
        ...

    async def flow_version(self, flow_hash: str) -> FlowVersion | None:
        """The version saved under ``flow_hash``, or ``None``."""
        ...


def check_flow_version(flow_hash: str, name: str) -> None:
    """Refuse a version without a hash or a name.

    Raises:
        StoreError: ``flow_hash`` or ``name`` is empty.
    """
    if not flow_hash:
        raise StoreError("a flow version needs its content hash")
    if not name:
        raise StoreError(f"flow version {flow_hash[:12]} needs the flow's name")
