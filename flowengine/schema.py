"""Plain flow data -> schema diagnostics; the second step of the pipeline.

The JSON Schema (draft 2020-12) is the published description of the language; editors use the
same file for autocomplete. jsonschema's errors are turned into diagnostics at the key or value
they concern, with messages written for a flow designer rather than for a schema author.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from .errors import Diagnostic, Severity
from .loader import Document, PathKey

SCHEMA_RESOURCE = "flow.schema.json"

_PATTERN_NAMES: dict[str, tuple[str, str | None]] = {
    r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$": (
        "a duration",
        "Write a number with a unit: 5s, 500ms, 1m30s.",
    ),
    r"^[A-Za-z_][A-Za-z0-9_-]*$": (
        "a state name",
        "Use letters, digits, _ and -, not starting with a digit.",
    ),
    r"^[A-Za-z_][A-Za-z0-9_]*$": (
        "a variable name",
        "Use letters, digits and _, not starting with a digit.",
    ),
    r"^[a-z0-9][a-z0-9_-]*$": ("a flow name", "Use lower-case letters, digits, _ and -."),
    r"^[0-9A-D*#]$": ("a DTMF key", "A key is one of 0-9, A-D, * and #."),
    r"^[0-9A-D*#]?$": ("a DTMF key", "A key is one of 0-9, A-D, * and #, or empty for none."),
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$": ("a date", "Write dates as YYYY-MM-DD in quotes."),
}

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "empty",
}


@cache
def flow_schema() -> dict[str, Any]:
    """The flow JSON Schema shipped inside the package."""
    text = resources.files("flowengine").joinpath("schemas", SCHEMA_RESOURCE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(flow_schema())


@cache
def _catalogue_validator() -> jsonschema.Draft202012Validator:
    schema = flow_schema()
    return jsonschema.Draft202012Validator(
        {
            "type": "object",
            "propertyNames": schema["properties"]["prompts"]["propertyNames"],
            "additionalProperties": {"$ref": "#/$defs/prompt"},
            "$defs": schema["$defs"],
        }
    )


def prompt_diagnostics(doc: Document) -> list[Diagnostic]:
    """Schema problems of a prompt catalogue file (id -> prompt)."""
    found: list[Diagnostic] = []
    for error in _catalogue_validator().iter_errors(doc.data):
        found.extend(_convert(doc, error))
    return found


def action_kinds() -> tuple[str, ...]:
    """The action keys a state may hold, in schema order."""
    props = flow_schema()["$defs"]["state"]["properties"]
    return tuple(k for k in props if k not in ("on", "description", "max_visits"))


def schema_diagnostics(doc: Document) -> list[Diagnostic]:
    """Every schema problem of a parsed document, as diagnostics."""
    if doc.data is None and doc.diagnostics:
        return []
    found: list[Diagnostic] = []
    for error in _validator().iter_errors(doc.data):
        found.extend(_convert(doc, error))
    return found


def _where(path: PathKey) -> str:
    if not path:
        return "the flow"
    if len(path) >= 2 and path[0] == "states":
        rest = ".".join(str(p) for p in path[2:])
        return f"state {path[1]!r}" + (f" at {rest!r}" if rest else "")
    return repr(".".join(str(p) for p in path))


def _type_of(value: Any) -> str:
    for name, kind in (
        ("boolean", bool),
        ("integer", int),
        ("number", float),
        ("string", str),
        ("array", list),
        ("object", dict),
    ):
        if isinstance(value, kind):
            return _TYPE_NAMES[name]
    return _TYPE_NAMES["null"]


def _diag(
    doc: Document,
    code: str,
    path: PathKey,
    message: str,
    hint: str | None = None,
    *,
    key: bool = False,
) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, doc.locate(path, key=key), hint)


def _convert(doc: Document, error: ValidationError) -> Iterator[Diagnostic]:
    path: PathKey = tuple(error.absolute_path)
    kind = error.validator
    instance: Any = error.instance
    wanted_value: Any = error.validator_value
    schema = error.schema if isinstance(error.schema, dict) else {}
    if kind in ("additionalProperties", "unevaluatedProperties"):
        allowed = sorted(schema.get("properties", {}))
        for extra in sorted(set(instance) - set(allowed)):
            close = difflib.get_close_matches(extra, allowed, n=1)
            hint = (
                f"Did you mean {close[0]!r}?"
                if close
                else (f"Allowed keys: {', '.join(allowed)}." if allowed else None)
            )
            yield _diag(
                doc,
                "unknown-key",
                (*path, extra),
                f"unknown key {extra!r} in {_where(path)}",
                hint,
                key=True,
            )
    elif kind == "required":
        missing = [k for k in wanted_value if k not in instance]
        for name in missing:
            yield _diag(
                doc, "missing-key", path, f"{_where(path)} needs the key {name!r}", key=True
            )
    elif kind == "oneOf" and len(path) == 2 and path[0] == "states":
        yield _state_kind(doc, path, instance)
    elif kind == "oneOf" and all(set(s) == {"required"} for s in wanted_value):
        choices = [s["required"][0] for s in wanted_value]
        given = [c for c in choices if isinstance(instance, dict) and c in instance]
        said = f"has {', '.join(given)}" if given else "has none of them"
        yield _diag(
            doc,
            "invalid-value",
            path,
            f"{_where(path)} needs exactly one of {', '.join(choices)}, but {said}",
            key=True,
        )
    elif kind in ("anyOf", "oneOf") and error.context:
        best = best_match(_branch_errors(error))
        yield from _convert(doc, best)
    elif kind == "type":
        expected = wanted_value
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        yield _diag(
            doc,
            "wrong-type",
            path,
            f"{_where(path)} must be {wanted}, not {_type_of(instance)}",
        )
    elif kind == "pattern":
        name, hint = _PATTERN_NAMES.get(wanted_value, ("valid", None))
        yield _diag(
            doc, "invalid-value", path, f"{instance!r} in {_where(path)} is not {name}", hint
        )
    elif kind == "propertyNames":
        yield from _property_name(doc, path, error)
    elif kind == "enum":
        options = [str(v) for v in wanted_value]
        close = difflib.get_close_matches(str(instance), options, n=1)
        hint = f"Did you mean {close[0]!r}?" if close else f"Use one of: {', '.join(options)}."
        yield _diag(
            doc,
            "invalid-value",
            path,
            f"{instance!r} in {_where(path)} is not one of the allowed values",
            hint,
        )
    else:
        yield _diag(doc, "invalid-value", path, f"{_where(path)}: {error.message}")


def _branch_errors(error: ValidationError) -> list[ValidationError]:
    """Sub-errors of an anyOf/oneOf from the branches whose type fits the value."""
    by_branch: dict[Any, list[ValidationError]] = {}
    for sub in error.context or []:
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [
        errs
        for errs in by_branch.values()
        if not any(e.validator == "type" and not e.relative_path for e in errs)
    ]
    chosen = fitting or list(by_branch.values())
    return [e for errs in chosen for e in errs] or [error]


def _property_name(doc: Document, path: PathKey, error: ValidationError) -> Iterator[Diagnostic]:
    sub = best_match(error.context or [error])
    bad: Any = sub.instance
    if sub.validator == "pattern":
        name, hint = _PATTERN_NAMES.get(str(sub.validator_value), ("valid", None))
        if path and path[-1] == "on":
            name, hint = (
                "an outcome or event name",
                "Use lower-case names like no_input or dialout.answered.",
            )
        yield _diag(
            doc,
            "invalid-value",
            (*path, bad),
            f"key {bad!r} in {_where(path)} is not {name}",
            hint,
            key=True,
        )
    else:
        yield _diag(
            doc,
            "invalid-value",
            (*path, bad),
            f"key {bad!r} in {_where(path)}: {sub.message}",
            key=True,
        )


def _state_kind(doc: Document, path: PathKey, state: Any) -> Diagnostic:
    kinds = action_kinds()
    present = [k for k in state if k in kinds] if isinstance(state, dict) else []
    name = path[1]
    if len(present) > 1:
        return _diag(
            doc,
            "state-kind",
            (*path, present[1]),
            f"state {name!r} has {len(present)} actions ({', '.join(present)}); "
            "a state does exactly one thing",
            "Split it into states chained with `on`.",
            key=True,
        )
    return _diag(
        doc,
        "state-kind",
        path,
        f"state {name!r} has no action",
        f"Give it one of: {', '.join(kinds)}.",
        key=True,
    )
