"""Checks on templates and variables: each template parses, uses nothing refused, and reads
only names that exist; and, path by path through the flow, no state reads a variable that may
not have been set yet.

A variable is *declared* by the flow's ``vars`` (with its default) or, in a sub-flow, its
``inputs``: it is set everywhere. Otherwise it is *assigned* by a state, and only on the routes
where the assignment happened: ``set`` on ``done``, ``collect.into`` on ``ok``, ``menu.into``
on an option, ``http.save`` on ``ok``, ``call.outputs`` on the sub-flow's return outcomes. A
state sees what is set on every path from ``start`` to it (definite assignment: the
intersection over its predecessors, computed once over the flow graph).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .. import model as m
from ..errors import Diagnostic
from ..loader import PathKey
from ..templates import CALL_FIELDS, FLOW_FIELDS, NAMESPACES, RESPONSE_FIELDS, inspect, is_template
from . import CheckContext, rule
from .graph import Edge
from .prompts import prompt_uses


@dataclass(frozen=True, slots=True)
class Site:
    """One template or condition of a flow, and where it is."""

    source: str
    path: PathKey
    label: str
    state: str | None = None
    """The state it runs in; None for a prompt text (it runs wherever the prompt plays)."""
    expression: bool = False
    response: bool = False
    """True in an http state's ``save``, where ``response`` can be read."""
    sees: frozenset[str] = frozenset()
    """Variables the same state has set just before (earlier keys of ``set`` and ``save``)."""


def _strings(value: Any, path: PathKey) -> Iterator[tuple[str, PathKey]]:
    if isinstance(value, str):
        if is_template(value):
            yield value, path
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _strings(item, (*path, i))


def _fields(action: m.Action) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """(field path under the action, value) for every field that may hold templates."""
    match action:
        case m.Say():
            yield ("text",), action.text
        case m.SendDtmf():
            yield ("tones",), action.tones
        case m.DialOut():
            yield ("to",), action.to
            yield ("display_name",), action.display_name
        case m.Transfer():
            yield (action.target_kind,), action.target
        case m.Refer():
            yield ("to",), action.to
        case m.Http():
            yield ("url",), action.url
            yield ("headers",), action.headers
            yield ("query",), action.query
            yield ("body",), action.body
        case m.Schedule():
            yield ("override",), action.override
        case m.CallFlow():
            yield ("inputs",), action.inputs


