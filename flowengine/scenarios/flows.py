"""The flow a scenario file tests, loaded and checked; and the file's names checked against it.

Where it sits: between ``scenarios.loader`` (the file's shape) and ``scenarios.runner``. Flows
come from ``project.validate_paths`` on the file's ``flows`` folder, once per folder per run.
A flow with errors (or a sub-flow it calls with errors) is not run: its diagnostics are the
scenario file's. Then the names a scenario uses (states, flows, variables, inputs, events)
are checked against the flows, so a typo is reported where it is written instead of as a
puzzling failure.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import model as m
from ..errors import (
    Diagnostic,
    FlowLoadError,
    FlowValidationError,
    Location,
    Severity,
    UsageError,
)
from ..loader import PathKey, read_flow_file
from ..project import Report, collect_files, display_name, validate_paths
from ..runtime.compiler import ENDED
from ..runtime.events import EVENT_NAMES
from .coverage import flow_edges
from .model import ScenarioFile


@dataclass(frozen=True, slots=True)
class Target:
    """The flow under test and what it runs with."""

    flow: m.Flow
    flows: dict[str, m.Flow]
    """Every flow without errors found with it, by name."""
    family: tuple[m.Flow, ...]
    """The flow and every sub-flow it may call, directly or not."""


def _error(code: str, location: Location, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, location, hint)


_FOLDER_HINT = "`flows` is relative to the scenario file (default: ..)."
_FLOW_HINT = "A path in `flow` is relative to the scenario file."


def _hint(word: str, options: Iterable[str]) -> str | None:
    choices = sorted(options)
    close = difflib.get_close_matches(word, choices, n=1)
    if close:
        return f"Did you mean {close[0]!r}?"
    if not choices or len(choices) > 12:
        return None
    return f"Known: {', '.join(choices)}."


def called(flow: m.Flow) -> Iterator[str]:
    """Names of the sub-flows a flow's ``call`` states run."""
    for state in flow.states.values():
        if isinstance(state.action, m.CallFlow):
            yield state.action.flow


