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
    r"^[a-z][a-z_]*([.-][a-z_]+)?$": (
        "an outcome or event name",
        "Use lower-case names like no_input or dialout.answered.",
    ),
    r"^[A-Za-z_][A-Za-z0-9_.-]*$": (
        "a prompt id",
        "Use letters, digits, _, . and -, not starting with a digit.",
    ),
    r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$": ("a locale", "Write locales like en-US or fr-FR."),
    r"^(mon|tue|wed|thu|fri|sat|sun)(-(mon|tue|wed|thu|fri|sat|sun))?$": (
        "a day or a range of days",
        "Use mon, tue, wed, thu, fri, sat, sun, or a range like mon-fri.",
    ),
    r"^[0-9A-D*#,w]{1,20}$": (
        "an extension",
        "Use up to 20 of 0-9, A-D, * and #; w waits half a second, a comma pauses.",
    ),
    r"^[a-z][a-z_]*$": ("an outcome name", "Use lower-case letters and _, like done."),
}

TYPE_NAMES = {  # JSON Schema types as a flow designer reads them
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "empty",
}


def packaged_schema(resource: str) -> dict[str, Any]:
    """A JSON Schema shipped inside the package (``flowengine/schemas/<resource>``)."""
    text = resources.files("flowengine").joinpath("schemas", resource).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def flow_schema() -> dict[str, Any]:
    """The flow JSON Schema shipped inside the package."""
    return packaged_schema(SCHEMA_RESOURCE)


_ONE_OF = jsonschema.Draft202012Validator.VALIDATORS["oneOf"]


