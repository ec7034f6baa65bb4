"""Prometheus metrics of one daemon, on a registry of its own (no process-wide globals).

Where it sits: built by ``app.create_app`` and handed to the ingress, the persistence layer
and the REST adapter; ``GET /metrics`` renders it in Prometheus' text format. Label values are
bounded: flow names, outcomes, event names the runtime knows (others count as ``other``),
command kinds, Daily endpoints and rejection reasons.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..runtime.events import EVENT_NAMES

CONTENT_TYPE = CONTENT_TYPE_LATEST
_KNOWN_EVENTS = frozenset(EVENT_NAMES)


class Metrics:
    """Every metric the daemon exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.calls_active = Gauge(
            "flowengine_calls_active", "Calls running now.", ["flow"], registry=r
        )
        self.calls_started = Counter(
            "flowengine_calls_started", "Calls started.", ["flow", "direction"], registry=r
        )
        self.calls_ended = Counter(
            "flowengine_calls_ended", "Calls ended.", ["flow", "outcome"], registry=r
        )
        self.events = Counter("flowengine_events", "Events handled, by type.", ["type"], registry=r)
        self.command_seconds = Histogram(
            "flowengine_command_seconds",
            "Time to carry out a command (request to answer).",
            ["command"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.daily_errors = Counter(
            "flowengine_daily_api_errors", "Failed Daily API requests.", ["endpoint"], registry=r
        )
        self.webhook_rejects = Counter(
            "flowengine_webhook_rejects",
            "Requests to the ingress refused or ignored.",
            ["reason"],
            registry=r,
        )
        self.webhooks_accepted = Counter(
            "flowengine_webhooks_accepted", "Webhooks journaled and answered 200.", registry=r
        )
        self.calls_handed = Counter(
            "flowengine_calls_handed_over",
            "Several daemons: calls taken over from another daemon, or lost to one.",
            ["direction"],
            registry=r,
        )
        self.leases_held = Gauge(
            "flowengine_leases_held", "Several daemons: call leases this daemon holds.", registry=r
        )
        self.flow_reloads = Counter(
            "flowengine_flow_reloads", "Flow reloads, by result.", ["result"], registry=r
        )

    def event(self, name: str) -> None:
        """Count an event; names the runtime does not know are counted as ``other``."""
        self.events.labels(name if name in _KNOWN_EVENTS else "other").inc()

    def render(self) -> bytes:
        """The text exposition."""
        return generate_latest(self.registry)