class FlowLibrary:
    """Flow folders validated once per run, shared by every scenario file that names them."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[Path, ...], tuple[Report, dict[str, str]]] = {}

    def _load(self, paths: list[Path]) -> tuple[Report, dict[str, str]]:
        key = tuple(p.resolve() for p in paths)
        if key not in self._loaded:
            report = validate_paths(paths)
            files: dict[str, str] = {}  # flow name -> file as reported, errors or not
            for path in collect_files(paths):
                try:
                    doc = read_flow_file(path, display=display_name(path))
                except FlowLoadError:
                    continue
                if isinstance(doc.data, dict) and isinstance(doc.data.get("name"), str):
                    files.setdefault(doc.data["name"], doc.file)
            self._loaded[key] = (report, files)
        return self._loaded[key]

    def target(self, sf: ScenarioFile) -> tuple[Target | None, list[Diagnostic]]:
        """The flow ``sf`` tests, or the diagnostics that stop it from running."""
        target, found = self.find(sf.flow, sf.path.parent, sf.flows, sf.flow_location)
        if target is None:
            if found and found[0].code == "unknown-folder":
                found[0] = dataclasses.replace(found[0], location=sf.flows_location)
            return None, found
        return target, check_names(sf, target)

    def find(
        self, flow: str, base: Path, folder: Path, where: Location
    ) -> tuple[Target | None, list[Diagnostic]]:
        """The flow named ``flow`` (or the flow file at ``base / flow``) with the flows of
        ``folder``; diagnostics at ``where`` when it cannot be had."""
        if not folder.is_dir():
            message = f"the flows folder {display_name(folder)} does not exist"
            return None, [_error("unknown-folder", where, message, _FOLDER_HINT)]
        paths = [folder]
        wanted_path = base / flow if flow.endswith((".yaml", ".yml")) or "/" in flow else None
        if wanted_path is not None:
            if not wanted_path.is_file():
                message = f"there is no flow file {display_name(wanted_path)}"
                return None, [_error("unknown-flow", where, message, _FLOW_HINT)]
            if folder.resolve() not in wanted_path.resolve().parents:
                paths.append(wanted_path)
        try:
            report, files = self._load(paths)
        except FlowLoadError as exc:
            return None, [_error("unknown-flow", where, str(exc))]
        name = flow
        if wanted_path is not None:
            shown = display_name(wanted_path.resolve())
            name = next((n for n, f in files.items() if f == shown), shown)
        if name not in files:
            message = f"no flow named {name!r} in {display_name(folder)}"
            return None, [_error("unknown-flow", where, message, _hint(name, files))]
        family = self._family(name, report)
        broken = [n for n in family if n not in report.flows]
        if broken:
            broken_files = {files.get(n, "") for n in broken}
            found = [d for d in report.errors if d.location.file in broken_files]
            message = (
                f"the flow {broken[0]!r} has errors, so these scenarios cannot run"
                if broken[0] == name
                else f"the sub-flow {broken[0]!r} of {name!r} has errors, "
                "so these scenarios cannot run"
            )
            hint = f"Fix them first: flowengine validate {display_name(folder)}"
            return None, [_error("flow-has-errors", where, message, hint), *found]
        flow_model = report.flows[name]
        family_models = tuple(report.flows[n] for n in family)
        return Target(flow_model, dict(report.flows), family_models), []

    @staticmethod
    def _family(name: str, report: Report) -> list[str]:
        order, todo = [name], [name]
        while todo:
            flow = report.flows.get(todo.pop())
            for sub in called(flow) if flow is not None else ():
                if sub not in order:
                    order.append(sub)
                    todo.append(sub)
        return order


def load_target(flow: str, flows: str | Path | None = None) -> Target:
    """The flow ``flow`` (a name, or a path to a flow file) for the command line.

    ``flows`` is the folder of flows and sub-flows: by default the flow file's folder, or
    ``flows`` for a name.

    Raises:
        UsageError: no such flow or folder.
        FlowValidationError: the flow, or a sub-flow it calls, has errors.
    """
    is_path = flow.endswith((".yaml", ".yml")) or "/" in flow
    folder = Path(flows) if flows is not None else Path(flow).parent if is_path else Path("flows")
    target, found = FlowLibrary().find(flow, Path("."), folder, Location("<command line>"))
    if target is not None:
        return target
    if found[0].code == "flow-has-errors":
        raise FlowValidationError(found[1:] or found)
    hint = f" ({found[0].hint})" if found[0].hint else ""
    raise UsageError(f"{found[0].message}{hint}")


def check_names(sf: ScenarioFile, target: Target) -> list[Diagnostic]:
    """States, flows, variables, inputs, events and edges a scenario file names that the
    flows lack."""
    names = _Names(sf, target)
    names.setups()
    names.exclusions()
    names.scenarios()
    return names.found


class _Names:
    """What the flows of one call name, and the file's names checked against it."""

    def __init__(self, sf: ScenarioFile, target: Target) -> None:
        family = target.family
        self.sf, self.flow, self.doc = sf, target.flow, sf.doc
        self.by_name = {f.name: f for f in family}
        self.states = {ENDED, *(s for f in family for s in f.states)}
        self.variables = {v for f in family for v in (*f.vars, *f.inputs)}
        states = [s for f in family for s in f.states.values()]
        routed = {k for s in states for k in s.routes}
        waited = {e for s in states if isinstance(s.action, m.Wait) for e in s.action.events}
        self.events = {*EVENT_NAMES, *routed, *waited}
        self.found: list[Diagnostic] = []

    def bad(
        self, code: str, path: PathKey, message: str, hint: str | None, key: bool = False
    ) -> None:
        self.found.append(_error(code, self.doc.locate(path, key=key), message, hint))

    def setups(self) -> None:
        """``vars`` and ``inputs`` of the defaults and of each scenario."""
        flow, data = self.flow, self.doc.data
        setups: list[tuple[PathKey, Any]] = [(("defaults",), data.get("defaults") or {})]
        setups += [(("scenarios", i), s) for i, s in enumerate(data["scenarios"])]
        for at, setup in setups:
            for name in setup.get("vars") or {}:
                if name not in flow.vars and name not in flow.inputs:
                    message = f"the flow {flow.name!r} has no variable {name!r}"
                    hint = _hint(name, flow.vars)
                    self.bad("unknown-variable", (*at, "vars", name), message, hint, True)
            for name in setup.get("inputs") or {}:
                if name not in flow.inputs:
                    message = f"the flow {flow.name!r} has no input {name!r}"
                    hint = (
                        _hint(name, flow.inputs) if flow.inputs else "Only a sub-flow has inputs."
                    )
                    self.bad("unknown-input", (*at, "inputs", name), message, hint, True)

    def exclusions(self) -> None:
        """Each ``unreachable`` edge exists."""
        for exclusion in self.sf.unreachable:
            owner = self.by_name.get(exclusion.flow or self.flow.name)
            if owner is None:
                message = f"the call never runs a flow named {exclusion.flow!r}"
                hint = _hint(str(exclusion.flow), self.by_name)
                self.found.append(_error("unknown-flow", exclusion.location, message, hint))
                continue
            edges = [str(e) for e in flow_edges(owner)]
            if exclusion.edge not in edges:
                message = f"the flow {owner.name!r} has no edge {exclusion.edge!r}"
                hint = _hint(exclusion.edge, edges)
                self.found.append(_error("unknown-edge", exclusion.location, message, hint))

    def scenarios(self) -> None:
        """Events of the steps, and states, flows and variables of the expectations."""
        for i, scenario in enumerate(self.doc.data["scenarios"]):
            for j, step in enumerate(scenario["steps"]):
                if not isinstance(step, dict):
                    continue
                at: PathKey = ("scenarios", i, "steps", j)
                name = step.get("event")
                if isinstance(name, str) and name not in self.events:
                    message = f"unknown event {name!r}"
                    self.bad("unknown-event", (*at, "event"), message, _hint(name, self.events))
                if isinstance(step.get("expect"), dict):
                    self.expectation((*at, "expect"), step["expect"])
            if isinstance(scenario.get("end"), dict):
                self.expectation(("scenarios", i, "end"), scenario["end"])

    def expectation(self, at: PathKey, expect: dict[str, Any]) -> None:
        named: list[tuple[PathKey, Any]] = [(("state",), expect.get("state"))]
        for key in ("path", "visited"):
            named += [((key, k), s) for k, s in enumerate(expect.get(key) or [])]
        flows = sorted(self.by_name)
        for sub, state in named:
            if isinstance(state, str) and state not in self.states:
                message = f"no state {state!r} in {' or '.join(flows)}"
                self.bad("unknown-state", (*at, *sub), message, _hint(state, self.states))
        other = expect.get("flow")
        if isinstance(other, str) and other not in self.by_name:
            message = f"the call never runs a flow named {other!r}"
            self.bad("unknown-flow", (*at, "flow"), message, _hint(other, flows))
        for name in expect.get("vars") or {}:
            if name not in self.variables:
                message = f"no flow of this call has a variable {name!r}"
                hint = _hint(name, self.variables)
                self.bad("unknown-variable", (*at, "vars", name), message, hint, True)