def _one_of(
    validator: jsonschema.protocols.Validator, one_of: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    """``oneOf``, with a fast path for branches that only list required keys.

    Every state is a ``oneOf`` of 19 such branches (one per action). jsonschema validates each
    branch and then re-checks the rest, which took over half of the schema's time on a large
    flow; when exactly one branch's keys are all there the answer is the same without that
    work. Anything else (no branch, two, or a value that is not a mapping) takes the general
    path, so the errors reported are unchanged.
    """
    if isinstance(instance, dict) and all(
        isinstance(branch, dict) and len(branch) == 1 and "required" in branch for branch in one_of
    ):
        present = sum(1 for branch in one_of if all(k in instance for k in branch["required"]))
        if present == 1:
            return
    yield from _ONE_OF(validator, one_of, instance, schema)


_FlowValidator: Any = jsonschema.validators.extend(  # type: ignore[no-untyped-call]
    jsonschema.Draft202012Validator, {"oneOf": _one_of}
)


_ANNOTATIONS = frozenset({"description", "default", "examples", "title", "$comment"})


def _inline_refs(node: Any, defs: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """The schema with each ``{"$ref": "#/$defs/x"}`` replaced by a copy of ``x``.

    Resolving a reference costs jsonschema more than checking what it points at (a large
    flow makes thousands of them); the published file keeps its references for editors.
    A reference with sibling keywords other than annotations, or one that recurses, stays.
    """
    if isinstance(node, list):
        return [_inline_refs(item, defs, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref[len("#/$defs/") :]
        if name in defs and name not in seen and set(node) - {"$ref"} <= _ANNOTATIONS:
            return _inline_refs(defs[name], defs, (*seen, name))
    return {
        key: value if key == "$defs" else _inline_refs(value, defs, seen)
        for key, value in node.items()
    }


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = flow_schema()
    validator: jsonschema.protocols.Validator = _FlowValidator(
        _inline_refs(schema, schema.get("$defs", {}))
    )
    return validator


@cache
def _catalogue_validator() -> jsonschema.protocols.Validator:
    schema = flow_schema()
    validator: jsonschema.protocols.Validator = _FlowValidator(
        {
            "type": "object",
            "propertyNames": schema["properties"]["prompts"]["propertyNames"],
            "additionalProperties": {"$ref": "#/$defs/prompt"},
            "$defs": schema["$defs"],
        }
    )
    return validator


def prompt_diagnostics(doc: Document) -> list[Diagnostic]:
    """Schema problems of a prompt catalogue file (id -> prompt)."""
    found: list[Diagnostic] = []
    for error in _catalogue_validator().iter_errors(doc.data):
        found.extend(_convert(doc, error, "the catalogue"))
    return list(dict.fromkeys(found))


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
    # jsonschema raises one `required` error per missing key, each listing all of them.
    return list(dict.fromkeys(found))


def _where(path: PathKey, root: str = "the flow") -> str:
    if not path:
        return root
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
            return TYPE_NAMES[name]
    return TYPE_NAMES["null"]


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


def _convert(doc: Document, error: ValidationError, root: str = "the flow") -> Iterator[Diagnostic]:
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
                f"unknown key {extra!r} in {_where(path, root)}",
                hint,
                key=True,
            )
    elif kind == "required":
        missing = [k for k in wanted_value if k not in instance]
        for name in missing:
            yield _diag(
                doc, "missing-key", path, f"{_where(path, root)} needs the key {name!r}", key=True
            )
    elif len(error.schema_path) >= 2 and list(error.schema_path)[-2] == "propertyNames":
        yield from _property_name(doc, path, error, root)
    elif kind == "oneOf" and len(path) == 2 and path[0] == "states":
        if isinstance(instance, dict):  # otherwise the wrong type is reported on its own
            yield _state_kind(doc, path, instance)
    elif kind == "oneOf" and all(set(s) == {"required"} for s in wanted_value):
        choices = [s["required"][0] for s in wanted_value]
        given = [c for c in choices if isinstance(instance, dict) and c in instance]
        said = f"has {', '.join(given)}" if given else "has none of them"
        yield _diag(
            doc,
            "invalid-value",
            path,
            f"{_where(path, root)} needs exactly one of {', '.join(choices)}, but {said}",
            key=True,
        )
    elif kind in ("anyOf", "oneOf") and error.context:
        wanted_types = _branch_types(error)
        if wanted_types:
            yield _diag(
                doc,
                "wrong-type",
                path,
                f"{_where(path, root)} must be {' or '.join(wanted_types)}, "
                f"not {_type_of(instance)}",
            )
        else:
            yield from _convert(doc, best_match(_branch_errors(error)), root)
    elif kind == "type":
        expected = wanted_value
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(TYPE_NAMES.get(n, n) for n in names)
        named, hint = _PATTERN_NAMES.get(str(schema.get("pattern")), (None, None))
        yield _diag(
            doc,
            "wrong-type",
            path,
            f"{_where(path, root)} must be {named or wanted}, not {_type_of(instance)}",
            hint,
        )
    elif kind in ("minProperties", "minItems"):
        noun = "entry" if kind == "minProperties" else "item"
        many = "entries" if kind == "minProperties" else "items"
        count = f"one {noun}" if wanted_value == 1 else f"{wanted_value} {many}"
        yield _diag(doc, "invalid-value", path, f"{_where(path, root)} needs at least {count}")
    elif kind in ("minimum", "maximum"):
        bound = "at least" if kind == "minimum" else "at most"
        yield _diag(
            doc,
            "invalid-value",
            path,
            f"{_where(path, root)} must be {bound} {wanted_value}, not {instance!r}",
        )
    elif kind == "maxLength":
        yield _diag(
            doc,
            "invalid-value",
            path,
            f"{_where(path, root)} is longer than {wanted_value} characters",
        )
    elif kind == "pattern":
        name, hint = _PATTERN_NAMES.get(wanted_value, ("valid", None))
        yield _diag(
            doc, "invalid-value", path, f"{instance!r} in {_where(path, root)} is not {name}", hint
        )
    elif kind == "propertyNames":
        yield from _property_name(doc, path, error, root)
    elif kind == "enum":
        options = [str(v) for v in wanted_value]
        same = [o for o in options if o.casefold() == str(instance).casefold()]
        close = same or difflib.get_close_matches(str(instance), options, n=1)
        hint = f"Did you mean {close[0]!r}?" if close else f"Use one of: {', '.join(options)}."
        yield _diag(
            doc,
            "invalid-value",
            path,
            f"{instance!r} in {_where(path, root)} is not one of the allowed values",
            hint,
        )
    else:
        yield _diag(doc, "invalid-value", path, f"{_where(path, root)}: {error.message}")


def _branch_types(error: ValidationError) -> list[str]:
    """When no branch of an anyOf/oneOf takes the value's type: every type they take."""
    by_branch: dict[Any, list[ValidationError]] = {}
    for sub in error.context or []:
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    names: list[str] = []
    for errs in by_branch.values():
        types = [e for e in errs if e.validator == "type" and not e.relative_path]
        if not types:
            return []
        expected: Any = types[0].validator_value
        for name in [expected] if isinstance(expected, str) else expected:
            sub_schema = types[0].schema if isinstance(types[0].schema, dict) else {}
            named = _PATTERN_NAMES.get(str(sub_schema.get("pattern")), (None, None))[0]
            text = named or TYPE_NAMES.get(name, name)
            if text not in names:
                names.append(text)
    return names


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


def _property_name(
    doc: Document, path: PathKey, error: ValidationError, root: str
) -> Iterator[Diagnostic]:
    """A key of a mapping does not match the mapping's ``propertyNames``."""
    sub = best_match(error.context) if error.context else error
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
            f"key {bad!r} in {_where(path, root)} is not {name}",
            hint,
            key=True,
        )
    else:
        yield _diag(
            doc,
            "invalid-value",
            (*path, bad),
            f"key {bad!r} in {_where(path, root)}: {sub.message}",
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
