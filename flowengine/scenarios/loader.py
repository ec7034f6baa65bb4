"""Scenario files -> ``ScenarioFile`` models, every problem a diagnostic with its position.

Where it sits: the first step of ``flowengine test``. It reads the file with the flow loader
(the same YAML 1.2 rules, the same source map), checks its shape against the scenario JSON
Schema (``schemas/scenario.schema.json``, shipped in the package too), then what the schema
cannot say (a step does one thing, times carry a UTC offset, names are unique). Nothing here
raises for bad content; ``scenarios.flows`` then checks the file against its flow.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from ..durations import parse_duration
from ..errors import Diagnostic, Severity
from ..loader import Document, PathKey, read_flow_file
from ..project import display_name
from ..schema import TYPE_NAMES, packaged_schema
from .model import (
    STEP_KINDS,
    Check,
    Exclusion,
    Expectation,
    Scenario,
    ScenarioFile,
    Step,
    Stub,
)

SCHEMA_RESOURCE = "scenario.schema.json"
SCENARIO_SUFFIXES = (".test.yaml", ".test.yml")

_MERGED = ("call", "vars", "inputs", "daily", "limits")
"""Setup keys whose mapping a scenario merges over the file's ``defaults``."""

_PATTERNS: dict[str, tuple[str, str]] = {
    "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$": (
        "a duration",
        "Write a number with a unit: 5s, 500ms, 1m30s.",
    ),
    "^[0-9A-D*#]+$": ("DTMF keys", 'Keys are 0-9, A-D, * and #; quote them: "1234#".'),
    "^[a-z][a-z_]*([.-][a-z_]+)?$": ("an event name", "Use Daily's names, like dialout.answered."),
    "^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$": ("a locale", "Write locales like en-US or es-US."),
}


@cache
def scenario_schema() -> dict[str, Any]:
    """The scenario JSON Schema shipped inside the package."""
    return packaged_schema(SCHEMA_RESOURCE)


@cache
def _validator() -> jsonschema.protocols.Validator:
    validator: jsonschema.protocols.Validator = jsonschema.Draft202012Validator(scenario_schema())
    return validator


def read_scenario_file(path: Path) -> tuple[ScenarioFile | None, list[Diagnostic]]:
    """Parse and check one scenario file; the model is None when it has errors.

    Raises:
        FlowLoadError: the file cannot be read at all.
    """
    doc = read_flow_file(path, display=display_name(path))
    if not doc.ok:
        return None, list(doc.diagnostics)
    if doc.data is None:
        return None, [_error(doc, "missing-key", (), "the scenario file is empty")]
    found: list[Diagnostic] = []
    for error in _validator().iter_errors(doc.data):
        found.extend(_convert(doc, error))
    if found:
        return None, list(dict.fromkeys(found))
    builder = _Builder(doc, path)
    model = builder.build()
    return (None if builder.found else model), builder.found


def _error(
    doc: Document,
    code: str,
    path: PathKey,
    message: str,
    hint: str | None = None,
    *,
    key: bool = False,
) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, doc.locate(path, key=key), hint)


def _close(word: str, options: Iterable[str]) -> str:
    choices = list(options)
    close = difflib.get_close_matches(word, choices, n=1)
    return f"Did you mean {close[0]!r}?" if close else f"Use one of: {', '.join(choices)}."


# -- schema errors -------------------------------------------------------------------------


def _where(doc: Document, path: PathKey) -> str:
    """A path as a designer reads it: ``scenario 'sales', step 3: expect.commands.0``."""
    if not path:
        return "the scenario file"
    if path[0] != "scenarios" or len(path) < 2 or not isinstance(path[1], int):
        return repr(".".join(str(p) for p in path))
    scenarios = doc.data.get("scenarios") if isinstance(doc.data, dict) else None
    item = scenarios[path[1]] if isinstance(scenarios, list) else None
    name = item.get("name") if isinstance(item, dict) else None
    text = f"scenario {name!r}" if isinstance(name, str) else f"scenario {path[1] + 1}"
    rest = list(path[2:])
    if len(rest) >= 2 and rest[0] == "steps" and isinstance(rest[1], int):
        text += f", step {rest[1] + 1}"
        rest = rest[2:]
    return text + (": " + ".".join(str(p) for p in rest) if rest else "")


def _is_step(path: PathKey) -> bool:
    return len(path) == 4 and path[0] == "scenarios" and path[2] == "steps"


def _type_name(value: Any) -> str:
    for name, kind in (("boolean", bool), ("integer", int), ("number", float), ("string", str)):
        if isinstance(value, kind):
            return TYPE_NAMES[name]
    return TYPE_NAMES[
        "array" if isinstance(value, list) else "object" if value is not None else "null"
    ]


