"""What a scenario file says, as plain immutable data with a location on every part.

Where it sits: ``scenarios.loader`` builds these from a ``*.test.yaml`` file (loader -> schema
-> these); ``scenarios.runner`` plays them on the runtime's ``Simulator``; the reports quote
their locations, so every failure points at ``file:line:col``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..durations import format_duration
from ..errors import FlowEngineError, Location
from ..loader import Document

STEP_KINDS = ("dtmf", "wait", "event", "hangup", "fault", "expect")
"""The things a step can do; a step does exactly one."""

EXPECT_KEYS = (
    "state",
    "flow",
    "path",
    "visited",
    "vars",
    "commands",
    "no_commands",
    "ended",
    "outcome",
)
"""What an expectation may check, in the order it checks them."""


class ScenarioError(FlowEngineError):
    """Raised when scenarios cannot be run as asked (no such scenario, nothing to run)."""

    exit_code: ClassVar[int] = 2


@dataclass(frozen=True, slots=True)
class Check:
    """One key of an expectation: what it wants, and where it is written."""

    key: str
    value: Any
    location: Location


@dataclass(frozen=True, slots=True)
class Expectation:
    """An ``expect`` step or a scenario's ``end``."""

    location: Location
    checks: tuple[Check, ...]

    def get(self, key: str) -> Check | None:
        """The check of ``key``, if the expectation has one."""
        return next((c for c in self.checks if c.key == key), None)


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a scenario."""

    kind: str
    location: Location
    keys: str = ""
    """``dtmf``: the keys pressed."""
    seconds: float = 0.0
    """``wait``: how long."""
    event: str = ""
    """``event``: its name; ``fault``: the reason."""
    leg: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    expect: Expectation | None = None

    def describe(self) -> str:
        """The step as a designer wrote it, for reports."""
        if self.kind == "dtmf":
            return f"dtmf {self.keys}"
        if self.kind == "wait":
            return f"wait {format_duration(self.seconds)}"
        if self.kind == "event":
            return f"event {self.event}" + (f" ({self.leg})" if self.leg else "")
        if self.kind == "fault":
            return f"fault: {self.event}"
        return self.kind


@dataclass(frozen=True, slots=True)
class Stub:
    """A stubbed HTTP reply, with where it is written (to report one that never answered)."""

    match: str
    answer: Mapping[str, Any]
    """The ``HttpStub`` fields: status, json, text, headers, timeout, error, hang, repeat."""
    location: Location


@dataclass(frozen=True, slots=True)
class Scenario:
    """One scripted call."""

    name: str
    location: Location
    at: float | None
    """The call's start, seconds since the epoch (None: the simulator's default)."""
    call: Mapping[str, Any]
    vars: Mapping[str, Any]
    inputs: Mapping[str, Any]
    limits: Mapping[str, float]
    """``max_steps`` and ``max_duration`` (seconds) overriding the flow's."""
    stubs: tuple[Stub, ...]
    daily: Mapping[str, Any]
    steps: tuple[Step, ...]
    end: Expectation | None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Exclusion:
    """An edge the file says no call can take (``unreachable:``), and why."""

    flow: str | None
    """The sub-flow the edge is in; None for the flow under test."""
    edge: str
    """As the coverage report writes it: ``state --key--> target``."""
    reason: str
    location: Location


@dataclass(frozen=True, slots=True)
class ScenarioFile:
    """A parsed scenario file, before its flow is loaded."""

    path: Path
    file: str
    """The file as reports name it."""
    flow: str
    """The flow under test: a name, or a path relative to the file."""
    flow_location: Location
    flows: Path
    """The folder of flows and sub-flows."""
    flows_location: Location
    scenarios: tuple[Scenario, ...]
    unreachable: tuple[Exclusion, ...]
    doc: Document = field(repr=False, compare=False)
    """The parsed file, to place what later checks find."""
