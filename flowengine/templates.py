"""Templates and conditions: checked before a call ever runs, bounded while it runs.

A template is text with ``{{ expression }}`` parts; a value that is exactly one ``{{ ... }}``
keeps its type (``{{ vars.tries + 1 }}`` stays a number). A condition is a bare expression.
Nothing in a flow can run code, in two layers:

* ``inspect`` reads the parsed template and refuses what a flow never needs: private names
  (``_x``, ``__class__``), ``import``/``include``/``extends`` and every other statement but
  ``if`` and a single level of ``for``, calls other than ``range()`` and allowed methods,
  filters outside the allow-list, jinja's own globals, and constant bombs (``'a' * 10**9``).
  The checks report these before a flow is accepted, and ``render`` refuses them again.
* ``render`` and ``evaluate`` run in ``sandbox.Sandbox``, which refuses the same things at run
  time and bounds memory and work for what depends on a call's data.

Every failure while rendering is a ``TemplateError`` with a reason a designer can read.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.parser import Parser
from jinja2.runtime import LoopContext

from . import sandbox as sb
from .errors import TemplateError

NAMESPACES = ("vars", "call", "flow")
"""Top-level names every template may use."""

CALL_FIELDS = ("id", "from", "to", "direction", "sip_headers", "room", "session_id", "started_at")
"""What ``call.*`` offers."""

FLOW_FIELDS = ("name", "version")
"""What ``flow.*`` offers."""

RESPONSE_FIELDS = ("status", "json", "text", "headers")
"""What ``response.*`` offers, in an http state's ``save`` only."""

DENIED_NAMES = frozenset(
    {"self", "caller", "varargs", "kwargs", "lipsum", "cycler", "joiner", "namespace", "dict"}
    | {"config", "request", "session", "url_for", "get_flashed_messages"}
)
"""Names that are jinja internals or well-known ways out of other template sandboxes."""

_SCOPES = frozenset({*NAMESPACES, "response"})
_ENV = sb.Sandbox()
_SINGLE = re.compile(r"^\s*\{\{[-+]?(?P<expr>.*?)[-+]?\}\}\s*$", re.DOTALL)
_STATEMENTS = {
    nodes.Extends: "{% extends %} (a template cannot load another)",
    nodes.Include: "{% include %} (a template cannot load another)",
    nodes.Import: "{% import %} (a template cannot load another)",
    nodes.FromImport: "{% from ... import %} (a template cannot load another)",
    nodes.Macro: "{% macro %} (a template cannot define functions)",
    nodes.CallBlock: "{% call %} (a template cannot define functions)",
    nodes.Block: "{% block %} (a template cannot define blocks)",
    nodes.Assign: "{% set %} (assign variables with a set state)",
    nodes.AssignBlock: "{% set %} (assign variables with a set state)",
    nodes.With: "{% with %} (assign variables with a set state)",
    nodes.FilterBlock: "{% filter %} (use a filter in an expression)",
    nodes.Scope: "{% autoescape %} (flows do not escape text)",
}


@dataclass(frozen=True, slots=True)
class Inspection:
    """What a template or condition refers to, or why it is refused."""

    refs: frozenset[tuple[str, str | None]] = frozenset()
    """(namespace, name) pairs: ``vars.pin`` -> ("vars", "pin"); a bare name -> (name, None)."""
    syntax_error: str | None = None
    unsafe: tuple[str, ...] = field(default=())
    """Why the text is refused, one phrase per reason (e.g. "the attribute '__class__' ...")."""
    guarded: frozenset[tuple[str, str | None]] = frozenset()
    """Refs that are also tested with ``is defined`` or given a ``default``: the text copes
    with them being unset."""

    @property
    def ok(self) -> bool:
        """True when the text parsed and uses nothing unsafe."""
        return self.syntax_error is None and not self.unsafe