def _convert(doc: Document, error: ValidationError) -> Iterator[Diagnostic]:  # noqa: C901
    path: PathKey = tuple(error.absolute_path)
    kind = error.validator
    instance: Any = error.instance
    wanted: Any = error.validator_value
    schema = error.schema if isinstance(error.schema, dict) else {}
    where = _where(doc, path)
    if kind == "additionalProperties" and wanted is False:
        allowed = list(schema.get("properties", {}))
        for extra in sorted(set(instance) - set(allowed)):
            if "dtmf" in allowed:
                code, what, options = "unknown-step", "unknown step", list(STEP_KINDS)
            elif "no_commands" in allowed:
                code, what, options = "unknown-expectation", "unknown expectation key", allowed
            else:
                code, what, options = "unknown-key", "unknown key", allowed
            message = f"{what} {extra!r} in {where}"
            yield _error(doc, code, (*path, extra), message, _close(extra, options), key=True)
    elif kind == "required":
        for name in [k for k in wanted if k not in instance]:
            yield _error(doc, "missing-key", path, f"{where} needs the key {name!r}", key=True)
    elif kind == "anyOf" and _is_step(path):
        yield from _step_shape(doc, path, instance, error)
    elif kind == "anyOf":
        fitting = [e for e in error.context or [] if not (e.validator == "type" and not e.path)]
        if fitting:
            yield from _convert(doc, fitting[0])
        else:
            yield _error(doc, "wrong-type", path, f"{where} cannot be {_type_name(instance)}")
    elif "propertyNames" in error.schema_path:
        # Only the commands of an expectation constrain their keys: the command kinds.
        bad = str(instance)
        kinds = scenario_schema()["$defs"]["commandKind"]["enum"]
        yield _error(
            doc,
            "unknown-command",
            (*path, bad),
            f"unknown command {bad!r} in {where}",
            _close(bad, kinds),
            key=True,
        )
    elif kind == "type":
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        text = " or ".join(TYPE_NAMES.get(n, n) for n in names)
        named = _PATTERNS.get(str(schema.get("pattern")), (None, None))[0]
        message = f"{where} must be {named or text}, not {_type_name(instance)}"
        yield _error(doc, "wrong-type", path, message)
    elif kind in ("enum", "const"):
        values = wanted if kind == "enum" else [wanted]
        options = [v if isinstance(v, str) else json.dumps(v) for v in values]
        shown = repr(instance) if isinstance(instance, str) else json.dumps(instance)
        message = f"{shown} in {where} is not one of the allowed values"
        yield _error(doc, "invalid-value", path, message, _close(str(instance), options))
    elif kind == "pattern":
        name, hint = _PATTERNS.get(str(wanted), ("valid", ""))
        yield _error(doc, "invalid-value", path, f"{instance!r} in {where} is not {name}", hint)
    elif kind in ("minimum", "maximum"):
        bound = "at least" if kind == "minimum" else "at most"
        message = f"{where} must be {bound} {wanted}, not {instance!r}"
        yield _error(doc, "invalid-value", path, message)
    elif kind in ("minItems", "minProperties", "minLength"):
        yield _error(doc, "invalid-value", path, f"{where} is empty")
    elif kind == "maxProperties" and "commands" in path:
        message = f"{where} names {len(instance)} commands: write one per list item"
        yield _error(doc, "invalid-value", path, message, "- sip_call_transfer: {...}")
    else:
        yield _error(doc, "invalid-value", path, f"{where}: {error.message}")


def _step_shape(
    doc: Document, path: PathKey, instance: Any, error: ValidationError
) -> Iterator[Diagnostic]:
    """A step that fits neither form (the word ``hangup``, or a one-action mapping)."""
    where = _where(doc, path)
    if isinstance(instance, str):
        hint = _close(instance, STEP_KINDS)
        if instance in STEP_KINDS:
            hint = f"Write it as `{instance}: ...`; only hangup stands alone."
        yield _error(doc, "unknown-step", path, f"unknown step {instance!r} in {where}", hint)
    elif isinstance(instance, dict):
        for sub in error.context or []:
            if sub.relative_schema_path and sub.relative_schema_path[0] == 1:
                yield from _convert(doc, sub)
    else:
        message = f'{where} must be a step like `dtmf: "1"` or the word hangup'
        yield _error(doc, "wrong-type", path, message)


# -- the model -----------------------------------------------------------------------------


