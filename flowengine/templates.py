"""Templates and conditions: jinja2's immutable sandbox, checked before a call ever runs.

A template is text with ``{{ expression }}`` parts; a value that is exactly one
``{{ expression }}`` keeps the expression's type (so ``{{ vars.tries + 1 }}`` stays a number).
A condition is a bare expression. Nothing in a flow can run code: the sandbox refuses unsafe
attributes at run time, and ``inspect`` refuses any ``_``-prefixed name, ``import``,
``include`` and ``extends`` before the flow is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import TemplateError

NAMESPACES = ("vars", "call", "flow")
"""Top-level names every template may use."""

CALL_FIELDS = ("id", "from", "to", "direction", "sip_headers", "room", "session_id", "started_at")
"""What ``call.*`` offers."""

FLOW_FIELDS = ("name", "version")

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)
_ENV = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


@dataclass(frozen=True, slots=True)
class Inspection:
    """What a template or condition refers to, or why it is refused."""

    refs: frozenset[tuple[str, str | None]] = frozenset()
    """(namespace, name) pairs: ``vars.pin`` -> ("vars", "pin"); a bare name -> (name, None)."""
    syntax_error: str | None = None
    unsafe: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when the text parsed and uses nothing unsafe."""
        return self.syntax_error is None and not self.unsafe


def is_template(value: Any) -> bool:
    """True if a string holds template syntax."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


@lru_cache(maxsize=4096)
def inspect(source: str, *, expression: bool = False) -> Inspection:
    """Parse a template (or with ``expression=True`` a condition) and list what it uses."""
    text = "{{ (" + source + ") }}" if expression else source
    try:
        tree = _ENV.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        return Inspection(syntax_error=exc.message or "invalid syntax")
    unsafe = tuple(sorted(set(_unsafe(tree))))
    refs: set[tuple[str, str | None]] = set()
    for name in _free_names(tree):
        if name not in NAMESPACES:
            refs.add((name, None))
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        assert isinstance(node, (nodes.Getattr, nodes.Getitem))
        base = node.node
        if isinstance(base, nodes.Name) and base.name in (*NAMESPACES, "response"):
            attr = node.attr if isinstance(node, nodes.Getattr) else _const(node.arg)
            if attr is not None:
                refs.add((base.name, attr))
    return Inspection(refs=frozenset(refs), unsafe=unsafe)


def _free_names(tree: nodes.Template) -> set[str]:
    from jinja2 import meta  # imported here: only inspection needs it

    return set(meta.find_undeclared_variables(tree))


def _const(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None


def _unsafe(tree: nodes.Template) -> Iterator[str]:
    for node in tree.find_all(
        (
            nodes.Getattr,
            nodes.Getitem,
            nodes.Name,
            nodes.Import,
            nodes.FromImport,
            nodes.Include,
            nodes.Extends,
        )
    ):
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            yield f"the attribute {node.attr!r}"
        elif isinstance(node, nodes.Getitem) and (_const(node.arg) or "x").startswith("_"):
            yield f"the key {_const(node.arg)!r}"
        elif isinstance(node, nodes.Name) and node.name.startswith("_"):
            yield f"the name {node.name!r}"
        elif isinstance(node, (nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)):
            yield f"{type(node).__name__.lower()} statements"


@lru_cache(maxsize=4096)
def _compiled(source: str) -> tuple[Any, bool]:
    single = _SINGLE.match(source)
    if single and "{{" not in single.group("expr") and "}}" not in single.group("expr"):
        return _ENV.compile_expression(single.group("expr").strip(), undefined_to_none=False), True
    return _ENV.from_string(source), False


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render a value: strings as templates, lists and mappings element by element.

    Raises:
        TemplateError: the template failed (an undefined name, a refused attribute...).
    """
    if isinstance(value, str):
        if not is_template(value):
            return value
        try:
            compiled, native = _compiled(value)
            result = compiled(**context) if native else compiled.render(**context)
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise TemplateError(value, _reason(exc)) from exc
        if isinstance(result, jinja2.Undefined):
            raise TemplateError(value, "it is undefined")
        return result
    if isinstance(value, list):
        return [render(v, context) for v in value]
    if isinstance(value, dict):
        return {k: render(v, context) for k, v in value.items()}
    return value


def evaluate(condition: str, context: Mapping[str, Any]) -> bool:
    """Evaluate a condition to true or false.

    Raises:
        TemplateError: the condition failed.
    """
    try:
        compiled = _expression(condition)
        result = compiled(**context)
        if isinstance(result, jinja2.Undefined):
            raise TemplateError(condition, "it is undefined")
        return bool(result)
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise TemplateError(condition, _reason(exc)) from exc


@lru_cache(maxsize=4096)
def _expression(condition: str) -> Any:
    return _ENV.compile_expression(condition, undefined_to_none=False)


def _reason(exc: Exception) -> str:
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return f"refused by the sandbox ({exc})"
    text = getattr(exc, "message", None) or str(exc)
    return text.replace("'dict object'", "the mapping")