def is_template(value: Any) -> bool:
    """True if a string holds template syntax."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


@lru_cache(maxsize=4096)
def inspect(source: str, *, expression: bool = False) -> Inspection:
    """Parse a template (or with ``expression=True`` a condition) and list what it uses.

    Never raises: a text that does not parse comes back with ``syntax_error`` set.
    """
    try:
        tree = _parse(source, expression=expression)
    except jinja2.TemplateSyntaxError as exc:
        return Inspection(syntax_error=exc.message or "invalid syntax")
    except RecursionError:
        return Inspection(syntax_error="it is nested too deeply")
    walker = _Walker()
    walker.walk(tree)
    return Inspection(
        refs=frozenset(walker.refs),
        guarded=frozenset(walker.guarded),
        syntax_error=walker.unknown[0] if walker.unknown else None,
        unsafe=tuple(dict.fromkeys(walker.unsafe)),
    )


def _parse(source: str, *, expression: bool) -> nodes.Template:
    if not expression:
        return _ENV.parse(source)
    # The same parse compile_expression does: one expression and nothing after it.
    parser = Parser(_ENV, source, state="variable")
    expr = parser.parse_expression()
    if not parser.stream.eos:
        token = parser.stream.current
        raise jinja2.TemplateSyntaxError(
            f"unexpected {token.value or token.type!r} after the expression", token.lineno
        )
    return nodes.Template([nodes.Output([expr], lineno=1)], lineno=1)


class _Walker:
    """One pass over the tree: free names, namespace references, refusals."""

    def __init__(self) -> None:
        self.refs: set[tuple[str, str | None]] = set()
        self.guarded: set[tuple[str, str | None]] = set()
        self.unsafe: list[str] = []
        self.unknown: list[str] = []

    def walk(self, tree: nodes.Node) -> None:
        # Iterative: a long template must not exhaust the Python stack here.
        todo: list[tuple[nodes.Node, frozenset[str], bool]] = [(tree, frozenset(), False)]
        while todo:
            node, bound, in_loop = todo.pop()
            if isinstance(node, nodes.For):
                if in_loop:
                    self.unsafe.append("a loop inside a loop (the work would multiply)")
                if node.recursive:
                    self.unsafe.append("a recursive loop")
                targets = [node.target, *node.target.find_all(nodes.Name)]
                inner = bound | {n.name for n in targets if isinstance(n, nodes.Name)}
                todo.append((node.iter, bound, in_loop))
                todo.extend((n, inner | {"loop"}, True) for n in node.body)
                if node.test is not None:
                    todo.append((node.test, inner, True))
                todo.extend((n, bound, in_loop) for n in node.else_)
                continue
            if isinstance(node, nodes.Stmt) and not isinstance(node, (nodes.Output, nodes.If)):
                self.unsafe.append(_STATEMENTS.get(type(node), "a statement but if and for"))
                continue
            self.visit(node, bound)
            # Reversed, so that children are taken left to right: refusals in source order.
            children = list(node.iter_child_nodes())[::-1]
            todo.extend((child, bound, in_loop) for child in children)

    def visit(self, node: nodes.Node, bound: frozenset[str]) -> None:
        if isinstance(node, nodes.Name) and node.ctx == "load" and node.name not in bound:
            if node.name.startswith("_"):
                self.unsafe.append(f"the name {node.name!r} (names starting with _ are private)")
            elif node.name in DENIED_NAMES:
                self.unsafe.append(f"the name {node.name!r} (not available to flows)")
            elif node.name not in (*NAMESPACES, *_ENV.globals):
                self.refs.add((node.name, None))
        elif isinstance(node, (nodes.Getattr, nodes.Getitem)):
            key = node.attr if isinstance(node, nodes.Getattr) else _const_str(node.arg)
            if key is not None and key.startswith("_"):
                what = "attribute" if isinstance(node, nodes.Getattr) else "key"
                self.unsafe.append(f"the {what} {key!r} (names starting with _ are private)")
            base = node.node
            name = base.name if isinstance(base, nodes.Name) else None
            if key is not None and name in _SCOPES and name not in bound:
                self.refs.add((name, key))
        elif isinstance(node, nodes.Call):
            self.call(node)
        elif isinstance(node, nodes.Filter):
            self.filter(node)
            if node.name in ("default", "d"):
                self.guard(node.node, bound)
        elif isinstance(node, nodes.Test):
            if node.name not in _ENV.tests:
                self.unknown.append(f"no test named {node.name!r}{_close(node.name, _ENV.tests)}")
            elif node.name in ("defined", "undefined"):
                self.guard(node.node, bound)
        elif isinstance(node, (nodes.Mul, nodes.Pow)):
            _Static(self.unsafe).value(node)

    def guard(self, node: nodes.Node | None, bound: frozenset[str]) -> None:
        if isinstance(node, (nodes.Getattr, nodes.Getitem)) and isinstance(node.node, nodes.Name):
            key = node.attr if isinstance(node, nodes.Getattr) else _const_str(node.arg)
            if node.node.name in _SCOPES and node.node.name not in bound and key is not None:
                self.guarded.add((node.node.name, key))

    def call(self, node: nodes.Call) -> None:
        callee = node.node
        if isinstance(callee, nodes.Name) and callee.name == "range":
            numbers = [_Static(self.unsafe).value(arg) for arg in node.args]
            if numbers and all(type(n) is int for n in numbers) and not node.kwargs:
                try:
                    too_many = len(range(*numbers)) > sb.MAX_RANGE
                except (TypeError, ValueError):
                    too_many = False
                if too_many:
                    self.unsafe.append(f"range() of more than {sb.MAX_RANGE} numbers")
        elif isinstance(callee, nodes.Getattr) and callee.attr in sb.METHODS:
            if callee.attr in ("center", "ljust", "rjust", "zfill") and node.args:
                width = _Static(self.unsafe).value(node.args[0])
                if type(width) is int and width > sb.MAX_LENGTH:
                    self.unsafe.append(f"padding to more than {sb.MAX_LENGTH} characters")
        elif isinstance(callee, nodes.Getattr):
            self.unsafe.append(f"the method {callee.attr!r} (not on the list of allowed methods)")
        elif isinstance(callee, nodes.Name) and not callee.name.startswith("_"):
            if callee.name not in DENIED_NAMES:
                self.unsafe.append(f"calling {callee.name!r} (only range() and methods)")
        else:
            self.unsafe.append("calling a computed value (only range() and methods)")

    def filter(self, node: nodes.Filter) -> None:
        name = node.name
        if name in sb.REFUSED_FILTERS:
            self.unsafe.append(f"the filter {name!r} (not on the list of allowed filters)")
        elif name not in sb.FILTERS:
            self.unknown.append(f"no filter named {name!r}{_close(name, sb.FILTERS)}")
        attributes = [_const_str(k.value) for k in node.kwargs if k.key == "attribute"]
        if name in ("groupby", "selectattr", "rejectattr") and node.args:
            attributes.append(_const_str(node.args[0]))
        for attribute in attributes:
            if attribute and any(p.startswith("_") for p in attribute.split(".")):
                self.unsafe.append(f"the attribute {attribute!r} (names starting with _)")
        position = {"map": 0, "select": 0, "reject": 0, "selectattr": 1, "rejectattr": 1}
        if name in position and len(node.args) > position[name] and not attributes:
            named = _const_str(node.args[position[name]])
            allowed = sb.FILTERS if name == "map" else _ENV.tests
            if named is not None and named not in allowed:
                kind = "filter" if name == "map" else "test"
                self.unsafe.append(f"the {kind} {named!r} (not on the list of allowed {kind}s)")


class _Static:
    """Constant arithmetic, to refuse ``'a' * 10**9`` before it is ever compiled."""

    def __init__(self, unsafe: list[str]) -> None:
        self.unsafe = unsafe

    def value(self, node: nodes.Node) -> Any:
        if isinstance(node, nodes.Const) and isinstance(node.value, (int, str)):
            return node.value
        if isinstance(node, (nodes.List, nodes.Tuple)):
            return [self.value(item) for item in node.items]  # only its length matters
        if isinstance(node, nodes.Neg):
            inner = self.value(node.node)
            return -inner if type(inner) is int else None
        if not isinstance(node, (nodes.Add, nodes.Sub, nodes.Mul, nodes.Pow)):
            return None
        left, right = self.value(node.left), self.value(node.right)
        if left is None or right is None:
            return None
        try:
            return sb.limit(self.checked(node, left, right))
        except sb.LimitError as exc:
            self.unsafe.append(f"a constant too large to make ({exc})")
        except (TypeError, ValueError, ArithmeticError):
            pass
        return None

    def checked(self, node: nodes.Node, left: Any, right: Any) -> Any:
        if isinstance(node, nodes.Mul):
            sb.check_repeat(left, right)
            return left * right
        if isinstance(node, nodes.Pow):
            sb.check_power(left, right)
            return left**right
        return left + right if isinstance(node, nodes.Add) else left - right


def _const_str(node: nodes.Node) -> str | None:
    return node.value if isinstance(node, nodes.Const) and isinstance(node.value, str) else None


def _close(word: str, options: Iterable[str]) -> str:
    found = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f" (did you mean {found[0]!r}?)" if found else ""


@lru_cache(maxsize=4096)
def _compiled(source: str, expression: bool) -> tuple[Any, bool]:
    """The compiled form and whether it returns a native value; refusals raise."""
    found = inspect(source, expression=expression)
    if found.syntax_error is not None:
        raise TemplateError(source, f"it does not parse: {found.syntax_error}")
    if found.unsafe:
        raise TemplateError(source, f"refused: it uses {'; '.join(found.unsafe)}")
    single = None if expression else _SINGLE.match(source)
    try:
        if expression:
            return _ENV.compile_expression(source, undefined_to_none=False), True
        if single and "{{" not in single["expr"] and "}}" not in single["expr"]:
            return _ENV.compile_expression(single["expr"], undefined_to_none=False), True
        return _ENV.from_string(source), False
    except (jinja2.TemplateError, RecursionError) as exc:
        raise TemplateError(source, _reason(exc)) from exc


def render(value: Any, context: Mapping[str, Any]) -> Any:
    """Render a value: strings as templates, lists and mappings element by element.

    Raises:
        TemplateError: the template failed (an undefined name, a refused attribute...).
    """
    if isinstance(value, str):
        if not is_template(value):
            return value
        compiled, native = _compiled(value, False)
        try:
            with sb.budget():
                if native:
                    return _plain(compiled(**context))
                return _text(compiled, context)
        # Anything a template does wrong (a filter's TypeError, a LimitError) is the
        # template's failure, reported as one exception type with the reason.
        except Exception as exc:
            raise TemplateError(value, _reason(exc)) from exc
    if isinstance(value, (list, tuple)):
        return [render(v, context) for v in value]
    if isinstance(value, Mapping):
        return {k: render(v, context) for k, v in value.items()}
    return value


def evaluate(condition: str, context: Mapping[str, Any]) -> bool:
    """Evaluate a condition to true or false.

    Raises:
        TemplateError: the condition failed.
    """
    compiled, _ = _compiled(condition, True)
    try:
        with sb.budget():
            result = compiled(**context)
            if isinstance(result, jinja2.Undefined):
                str(result)  # raises the undefined error with its message
            return bool(result)
    except Exception as exc:  # as in render: every failure is the condition's
        raise TemplateError(condition, _reason(exc)) from exc


def _text(template: jinja2.Template, context: Mapping[str, Any]) -> str:
    pieces: list[str] = []
    total = 0
    for piece in template.generate(**context):
        total += len(piece)
        sb.at_most(total, "the text")
        pieces.append(piece)
    return "".join(pieces)


def _plain(value: Any, depth: int = 0) -> Any:
    """A lone expression's value as data a flow can hold: no functions, no lazy sequences."""
    if value is None or isinstance(value, (bool, int, float, bytes)):
        return value
    if isinstance(value, str):
        return str(value)  # a Markup from |escape becomes plain text
    if isinstance(value, jinja2.Undefined):
        str(value)  # raises the undefined error with its message
    if depth > 64:
        raise sb.LimitError("the value is nested too deeply")
    if callable(value) or isinstance(value, LoopContext):
        raise SecurityError("the value is a function, not data (a method call needs its ())")
    if isinstance(value, Mapping):
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, Iterable):
        items = list(itertools.islice(value, sb.MAX_LENGTH + 1))
        sb.limit(items)
        return [_plain(v, depth + 1) for v in items]
    return value


def _reason(exc: BaseException) -> str:
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"it does not parse: {exc.message}"
    if isinstance(exc, SecurityError):
        return f"refused: {exc}"
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    if isinstance(exc, KeyError) and exc.args:
        return f"there is no key {exc.args[0]!r}"
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text.replace("'dict object'", "the mapping")
