"""Checks on sub-flow calls: the called flow exists, calls never recurse, and what a ``call``
passes in and takes back matches what the sub-flow declares (``inputs`` and ``outputs``).

Sub-flows are looked up among the flows validated together with this one, which includes the
flows in the same folder as each file named (and in folders below it).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from .. import model as m
from ..errors import Diagnostic
from . import CheckContext, did_you_mean, rule


def all_flows(ctx: CheckContext) -> dict[str, m.Flow]:
    """The other flows by name, with this one (a flow is always known to itself)."""
    return {**ctx.flows, ctx.flow.name: ctx.flow}


def calls(flow: m.Flow) -> Iterator[tuple[m.State, m.CallFlow]]:
    """Every ``call`` state of a flow with its action."""
    for state in flow.states.values():
        if isinstance(state.action, m.CallFlow):
            yield state, state.action


def call_graph(flows: Mapping[str, m.Flow]) -> dict[str, set[str]]:
    """Flow name -> names of the flows it calls (known or not)."""
    return {name: {a.flow for _, a in calls(f)} for name, f in flows.items()}


def related_flows(ctx: CheckContext) -> list[m.Flow]:
    """This flow, the sub-flows it calls and the flows that call it, at any depth.

    They run in the same call, so they share its legs and variables' values.
    """
    flows = all_flows(ctx)
    down = call_graph(flows)
    up: dict[str, set[str]] = {}
    for name, callees in down.items():
        for callee in callees:
            up.setdefault(callee, set()).add(name)
    related = {ctx.flow.name}
    for table in (down, up):
        related |= _reachable(table, ctx.flow.name)
    return [flows[n] for n in sorted(related) if n in flows]


def _reachable(table: Mapping[str, set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in table.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _path(table: Mapping[str, set[str]], start: str, goal: str) -> list[str] | None:
    """The shortest chain of calls from ``start`` to ``goal`` (both included), if any."""
    parents: dict[str, str | None] = {start: None}
    queue = [start]
    for here in queue:
        if here == goal:
            chain: list[str] = []
            node: str | None = here
            while node is not None:
                chain.append(node)
                node = parents[node]
            return chain[::-1]
        for nxt in sorted(table.get(here, ())):
            if nxt not in parents:
                parents[nxt] = here
                queue.append(nxt)
    return None


@rule
def unknown_flows(ctx: CheckContext) -> Iterator[Diagnostic]:
    """A ``call`` names a flow that exists."""
    flows = all_flows(ctx)
    for state, action in calls(ctx.flow):
        if action.flow not in flows:
            yield ctx.error(
                "unknown-flow",
                ctx.locate(ctx.state_path(state, "flow")),
                f"state {state.name!r} calls the flow {action.flow!r}, but no flow has that name",
                did_you_mean(action.flow, flows)
                or "A sub-flow is found by its `name`, among the flows validated with this one "
                "and those in this file's folder (or below it).",
            )


@rule
def call_cycles(ctx: CheckContext) -> Iterator[Diagnostic]:
    """A flow that calls itself, directly or through others, nests calls without end."""
    graph = call_graph(all_flows(ctx))
    me = ctx.flow.name
    for state, action in calls(ctx.flow):
        chain = _path(graph, action.flow, me)
        if chain is None:
            continue
        shown = " -> ".join([me, *chain])
        how = "itself" if len(chain) == 1 else "itself through other flows"
        yield ctx.error(
            "call-cycle",
            ctx.locate(ctx.state_path(state, "flow")),
            f"state {state.name!r} makes flow {me!r} call {how}: {shown}",
            "Each call waits for the sub-flow to return, so a cycle never ends: go back to a "
            "state of this flow instead (bounded with max_visits).",
        )


@rule
def call_inputs(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Every input without a default is passed, and nothing undeclared is."""
    flows = all_flows(ctx)
    for state, action in calls(ctx.flow):
        sub = flows.get(action.flow)
        if sub is None:
            continue
        inputs_path = ctx.state_path(state, "inputs")
        where = (
            ctx.locate(inputs_path, key=True)
            if inputs_path in ctx.doc.keys
            else ctx.locate(("states", state.name, state.kind), key=True)
        )
        for name, var in sub.inputs.items():
            if var.default is None and name not in action.inputs:
                yield ctx.error(
                    "missing-input",
                    where,
                    f"state {state.name!r} calls {sub.name!r} without its input {name!r}, "
                    "which has no default",
                    f"Pass it: inputs: {{{name}: <value>}}, or give the input a default "
                    f"in {sub.name!r}.",
                )
        for name in action.inputs:
            if name in sub.inputs:
                continue
            if name in sub.vars:
                hint = (
                    f"{name!r} is a variable of {sub.name!r}, not an input: "
                    "declare it under inputs there to let callers set it."
                )
            else:
                declared = ", ".join(sub.inputs) or "none"
                hint = did_you_mean(name, sub.inputs) or f"Inputs of {sub.name!r}: {declared}."
            yield ctx.error(
                "unknown-input",
                ctx.locate((*inputs_path, name), key=True),
                f"state {state.name!r} passes {name!r} to {sub.name!r}, which has no such input",
                hint,
            )


@rule
def call_outputs(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Every output taken back is one the sub-flow hands back."""
    flows = all_flows(ctx)
    for state, action in calls(ctx.flow):
        sub = flows.get(action.flow)
        if sub is None:
            continue
        for local, output in action.outputs.items():
            if output in sub.outputs:
                continue
            declared = ", ".join(sub.outputs) or "none"
            yield ctx.error(
                "unknown-output",
                ctx.locate(ctx.state_path(state, "outputs", local)),
                f"state {state.name!r} takes {output!r} from {sub.name!r} into {local!r}, "
                f"but {sub.name!r} has no such output",
                did_you_mean(output, sub.outputs)
                or f"Outputs of {sub.name!r}: {declared}. A sub-flow lists what it hands back "
                "under outputs.",
            )