def _dotted(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text


def state_sites(state: m.State) -> Iterator[Site]:
    """Every template and condition a state evaluates."""
    base: PathKey = ("states", state.name, state.kind)

    def site(source: str, rest: PathKey, **kw: Any) -> Site:
        label = f"{_dotted((state.kind, *rest))} of state {state.name!r}"
        return Site(source, (*base, *rest), label, state.name, **kw)

    for field, value in _fields(state.action):
        for source, rest in _strings(value, field):
            yield site(source, rest)
    action = state.action
    # set and save assign in order: a later value sees the earlier ones.
    if isinstance(action, (m.SetVars, m.Http)):
        http = isinstance(action, m.Http)
        values: Mapping[str, Any] = action.save if isinstance(action, m.Http) else action.values
        for i, (name, value) in enumerate(values.items()):
            earlier = frozenset(list(values)[:i])
            for source, rest in _strings(value, ("save", name) if http else (name,)):
                yield site(source, rest, response=http, sees=earlier)
    if isinstance(action, m.Choose):
        for i, case in enumerate(action.cases):
            yield site(case.condition, ("when", i, "if"), expression=True)


def prompt_sites(ctx: CheckContext, prompt: m.Prompt) -> Iterator[Site]:
    """The texts of a prompt; a catalogue's prompts are located at the ``catalogue`` key."""
    inline = ("prompts", prompt.id) in ctx.doc.keys
    for locale, text in prompt.locales.items():
        if text.text is None or not is_template(text.text):
            continue
        path: PathKey = ("prompts", prompt.id, locale, "text") if locale else ("prompts", prompt.id)
        where = f" ({locale})" if locale else ""
        label = f"prompt {prompt.id!r}{where}" + ("" if inline else " of the catalogue")
        yield Site(text.text, path if inline else ("catalogue",), label)


def _used_prompts(flow: m.Flow) -> dict[str, list[tuple[m.State, str, int]]]:
    used: dict[str, list[tuple[m.State, str, int]]] = {}
    for state in flow.states.values():
        for field, i, pid in prompt_uses(state):
            used.setdefault(pid, []).append((state, field, i))
    return used


def _all_sites(ctx: CheckContext) -> list[Site]:
    found = [s for state in ctx.flow.states.values() for s in state_sites(state)]
    used = _used_prompts(ctx.flow)
    for pid, prompt in ctx.flow.prompts.items():
        if ("prompts", pid) in ctx.doc.keys or pid in used:
            found.extend(prompt_sites(ctx, prompt))
    return found


def assigns(action: m.Action) -> frozenset[str]:
    """The variables an action sets when it completes."""
    match action:
        case m.SetVars():
            return frozenset(action.values)
        case m.Collect():
            return frozenset({action.into})
        case m.Menu(into=str() as into):
            return frozenset({into})
        case m.Http():
            return frozenset(action.save)
        case m.CallFlow():
            return frozenset(action.outputs)
    return frozenset()


_DONE: dict[type, str] = {m.SetVars: "done", m.Collect: "ok", m.Http: "ok"}
"""The outcome on which an action's assignments hold (menu and call: see ``gen``)."""


def gen(state: m.State, edge: Edge) -> frozenset[str]:
    """The variables a state has set when a call leaves it along ``edge``."""
    action, key = state.action, edge.key
    if edge.implicit:
        return frozenset()  # an error, hang-up or limit: the action did not complete
    if isinstance(action, m.Menu):
        completed = key.startswith("option ")
    elif isinstance(action, m.CallFlow):
        completed = key not in (*m.STATE_KEYS, *m.DAILY_EVENTS)  # a return outcome
    else:
        completed = key == _DONE.get(type(action))
    return assigns(action) if completed else frozenset()


def declared(flow: m.Flow) -> frozenset[str]:
    """Variables set everywhere: the flow's ``vars`` and a sub-flow's ``inputs``."""
    return frozenset(flow.vars) | frozenset(flow.inputs)


def assigned(flow: m.Flow) -> frozenset[str]:
    """Variables some state assigns."""
    return frozenset(name for s in flow.states.values() for name in assigns(s.action))


def set_on_entry(ctx: CheckContext) -> dict[str, frozenset[str]]:
    """For each state reachable from ``start``: the variables assigned on every path to it."""
    flow, graph = ctx.flow, ctx.graph
    if flow.start not in flow.states:
        return {}
    entry: dict[str, frozenset[str]] = {flow.start: frozenset()}
    todo = [flow.start]
    while todo:
        name = todo.pop()
        state = flow.states[name]
        for edge in graph.edges.get(name, ()):
            out = entry[name] | gen(state, edge)
            before = entry.get(edge.target)
            after = out if before is None else before & out
            if after != before:
                entry[edge.target] = after
                todo.append(edge.target)
    return entry


def path_without(ctx: CheckContext, goal: str, name: str) -> str:
    """A shortest path from ``start`` to ``goal`` on which nothing assigns ``name``, shown as
    ``a --ok--> b --timeout--> c`` (long paths keep their two ends)."""
    flow, graph = ctx.flow, ctx.graph
    parents: dict[str, tuple[str, str] | None] = {flow.start: None}
    queue = [flow.start]
    for here in queue:
        if here == goal:
            break
        for edge in graph.edges.get(here, ()):
            if edge.target not in parents and name not in gen(flow.states[here], edge):
                parents[edge.target] = (here, edge.key)
                queue.append(edge.target)
    steps: list[str] = [goal]
    back = parents.get(goal)
    while back is not None:
        steps[:0] = [back[0], f"--{back[1]}-->"]
        back = parents[back[0]]
    if len(steps) > 9:
        steps = [*steps[:3], "...", *steps[-5:]]
    return " ".join(steps)


@rule
def template_problems(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Templates that do not parse, that use something refused, or that read unknown names."""
    known = declared(ctx.flow) | assigned(ctx.flow)
    for site in _all_sites(ctx):
        found = inspect(site.source, expression=site.expression)
        loc = ctx.locate(site.path)
        if found.syntax_error is not None:
            bare = site.expression and "{{" in site.source
            yield ctx.error(
                "template-syntax",
                loc,
                f"{site.label} does not parse: {found.syntax_error}",
                "A condition is a bare expression: write it without {{ }}, e.g. vars.tries > 2."
                if bare
                else "Check that every {{ has its }} and every quote is closed.",
            )
        elif found.unsafe:
            yield ctx.error(
                "unsafe-template",
                loc,
                f"{site.label} is refused: it uses {'; '.join(found.unsafe)}",
                "Templates read vars, call and flow (and response in an http save) and cannot "
                "run code: see docs/templates.md.",
            )
        else:
            for scope, name in sorted(found.refs, key=lambda r: (r[0], r[1] or "")):
                problem = _unknown(site, scope, name, known)
                if problem is not None:
                    yield ctx.error("undefined-variable", loc, *problem)


def _unknown(
    site: Site, scope: str, name: str | None, known: frozenset[str]
) -> tuple[str, str] | None:
    """(message, hint) when a reference names nothing, else None."""
    reads = f"{site.label} reads"
    if scope == "vars" and name is not None and name not in known:
        return (
            f"{reads} vars.{name}, but no variable {name!r} is declared or assigned in this flow",
            _close(name, known, "vars.")
            or f"Declare it under vars: with a default ({name}: <value>), or assign it with "
            "set, collect into, menu into, http save or call outputs.",
        )
    if scope == "call" and name is not None and name not in CALL_FIELDS:
        return (
            f"{reads} call.{name}, but a call has no field {name!r}",
            _close(name, CALL_FIELDS, "call.") or f"Call fields: {', '.join(CALL_FIELDS)}.",
        )
    if scope == "flow" and name is not None and name not in FLOW_FIELDS:
        return (
            f"{reads} flow.{name}, but a flow has no field {name!r}",
            _close(name, FLOW_FIELDS, "flow.") or f"Flow fields: {', '.join(FLOW_FIELDS)}.",
        )
    if scope == "response" and name is None and not site.response:
        return (
            f"{reads} response, which only an http state's save can read",
            "Save what you need under the http state's save:, then read it as vars.<name>.",
        )
    if scope == "response" and name is not None and site.response and name not in RESPONSE_FIELDS:
        return (
            f"{reads} response.{name}, but a response has only {', '.join(RESPONSE_FIELDS)}",
            _close(name, RESPONSE_FIELDS, "response.")
            or "Read the body as response.json.<key> or response.text.",
        )
    if name is None and scope != "response":
        hint = (
            f"Did you mean vars.{scope}?"
            if scope in known
            else f"Did you mean call.{scope}?"
            if scope in CALL_FIELDS
            else _close(scope, NAMESPACES, "")
            or _close(scope, known, "vars.")
            or "Variables are read as vars.<name>, the call as call.<field>, the flow as flow.name."
        )
        return f"{reads} {scope!r}, but templates have no such name", hint
    return None


def _close(word: str, options: Iterable[str], prefix: str) -> str | None:
    found = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f"Did you mean {prefix}{found[0]}?" if found else None


@rule
def maybe_undefined(ctx: CheckContext) -> Iterator[Diagnostic]:
    """A state that reads a variable some path from ``start`` has not set yet."""
    flow = ctx.flow
    later = assigned(flow) - declared(flow)
    if not later:
        return
    entry = set_on_entry(ctx)
    seen: set[tuple[str, str]] = set()

    def check(state: m.State, site: Site, loc_path: PathKey, what: str) -> Iterator[Diagnostic]:
        found = inspect(site.source, expression=site.expression)
        if not found.ok:
            return
        for scope, name in sorted(found.refs, key=lambda r: (r[0], r[1] or "")):
            if scope != "vars" or name not in later or (scope, name) in found.guarded:
                continue
            if name in entry[state.name] | site.sees or (state.name, name) in seen:
                continue
            seen.add((state.name, name))
            yield ctx.warning(
                "maybe-undefined-variable",
                ctx.locate(loc_path),
                f"{what} reads vars.{name}, which is not set on every path to {state.name!r}: "
                f"{path_without(ctx, state.name, name)} does not set it",
                f"Give {name} a default under vars:, or set it on every path before "
                f"{state.name!r}.",
            )

    for state in flow.states.values():
        if state.name not in entry:
            continue  # unreachable: reported as unreachable-state
        for site in state_sites(state):
            yield from check(state, site, site.path, site.label)
    for pid, plays in _used_prompts(flow).items():
        prompt = flow.prompts.get(pid)
        if prompt is None:
            continue
        for state, field, i in plays:
            if state.name not in entry:
                continue
            for site in prompt_sites(ctx, prompt):
                what = f"prompt {pid!r}, played by state {state.name!r},"
                yield from check(state, site, ctx.state_path(state, field, i), what)
