"""A flow model compiled, once per content hash, into one shared ``transitions.Machine``.

This module and ``session.py`` are the only ones that know ``transitions``. The machine follows
the measured recommendation (docs/runtime.md): one ``Machine(model=None,
auto_transitions=False)`` per flow version; calls are never registered with it (no
``add_model``), each event fires ``machine.events[trigger].trigger(session)``; no timeout
extensions, no pickling. Its states are the flow's states plus ``_init`` (before ``start``) and
``_ended`` (a call that ended without reaching a final state). Its triggers are the keys of the
flow's edges, the same edges ``checks.graph.FlowGraph`` reasons about:

- each route key (``answered``, ``no_input``, ``dialout.answered``...);
- ``option <key>`` for menu options, ``when <i>`` and ``otherwise`` for ``choose``;
- the implicit ones: ``error`` to the flow's error handler from a state with an unrouted
  failure, ``hangup`` to the flow's hangup handler, ``limit`` to its limit handler, and a
  flow-wide Daily event handler from every state that does not route that event itself;
- ``start`` (``_init`` to the first state) and ``_end`` (any open state to ``_ended``).

The machine's one callback runs the entered state's action through the ``step`` passed to the
trigger; what to *do* in a state is plain Python in ``actions/``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from transitions import Machine

from .. import model as m
from ..errors import FlowEngineError

INIT = "_init"
ENDED = "_ended"
START = "start"
END = "_end"

_CACHE: dict[str, CompiledFlow] = {}


class CompileError(FlowEngineError):
    """Raised when a flow cannot be compiled: it names a state that does not exist.

    ``project.load_flow`` never returns such a flow; this guards models built by hand.
    """


class Entering(Protocol):
    """What the machine's callback hands the entered state to (the core's ``Step``)."""

    def entered(self, state: str) -> None:
        """Run the state's action."""


def _on_state_change(event_data: Any) -> None:
    event_data.kwargs["step"].entered(event_data.model.state)


def flow_edges(flow: m.Flow) -> Iterator[tuple[str, str, str]]:
    """Every ``(source, trigger, dest)`` of the flow's machine, ``start`` and ``_end`` included."""
    yield INIT, START, flow.start
    handlers = {k: r.target for k, r in flow.handlers.items()}
    for state in flow.states.values():
        if state.final:
            continue
        own: dict[str, str] = {key: r.target for key, r in state.routes.items()}
        action = state.action
        if isinstance(action, m.Menu):
            own.update({f"option {key}": r.target for key, r in action.options.items()})
        elif isinstance(action, m.Choose):
            own.update({f"when {i}": case.target for i, case in enumerate(action.cases)})
            own["otherwise"] = action.otherwise.target
        yield from ((state.name, key, target) for key, target in own.items())
        _, failures = m.outcomes(state)
        unrouted_failure = any(f not in state.routes for f in failures) or not failures
        if "error" in handlers and "error" not in own and unrouted_failure:
            yield state.name, "error", handlers["error"]
        for key in ("hangup", "limit", *m.DAILY_EVENTS):
            if key in handlers and key not in own:
                yield state.name, key, handlers[key]
        yield state.name, END, ENDED


class CompiledFlow:
    """One flow version: its model, and the machine and edge table shared by its calls."""

    __slots__ = ("flow", "machine", "table")

    machine: Machine
    table: Mapping[str, Mapping[str, str]]

    def __init__(self, flow: m.Flow, shared: CompiledFlow | None = None) -> None:
        self.flow = flow
        if shared is not None:  # the same text: reuse its machine
            self.machine, self.table = shared.machine, shared.table
            return
        table: dict[str, dict[str, str]] = {name: {} for name in (INIT, *flow.states, ENDED)}
        for source, trigger, dest in flow_edges(flow):
            if dest not in table or dest == INIT:
                raise CompileError(
                    f"flow {flow.name!r}: state {source!r} goes to {dest!r} on {trigger!r}, "
                    "but no state has that name"
                )
            table[source][trigger] = dest
        self.table = table
        self.machine = Machine(
            model=None,
            states=list(table),
            transitions=[
                {"trigger": trigger, "source": source, "dest": dest}
                for source, triggers in table.items()
                for trigger, dest in triggers.items()
            ],
            initial=INIT,
            auto_transitions=False,
            send_event=True,
            after_state_change=[_on_state_change],
        )

    def has(self, state: str, trigger: str) -> bool:
        """True when ``trigger`` leads somewhere from ``state``."""
        return trigger in self.table.get(state, {})

    def move(self, session: Any, trigger: str, step: Entering) -> None:
        """Fire ``trigger`` for ``session`` (which must be in a state that has it).

        The machine sets ``session.state`` and calls ``step.entered(new_state)``.
        """
        self.machine.events[trigger].trigger(session, step=step)

    def reachable(self, start: str = INIT) -> set[str]:
        """States reachable from ``start`` over the machine's own transitions."""
        successors: dict[str, set[str]] = {}
        for event in self.machine.events.values():
            for source, transitions in event.transitions.items():
                successors.setdefault(source, set()).update(
                    t.dest for t in transitions if t.dest is not None
                )
        seen, todo = {start}, [start]
        while todo:
            for nxt in successors.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen


def compile_flow(flow: m.Flow) -> CompiledFlow:
    """The compiled form of a flow; its machine is built once per content hash.

    The same text loaded twice (from two paths) shares one machine; each ``CompiledFlow``
    keeps the model it was asked for, so locations name the right file.

    Raises:
        CompileError: the flow routes to a state that does not exist.
    """
    cached = _CACHE.get(flow.content_hash)
    if cached is None:
        cached = _CACHE[flow.content_hash] = CompiledFlow(flow)
    return cached if cached.flow is flow else CompiledFlow(flow, cached)


class FlowSet:
    """The flows a runtime can run, by name (the newest version) and by content hash (all)."""

    __slots__ = ("_by_hash", "_by_name", "_compiled")

    def __init__(self, flows: Iterable[m.Flow] = ()) -> None:
        self._by_name: dict[str, m.Flow] = {}
        self._by_hash: dict[str, m.Flow] = {}
        self._compiled: dict[str, CompiledFlow] = {}
        for flow in flows:
            self.add(flow)

    def add(self, flow: m.Flow, *, current: bool = True) -> CompiledFlow:
        """Add (or replace by name) a flow; older versions stay available by hash.

        ``current=False`` adds the version by hash only: calls pinned to it can run, while new
        calls keep getting the current version of its name (an old version fetched back for a
        call that started on it).

        Raises:
            CompileError: the flow routes to a state that does not exist.
        """
        compiled = self._compiled[flow.content_hash] = compile_flow(flow)
        if current:
            self._by_name[flow.name] = flow
        self._by_hash[flow.content_hash] = flow
        return compiled

    def get(self, name: str) -> m.Flow | None:
        """The current version of a flow."""
        return self._by_name.get(name)

    def version(self, content_hash: str) -> m.Flow | None:
        """A flow by content hash (a persisted call names the version it started on)."""
        return self._by_hash.get(content_hash)

    def compiled(self, content_hash: str) -> CompiledFlow:
        """The compiled form of a version that was added.

        Raises:
            KeyError: no flow of that hash was added.
        """
        return self._compiled[content_hash]

    @property
    def versions(self) -> list[m.Flow]:
        """Every version added, current or not, in the order first added."""
        return list(self._by_hash.values())

    @property
    def names(self) -> list[str]:
        """Flow names, sorted."""
        return sorted(self._by_name)
