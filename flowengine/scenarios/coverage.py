"""Edge coverage: which ways out of each state some scenario took, per flow.

Where it sits: ``scenarios.suite`` feeds it the flows under test (with their sub-flows) and
every scenario's moves (``TraceEntry.moves``: flow, state, trigger, target). The edges are the
ones a designer draws and ``checks.graph.FlowGraph`` reasons about: each route of each state,
each menu option, each ``choose`` branch, and each flow-wide handler. A handler is one edge,
``* --hangup--> caller_hung_up``, taken when any state without a route of its own for that key
goes there; counting it once per state would ask for a hang-up in every state, which no one
writes and no one reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .. import model as m
from ..runtime.session import Move

ANY_STATE = "*"
"""The source of a flow-wide handler's edge."""


@dataclass(frozen=True, slots=True)
class Edge:
    """One way out of a state (or, from ``*``, a flow-wide handler)."""

    source: str
    trigger: str
    """The runtime's trigger: a route key, ``option 1``, ``when 0``, ``otherwise``."""
    target: str
    label: str
    """How a designer reads the key: ``when vars.tries < 3`` rather than ``when 0``."""

    def __str__(self) -> str:
        return f"{self.source} --{self.label}--> {self.target}"


def flow_edges(flow: m.Flow) -> list[Edge]:
    """The edges of a flow, in the order its file writes them."""
    edges: list[Edge] = []
    for state in flow.states.values():
        if state.final:
            continue
        action = state.action
        edges.extend(Edge(state.name, k, r.target, k) for k, r in state.routes.items())
        if isinstance(action, m.Menu):
            edges.extend(
                Edge(state.name, f"option {k}", r.target, f"option {k}")
                for k, r in action.options.items()
            )
        elif isinstance(action, m.Choose):
            edges.extend(
                Edge(state.name, f"when {i}", case.target, f"when {case.condition}")
                for i, case in enumerate(action.cases)
            )
            edges.append(Edge(state.name, "otherwise", action.otherwise.target, "otherwise"))
    edges.extend(Edge(ANY_STATE, k, r.target, k) for k, r in flow.handlers.items())
    return edges


@dataclass(frozen=True, slots=True)
class FlowCoverage:
    """One flow's edges and which of them were taken."""

    flow: str
    file: str
    edges: tuple[Edge, ...]
    """The edges counted: every edge but the excluded ones."""
    taken: frozenset[Edge]
    excluded: tuple[tuple[Edge, str], ...] = ()
    """Edges a scenario file marks unreachable, with the reason."""

    @property
    def covered(self) -> list[Edge]:
        """Counted edges some scenario took."""
        return [e for e in self.edges if e in self.taken]

    @property
    def uncovered(self) -> list[Edge]:
        """Edges no scenario took, in file order."""
        return [e for e in self.edges if e not in self.taken]

    @property
    def contradicted(self) -> list[Edge]:
        """Edges marked unreachable that a scenario took all the same."""
        return [e for e, _ in self.excluded if e in self.taken]

    @property
    def percent(self) -> float:
        """The share of counted edges taken (100 for a flow without edges)."""
        if not self.edges:
            return 100.0
        return 100.0 * len(self.covered) / len(self.edges)

    def as_dict(self) -> dict[str, object]:
        """The JSON form."""
        return {
            "flow": self.flow,
            "file": self.file,
            "edges": len(self.edges),
            "covered": len(self.covered),
            "percent": round(self.percent, 2),
            "uncovered": [
                {"from": e.source, "key": e.label, "to": e.target} for e in self.uncovered
            ],
            "excluded": [
                {"from": e.source, "key": e.label, "to": e.target, "reason": reason}
                for e, reason in self.excluded
            ],
            "taken_although_unreachable": [str(e) for e in self.contradicted],
        }


class Coverage:
    """Collects moves from scenario runs against the edges of the flows under test."""

    def __init__(self) -> None:
        self._flows: dict[str, m.Flow] = {}
        self._edges: dict[str, dict[tuple[str, str], Edge]] = {}
        self._taken: dict[str, set[Edge]] = {}
        self._excluded: dict[str, dict[Edge, str]] = {}

    def add_flows(self, flows: Iterable[m.Flow]) -> None:
        """Report these flows (a flow already added keeps its first version)."""
        for flow in flows:
            if flow.name in self._flows:
                continue
            self._flows[flow.name] = flow
            self._edges[flow.name] = {(e.source, e.trigger): e for e in flow_edges(flow)}
            self._taken[flow.name] = set()
            self._excluded[flow.name] = {}

    def exclude(self, flow: str, edge: str, reason: str) -> None:
        """Leave the edge written ``edge`` out of ``flow``'s count (it cannot be taken)."""
        for candidate in self._edges.get(flow, {}).values():
            if str(candidate) == edge:
                self._excluded[flow].setdefault(candidate, reason)

    def record(self, moves: Iterable[Move]) -> None:
        """Mark the edges these moves took (moves of flows not added are ignored)."""
        for flow_name, source, trigger, _target in moves:
            edges = self._edges.get(flow_name)
            if edges is None:
                continue
            edge = edges.get((source, trigger)) or edges.get((ANY_STATE, trigger))
            if edge is not None:
                self._taken[flow_name].add(edge)

    def report(self) -> list[FlowCoverage]:
        """Per flow, in the order added."""
        out = []
        for name, flow in self._flows.items():
            excluded = self._excluded[name]
            counted = tuple(e for e in self._edges[name].values() if e not in excluded)
            out.append(
                FlowCoverage(
                    name,
                    flow.file,
                    counted,
                    frozenset(self._taken[name]),
                    tuple(excluded.items()),
                )
            )
        return out
