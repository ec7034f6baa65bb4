"""Checks on each state's routes: targets exist, outcomes are real and all of them handled."""

from __future__ import annotations

from collections.abc import Iterator

from .. import model as m
from ..errors import Diagnostic
from . import CheckContext, did_you_mean, rule


@rule
def unknown_targets(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Every route, option, branch, handler and ``start`` names a state that exists."""
    flow = ctx.flow
    names = list(flow.states)
    if flow.start not in flow.states:
        yield ctx.error(
            "unknown-target",
            flow.start_location,
            f"start names {flow.start!r}, but no state has that name",
            did_you_mean(flow.start, names),
        )
    for route in flow.handlers.values():
        if route.target not in flow.states:
            yield ctx.error(
                "unknown-target",
                route.location,
                f"the flow's {route.key!r} handler goes to {route.target!r}, "
                "but no state has that name",
                did_you_mean(route.target, names),
            )
    for state in flow.states.values():
        for key, target, loc in m.targets(state):
            if target not in flow.states:
                yield ctx.error(
                    "unknown-target",
                    loc,
                    f"state {state.name!r} routes {key!r} to {target!r}, "
                    "but no state has that name",
                    did_you_mean(target, names),
                )


def state_outcomes(ctx: CheckContext, state: m.State) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Success and failure outcomes, with a sub-flow's return outcomes for ``call``."""
    if isinstance(state.action, m.CallFlow):
        sub = ctx.flows.get(state.action.flow)
        if sub is None:
            return tuple(k for k in state.routes if k not in m.STATE_KEYS), ()
        returns = sorted(
            {s.action.outcome for s in sub.states.values() if isinstance(s.action, m.Return)}
        )
        return tuple(returns), ()
    return m.outcomes(state)


@rule
def unknown_outcomes(ctx: CheckContext) -> Iterator[Diagnostic]:
    """An ``on`` key must be an outcome of the state's action, a common key or a Daily event."""
    for state in ctx.flow.states.values():
        success, failure = state_outcomes(ctx, state)
        own = [*success, *failure, *m.STATE_KEYS]
        valid = [*own, *m.DAILY_EVENTS]
        for key in state.routes:
            if key in valid:
                continue
            # Suggest a Daily event only for a key that looks like one ('dialout.answerd'):
            # 'answered' on a play state is not a typo of 'dialout.answered'.
            options = valid if "." in key else own
            listed = ", ".join([*success, *failure]) or "none of its own"
            yield ctx.error(
                "unknown-outcome",
                ctx.locate(("states", state.name, "on", key), key=True),
                f"state {state.name!r} ({state.kind}) never has the outcome {key!r}",
                did_you_mean(key, options)
                or f"Its outcomes: {listed}; any state also has hangup, error and max_visits.",
            )
    for key in ctx.flow.handlers:
        if key not in (*m.FLOW_KEYS, *m.DAILY_EVENTS):
            yield ctx.error(
                "unknown-outcome",
                ctx.locate(("on", key), key=True),
                f"the flow-wide 'on' has no event {key!r}",
                did_you_mean(key, [*m.FLOW_KEYS, *m.DAILY_EVENTS])
                or "Flow-wide keys: hangup, error, limit, or a Daily event name.",
            )


@rule
def missing_outcomes(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Every outcome a state can have goes somewhere; failures may fall to the flow's ``error``."""
    flow_error = "error" in ctx.flow.handlers
    for state in ctx.flow.states.values():
        if state.final or isinstance(state.action, m.Choose):
            continue
        routes = state.routes
        success, failure = state_outcomes(ctx, state)
        if success and not any(k in routes for k in success) and not _failure_routed(state):
            yield ctx.error(
                "dead-end",
                state.location,
                f"state {state.name!r} has no way out: nothing follows {_list(success)}",
                f"Add on: {{{success[0]}: <next state>}}.",
            )
            continue
        for key in success:
            if key not in routes and not (
                key == "holiday" and isinstance(state.action, m.Schedule)
            ):
                yield ctx.error(
                    "missing-outcome",
                    state.location,
                    f"state {state.name!r} does not say where to go on {key!r}",
                    f"Add {key}: <state> to its 'on'.",
                )
        if flow_error or "error" in routes:
            continue
        for key in _unhandled_failures(state, failure):
            yield ctx.error(
                "missing-outcome",
                state.location,
                f"state {state.name!r} does not handle {key!r}, and the flow has no error handler",
                f"Add {key}: <state> to its 'on', or a flow-wide on: {{error: <state>}}.",
            )


def _failure_routed(state: m.State) -> bool:
    return any(k in state.routes for k in m.outcomes(state)[1])


def _unhandled_failures(state: m.State, failures: tuple[str, ...]) -> list[str]:
    routes = state.routes
    if isinstance(state.action, (m.Collect, m.Menu)):
        # When attempts run out the specific outcome is taken if routed, else max_attempts.
        if "max_attempts" in routes:
            return []
        return [k for k in ("no_input", "no_match") if k not in routes]
    return [k for k in failures if k not in routes]


def _list(keys: tuple[str, ...]) -> str:
    return " or ".join(repr(k) for k in keys)


@rule
def waits_forever(ctx: CheckContext) -> Iterator[Diagnostic]:
    """A wait for events needs a timeout: nothing guarantees that an event comes."""
    refers = any(isinstance(s.action, m.Refer) for s in ctx.flow.states.values())
    for state in ctx.flow.states.values():
        action = state.action
        if not isinstance(action, m.Wait) or action.duration is not None:
            continue
        never = [
            e
            for e in action.events
            if refers and e in ("calltransfer.answered", "calltransfer.completed")
        ]
        if action.timeout is None:
            yield ctx.error(
                "waits-forever",
                ctx.locate(ctx.state_path(state)),
                f"state {state.name!r} waits for {', '.join(action.events)} with no timeout",
                "Add timeout: <duration> and route timeout, in case the event never comes.",
            )
        elif never and len(never) == len(action.events):
            yield ctx.warning(
                "waits-forever",
                ctx.locate(ctx.state_path(state)),
                f"state {state.name!r} waits for {', '.join(never)}, which a refer never sends",
                "After refer, Daily leaves the call: "
                "only calltransfer.triggered and initiated come.",
            )


@rule
def hangup_not_handled(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Without a hangup handler a call that hangs up ends with no clean-up step."""
    flow = ctx.flow
    if "hangup" in flow.handlers or flow.inputs or flow.outputs:
        return  # a sub-flow's hang-up is handled by its caller's flow
    if not (flow.match.dialin or flow.match.sip_uri or flow.match.sip_headers):
        return  # an outbound flow has no caller leg: its far end ending is dialout.stopped
    open_states = [
        s.name for s in ctx.flow.states.values() if not s.final and "hangup" not in s.routes
    ]
    if open_states:
        shown = ", ".join(repr(n) for n in open_states[:5])
        more = f" and {len(open_states) - 5} more" if len(open_states) > 5 else ""
        noun = "state" if len(open_states) == 1 else "states"
        yield ctx.warning(
            "hangup-not-handled",
            ctx.locate(("name",), key=True),
            f"nothing handles a caller hanging up in {noun} {shown}{more}",
            "Add a flow-wide on: {hangup: <state>} that cleans up (stop dial-outs, log) and ends.",
        )


@rule
def menu_keys(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Menu keys a caller's keypad cannot press, or that collide, are mistakes."""
    for state in ctx.flow.states.values():
        action = state.action
        if not isinstance(action, m.Menu):
            continue
        for key in action.options:
            if len(key) != 1 or key not in "0123456789*#ABCD":
                yield ctx.warning(
                    "menu-unreachable-key",
                    ctx.locate((*ctx.state_path(state), "options", key), key=True),
                    f"menu {state.name!r} offers key {key!r}, which a caller cannot press: "
                    "a menu takes one key",
                    "Use one of 0-9, * or #; collect several digits with a collect state.",
                )
            elif key in "ABCD":
                yield ctx.warning(
                    "menu-unreachable-key",
                    ctx.locate((*ctx.state_path(state), "options", key), key=True),
                    f"menu {state.name!r} offers key {key!r}, which ordinary phone keypads lack",
                    "Use 0-9, * or #.",
                )