class _Builder:
    """Turns schema-valid data into the model, collecting what the schema cannot check."""

    def __init__(self, doc: Document, path: Path) -> None:
        self.doc = doc
        self.path = path
        self.found: list[Diagnostic] = []

    def error(
        self, code: str, at: PathKey, message: str, hint: str | None = None, *, key: bool = False
    ) -> None:
        self.found.append(_error(self.doc, code, at, message, hint, key=key))

    def build(self) -> ScenarioFile:
        data: dict[str, Any] = self.doc.data
        defaults: dict[str, Any] = data.get("defaults") or {}
        default_stubs = tuple(self.stubs(defaults.get("http") or [], ("defaults", "http")))
        default_at = self.time(defaults.get("at"), ("defaults", "at"))
        scenarios = []
        seen: dict[str, int] = {}
        for i, item in enumerate(data["scenarios"]):
            at: PathKey = ("scenarios", i)
            name = item["name"]
            if name in seen:
                line = self.doc.locate(("scenarios", seen[name], "name")).line
                message = f"two scenarios are named {name!r} (the first at line {line})"
                self.error("duplicate-scenario", (*at, "name"), message, "Give each a new name.")
            seen.setdefault(name, i)
            scenarios.append(self.scenario(item, at, defaults, default_stubs, default_at))
        folder = (self.path.parent / str(data.get("flows", ".."))).resolve()
        return ScenarioFile(
            path=self.path,
            file=self.doc.file,
            flow=data["flow"],
            flow_location=self.doc.locate(("flow",)),
            flows=folder,
            flows_location=self.doc.locate(("flows",) if "flows" in data else ("flow",)),
            scenarios=tuple(scenarios),
            unreachable=tuple(
                Exclusion(
                    item.get("flow"),
                    item["edge"],
                    item["reason"],
                    self.doc.locate(("unreachable", i, "edge")),
                )
                for i, item in enumerate(data.get("unreachable") or [])
            ),
            doc=self.doc,
        )

    def scenario(
        self,
        item: dict[str, Any],
        at: PathKey,
        defaults: Mapping[str, Any],
        default_stubs: tuple[Stub, ...],
        default_at: float | None,
    ) -> Scenario:
        merged = {k: _merge(defaults.get(k), item.get(k)) for k in _MERGED}
        limits: dict[str, float] = {}
        for key, value in (merged["limits"] or {}).items():
            limits[key] = float(value) if key == "max_steps" else parse_duration(value)
        own_at = self.time(item.get("at"), (*at, "at"))
        return Scenario(
            name=item["name"],
            location=self.doc.locate((*at, "name")),
            at=own_at if "at" in item else default_at,
            call=merged["call"] or {},
            vars=merged["vars"] or {},
            inputs=merged["inputs"] or {},
            limits=limits,
            stubs=(*self.stubs(item.get("http") or [], (*at, "http")), *default_stubs),
            daily=merged["daily"] or {},
            steps=tuple(self.step(s, (*at, "steps", j)) for j, s in enumerate(item["steps"])),
            end=self.expectation(item["end"], (*at, "end")) if "end" in item else None,
            description=item.get("description"),
        )

    def time(self, value: str | None, at: PathKey) -> float | None:
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.error(
                "bad-time",
                at,
                f"{value!r} is not a date and time",
                "Write ISO 8601 with a UTC offset: 2026-11-23T10:00:00-08:00.",
            )
            return None
        if moment.tzinfo is None:
            self.error(
                "bad-time",
                at,
                f"{value!r} has no UTC offset, so the call's local time is unknown",
                f"Add one, e.g. {value}-08:00 (or Z for UTC).",
            )
            return None
        return moment.timestamp()

    def stubs(self, items: list[dict[str, Any]], at: PathKey) -> Iterator[Stub]:
        for i, item in enumerate(items):
            answer = {k: v for k, v in item.items() if k != "match"}
            yield Stub(item["match"], answer, self.doc.locate((*at, i, "match")))

    def step(self, item: Any, at: PathKey) -> Step:
        location = self.doc.locate(at)
        if item == "hangup":
            return Step("hangup", location)
        kinds = [k for k in STEP_KINDS if k in item]
        if len(kinds) != 1:
            message = (
                f"a step does one thing, but this one has {' and '.join(kinds)}"
                if kinds
                else f"the step has no action: give it one of {', '.join(STEP_KINDS)}"
            )
            self.error("invalid-step", (*at, kinds[1]) if kinds else at, message, key=bool(kinds))
            return Step("invalid", location)
        kind = kinds[0]
        for extra in ("leg", "payload"):
            if extra in item and kind != "event":
                message = f"{extra!r} belongs to an event step"
                self.error("invalid-step", (*at, extra), message, key=True)
        if kind == "dtmf":
            return Step(kind, location, keys=str(item["dtmf"]))
        if kind == "wait":
            return Step(kind, location, seconds=parse_duration(item["wait"]))
        if kind == "event":
            payload = item.get("payload") or {}
            return Step(kind, location, event=item["event"], leg=item.get("leg"), payload=payload)
        if kind == "expect":
            return Step(kind, location, expect=self.expectation(item["expect"], (*at, "expect")))
        if kind == "fault":
            return Step(kind, location, event=item["fault"])
        return Step("hangup", location)

    def expectation(self, item: dict[str, Any], at: PathKey) -> Expectation:
        checks = tuple(
            Check(key, value, self.doc.locate((*at, key), key=True)) for key, value in item.items()
        )
        return Expectation(self.doc.locate(at), checks)


def _merge(default: Any, own: Any) -> Any:
    """A scenario's mapping over the defaults' (one level: a variable's value is replaced
    whole), except ``daily.dial_out`` per leg, which merges too."""
    if not isinstance(default, dict) or not isinstance(own, dict):
        return default if own is None else own
    out = default | own
    legs, own_legs = default.get("dial_out"), own.get("dial_out")
    if isinstance(legs, dict) and isinstance(own_legs, dict):
        out["dial_out"] = legs | own_legs
    return out
