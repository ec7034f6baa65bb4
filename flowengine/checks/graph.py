"""The flow as a graph, and the checks that reason about paths through it.

Edges are every way out of a state: its routes, menu options and ``choose`` branches, plus the
implicit ones the runtime takes: an unrouted failure goes to the flow's ``error`` handler, a
hang-up to the state's or the flow's ``hangup`` handler, an exceeded ``max_visits`` or limit to
the ``limit`` handler. A *silent* edge is one a call can take with nobody pressing a key; a loop
of silent edges must be bounded or a silent caller (or a failing system) keeps the call forever.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from .. import model as m
from ..errors import Diagnostic
from ..templates import inspect
from . import CheckContext, rule

INSTANT_KINDS = frozenset({"set", "choose", "schedule", "play", "say"})
"""Kinds that finish without waiting for the caller, a timer or another system."""

_KEYED = frozenset({"ok", "no_match"})
"""Outcomes of collect/menu that need the caller to press keys."""


@dataclass(frozen=True, slots=True)
class Edge:
    """One way out of a state."""

    source: str
    key: str
    target: str
    silent: bool
    implicit: bool


@dataclass(frozen=True, slots=True)
class FlowGraph:
    """States and edges of one flow."""

    flow: m.Flow
    edges: Mapping[str, tuple[Edge, ...]]

    @classmethod
    def of(cls, flow: m.Flow, flows: Mapping[str, m.Flow] | None = None) -> FlowGraph:
        """Build the graph; unknown targets are left out (``unknown-target`` reports them)."""
        handlers = {k: r.target for k, r in flow.handlers.items() if r.target in flow.states}
        table: dict[str, tuple[Edge, ...]] = {}
        for state in flow.states.values():
            table[state.name] = tuple(_edges(state, flow, handlers))
        return cls(flow, table)

    def successors(self, name: str, *, hangup: bool = True) -> Iterator[str]:
        """States reachable in one step (``hangup=False`` leaves hang-up edges out)."""
        for edge in self.edges.get(name, ()):
            if hangup or edge.key != "hangup":
                yield edge.target

    def reachable(self, start: str | None = None, *, hangup: bool = True) -> set[str]:
        """States reachable from ``start`` (default: the flow's start)."""
        first = self.flow.start if start is None else start
        if first not in self.flow.states:
            return set()
        seen, todo = {first}, [first]
        while todo:
            for nxt in self.successors(todo.pop(), hangup=hangup):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def can_end(self) -> set[str]:
        """States from which a final state is reachable without the caller hanging up."""
        preds: dict[str, set[str]] = {n: set() for n in self.flow.states}
        for name in self.flow.states:
            for nxt in self.successors(name, hangup=False):
                preds[nxt].add(name)
        done = {n for n, s in self.flow.states.items() if s.final}
        todo = list(done)
        while todo:
            for prev in preds[todo.pop()]:
                if prev not in done:
                    done.add(prev)
                    todo.append(prev)
        return done

    def silent_loops(self) -> list[list[str]]:
        """Strongly connected groups of states joined by silent, explicit edges."""
        succ = {
            n: [e.target for e in es if e.silent and not e.implicit] for n, es in self.edges.items()
        }
        return [c for c in _components(succ) if len(c) > 1 or c[0] in succ[c[0]]]


def _edges(state: m.State, flow: m.Flow, handlers: Mapping[str, str]) -> Iterator[Edge]:
    if state.final:
        return
    explicit = {(key, target) for key, target, _ in m.targets(state)}
    for key, target in explicit:
        if target in flow.states:
            yield Edge(state.name, key, target, _silent(state, key), implicit=False)
    routed = set(state.routes)
    _, failures = m.outcomes(state)
    unrouted_failure = any(f not in routed for f in failures) or not failures
    if "error" in handlers and "error" not in routed and unrouted_failure:
        yield Edge(state.name, "error", handlers["error"], True, implicit=True)
    if "hangup" in handlers and "hangup" not in routed:
        yield Edge(state.name, "hangup", handlers["hangup"], False, implicit=True)
    if "limit" in handlers:
        yield Edge(state.name, "limit", handlers["limit"], True, implicit=True)
    for key, target in handlers.items():
        # A flow-wide Daily event handler is taken from any state that does not route it.
        if key in m.DAILY_EVENTS and key not in routed:
            yield Edge(state.name, key, target, True, implicit=True)


def _silent(state: m.State, key: str) -> bool:
    if key == "hangup" or key.startswith("option "):
        return False
    if state.kind in ("collect", "menu"):
        return key not in _KEYED
    return True


def _components(succ: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (flows may have 1,000s of states)."""
    order = {name: i for i, name in enumerate(succ)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in succ:
        if root in index:
            continue
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(succ.get(child, ()))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    result.append(sorted(group, key=lambda n: order.get(n, len(order))))
    return result


@rule
def unreachable_states(ctx: CheckContext) -> Iterator[Diagnostic]:
    """A state no call can reach is dead weight or a missing route."""
    flow = ctx.flow
    if flow.start not in flow.states:
        return
    seen = ctx.graph.reachable()
    for route in flow.handlers.values():
        if route.target in flow.states:
            seen |= ctx.graph.reachable(route.target)
    for name, state in flow.states.items():
        if name not in seen:
            yield ctx.warning(
                "unreachable-state",
                state.location,
                f"state {name!r} cannot be reached from {flow.start!r}",
                "Route to it from another state, or delete it.",
            )


@rule
def no_path_to_end(ctx: CheckContext) -> Iterator[Diagnostic]:
    """From every reachable state the flow must be able to end without the caller hanging up."""
    flow = ctx.flow
    if flow.start not in flow.states:
        return
    ends = ctx.graph.can_end()
    order = {name: i for i, name in enumerate(flow.states)}
    for name in sorted(ctx.graph.reachable(), key=order.__getitem__):
        state = flow.states[name]
        if name in ends or not any(True for _ in ctx.graph.successors(name, hangup=False)):
            continue  # a state with no way out at all is reported as a dead end
        yield ctx.error(
            "no-path-to-end",
            state.location,
            f"from state {name!r} no path leads to an end: "
            "the call only ends if the caller hangs up",
            "Route one of its outcomes (or a loop's exit) towards a hangup or end state.",
        )


@rule
def silent_loops(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Loops a call can go round with no key pressed must be bounded."""
    flow = ctx.flow
    for group in ctx.graph.silent_loops():
        states = [flow.states[n] for n in group]
        if _bounded(states):
            continue
        first = states[0]
        cycle = " -> ".join([*group, group[0]])
        if all(s.kind in INSTANT_KINDS for s in states):
            yield ctx.error(
                "livelock",
                first.location,
                f"the loop {cycle} waits for no input, timer or system: it would spin forever",
                "Put a collect, menu or wait in the loop, or bound it with max_visits.",
            )
        else:
            yield ctx.error(
                "unbounded-retry",
                first.location,
                f"the loop {cycle} repeats with no key pressed and nothing bounds it",
                f"Add max_visits to {first.name!r} (and route max_visits), or count tries in a "
                "variable and leave the loop with choose.",
            )


def _bounded(states: list[m.State]) -> bool:
    if any(s.max_visits is not None for s in states):
        return True
    assigned = {name for s in states if isinstance(s.action, m.SetVars) for name in s.action.values}
    for s in states:
        if isinstance(s.action, m.Choose):
            for case in s.action.cases:
                used = {
                    name
                    for ns, name in inspect(case.condition, expression=True).refs
                    if ns == "vars"
                }
                if used & assigned:
                    return True
    return False
