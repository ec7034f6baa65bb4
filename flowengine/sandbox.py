"""The environment templates run in: jinja2's immutable sandbox, narrowed and bounded.

jinja2's sandbox stops templates from reaching private attributes or mutating data, but it
still offers globals (``lipsum``, ``cycler``, ``joiner``, ``namespace``), filters (``attr``,
``random``, ``xmlattr``), string formatting and operators that can make a value as large as
memory. Here a template gets only ``range`` (at most ``MAX_RANGE`` numbers), an allow-list of
filters and methods, and every operation that can grow a value is checked *before* it runs:
no single value may exceed ``MAX_LENGTH`` characters or items, and one rendering may make at
most ``MAX_ALLOCATED`` characters and take at most ``MAX_STEPS`` operations. Crossing a bound
raises ``LimitError`` (a ``SecurityError``), which ``templates`` turns into a ``TemplateError``.
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, nodes, pass_environment
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS as JINJA_FILTERS
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

MAX_LENGTH = 100_000
"""Most characters (or items) one value made by a template may have."""
MAX_ALLOCATED = 1_000_000
"""Most characters (or items) all the operations of one rendering may make together."""
MAX_STEPS = 100_000
"""Most operations (lookups, calls, operators, items a filter walks) one rendering may take."""
MAX_RANGE = 1_000
"""Most numbers ``range()`` may give."""
MAX_INT_BITS = 4_096
"""Largest integer (in bits) an operator may make: ``10 ** 10 ** 9`` would take minutes."""
MAX_JSON_INDENT = 8

_STR_METHOD_NAMES = (
    "capitalize casefold center count endswith find index isalnum isalpha isdecimal isdigit "
    "islower isnumeric isspace istitle isupper join ljust lower lstrip partition removeprefix "
    "removesuffix replace rfind rindex rjust rpartition rsplit rstrip split splitlines "
    "startswith strip swapcase title upper zfill"
)
STR_METHODS = frozenset(_STR_METHOD_NAMES.split())
MAP_METHODS = frozenset({"get", "items", "keys", "values"})
SEQ_METHODS = frozenset({"count", "index"})
LOOP_METHODS = frozenset({"cycle", "changed"})
METHODS = STR_METHODS | MAP_METHODS | SEQ_METHODS | LOOP_METHODS
"""Every method a template may call; anything else (``format``, ``encode``...) is refused."""

_FILTER_NAMES = (
    "abs batch capitalize center count d default dictsort e escape first float format groupby "
    "indent int items join last length list lower map max min reject rejectattr replace reverse "
    "round select selectattr slice sort string striptags sum title tojson trim truncate unique "
    "upper urlencode wordcount"
)
FILTERS = frozenset(_FILTER_NAMES.split())
"""Filters a template may use. Left out: ``attr`` (reaches attributes by computed name),
``random`` (a flow must behave the same in tests), ``pprint``, ``urlize``, ``wordwrap``,
``xmlattr``, ``filesizeformat``, ``safe`` and ``forceescape`` (no use in a call flow)."""
REFUSED_FILTERS = frozenset(JINJA_FILTERS) - FILTERS


class LimitError(SecurityError):
    """A template went over one of the bounds of this module."""


@dataclass(slots=True)
class _Budget:
    steps: int = 0
    allocated: int = 0


_BUDGET: ContextVar[_Budget | None] = ContextVar("flowengine_template_budget", default=None)


@contextmanager
def budget() -> Iterator[None]:
    """Give one rendering its own budget of steps and memory."""
    token = _BUDGET.set(_Budget())
    try:
        yield
    finally:
        _BUDGET.reset(token)


def charge(steps: int = 1, made: int = 0) -> None:
    """Count work against the current rendering's budget (none while compiling)."""
    spent = _BUDGET.get()
    if spent is None:
        return
    spent.steps += steps
    spent.allocated += made
    if spent.steps > MAX_STEPS:
        raise LimitError(f"it takes more than {MAX_STEPS} steps")
    if spent.allocated > MAX_ALLOCATED:
        raise LimitError(f"it makes more than {MAX_ALLOCATED} characters in all")


def _size(value: Any) -> int:
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset, range)):
        return len(value)
    return 0


def limit(value: Any) -> Any:
    """Refuse a value made by an operation when it is too large; count what it made."""
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise LimitError(f"a number would have more than {MAX_INT_BITS} bits")
    size = _size(value)
    if size > MAX_LENGTH and not isinstance(value, range):
        raise LimitError(f"a value would be longer than {MAX_LENGTH} characters or items")
    charge(made=0 if isinstance(value, range) else size)
    return value


def at_most(length: int, what: str) -> None:
    """Refuse a value of ``length`` characters or items before it is made."""
    if length > MAX_LENGTH:
        raise LimitError(f"{what} would be longer than {MAX_LENGTH} characters or items")


def safe_range(*args: int) -> range:
    """``range()`` with at most ``MAX_RANGE`` numbers."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise LimitError(f"range() may give at most {MAX_RANGE} numbers")
    return numbers


def join_capped(separator: str, parts: Iterable[Any], *, convert: bool = False) -> str:
    """``separator.join(parts)``, refused as soon as the result would be too long."""
    items: list[str] = []
    total = 0
    for part in parts:
        text = str(part) if convert else part
        if not isinstance(text, str):
            raise TypeError(f"join expects text, not {type(part).__name__}")
        total += len(text) + (len(separator) if items else 0)
        at_most(total, "the joined text")
        items.append(text)
    charge(steps=len(items), made=total)
    return separator.join(items)


_PRINTF = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[#0 +-]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?"
    r"[hlL]?(?P<conversion>[^hlL]|$)"
)


def check_printf(template: str, values: Any = ()) -> None:
    """Refuse ``template % values`` before it runs if widths or values make it too long."""
    named = values if isinstance(values, Mapping) else None
    positional = values if isinstance(values, tuple) else (values,)
    total, index = len(template), 0
    for spec in _PRINTF.finditer(template):
        for number in (spec["width"], spec["precision"]):
            if number == "*":
                raise LimitError("a '*' width in % formatting is not allowed")
            total += int(number or 0)
        if spec["conversion"] == "%":
            continue
        if named is not None:
            value = named.get(spec["key"])
        else:
            value = positional[index] if index < len(positional) else None
            index += 1
        total += len(value) if isinstance(value, str) else 0
    at_most(total, "the formatted text")


def _check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        times = text.count(old) if old else len(text) + 1
        if isinstance(count, int) and count >= 0:
            times = min(times, count)
        at_most(len(text) + times * (len(new) - len(old)), "the replaced text")


def _check_width(width: Any, text: Any = "") -> None:
    if isinstance(width, int):
        at_most(max(width, len(str(text))), "the padded text")


def _check_method(owner: Any, name: str, args: tuple[Any, ...]) -> None:
    if name in ("center", "ljust", "rjust", "zfill") and args:
        _check_width(args[0], owner)
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, *args[:3])


def method_allowed(owner: Any, name: str) -> bool:
    """True if a template may use the method ``name`` of ``owner``."""
    if isinstance(owner, str):
        return name in STR_METHODS
    if isinstance(owner, Mapping):
        return name in MAP_METHODS
    if isinstance(owner, (list, tuple)):
        return name in SEQ_METHODS
    return isinstance(owner, LoopContext) and name in LOOP_METHODS


# Filters whose arguments can make a value grow: checked before jinja's version runs.
def _filter_checks() -> dict[str, Callable[..., None]]:
    def indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> None:
        pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        text = str(s)
        at_most(len(text) + (text.count("\n") + 1) * pad, "the indented text")

    def count_limit(count: Any) -> None:
        if isinstance(count, int) and count > MAX_RANGE:
            raise LimitError(f"batch and slice take at most {MAX_RANGE} as their size")

    def numeric_start(iterable: Any, attribute: Any = None, start: Any = 0) -> None:
        if not isinstance(start, (int, float)):
            raise LimitError("sum() may only start from a number")

    def json_indent(value: Any, indent: Any = None) -> None:
        if isinstance(indent, str) or (isinstance(indent, int) and indent > MAX_JSON_INDENT):
            raise LimitError(f"tojson indents by at most {MAX_JSON_INDENT} spaces")

    return {
        "center": lambda value, width=80: _check_width(width, value),
        "indent": indent,
        "format": lambda value, *args, **kwargs: check_printf(str(value), kwargs or args),
        "replace": lambda s, old, new, count=None: _check_replace(s, old, new, count),
        "batch": lambda value, linecount=1, fill_with=None: count_limit(linecount),
        "slice": lambda value, slices=1, fill_with=None: count_limit(slices),
        "sum": numeric_start,
        "tojson": json_indent,
    }


_CHECKS = _filter_checks()


def _guarded(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    check = _CHECKS.get(name)
    skip = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(fn)  # keeps jinja's pass_context / pass_environment marker
    def run(*args: Any, **kwargs: Any) -> Any:
        charge(1 + (_size(args[skip]) if len(args) > skip else 0))
        if check is not None:
            check(*args[skip:], **kwargs)
        return limit(fn(*args, **kwargs))

    return run


@pass_environment
def _join(env: Any, value: Iterable[Any], d: str = "", attribute: str | int | None = None) -> str:
    """jinja's ``join``, built on ``join_capped`` so a long separator cannot multiply."""
    if attribute is not None:
        value = map(make_attrgetter(env, attribute), value)
    return join_capped(str(d), value, convert=True)


class _Undefined(StrictUndefined):
    """StrictUndefined with messages written for flow designers."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        name, owner = self._undefined_name, self._undefined_obj
        if self._undefined_hint:
            return self._undefined_hint
        if owner is missing:
            return f"{name!r} is undefined (variables are read as vars.{name})"
        if isinstance(owner, Mapping):
            return f"{name!r} is not set"
        return f"a {type(owner).__name__} value has no {name!r}"


class _CodeGenerator(CodeGenerator):
    """Compiles ``a ~ b`` to a join that refuses a too-long result before it is made."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:  # noqa: N802 - jinja's name
        self.write("environment.capped_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _finalize(value: Any) -> Any:
    if isinstance(value, StrictUndefined):
        return value  # writing it out raises the undefined error with its message
    if callable(value) or isinstance(value, LoopContext):
        raise SecurityError("a function cannot be written out (a method call needs its ())")
    return value


class Sandbox(ImmutableSandboxedEnvironment):
    """The one environment every template and condition of every flow is compiled in."""

    intercepted_binops = frozenset({"+", "*", "%", "**"})
    code_generator_class = _CodeGenerator

    def __init__(self) -> None:
        super().__init__(undefined=_Undefined, autoescape=False, finalize=_finalize)
        # Replaces jinja's range, dict, lipsum, cycler, joiner and namespace.
        self.globals = {"range": safe_range}
        filters = {name: JINJA_FILTERS[name] for name in FILTERS}
        filters["join"] = _join
        self.filters = {name: _guarded(name, fn) for name, fn in filters.items()}

    def capped_concat(self, parts: tuple[Any, ...]) -> str:
        """What ``a ~ b ~ c`` compiles to."""
        charge()
        return join_capped("", parts, convert=True)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """Private attributes never; methods only from the allow-list."""
        if not super().is_safe_attribute(obj, attr, value):
            return False
        return not callable(value) or method_allowed(obj, attr)

    def wrap_str_format(self, value: Any) -> None:
        """``str.format`` is refused (``is_safe_attribute``), not sandboxed: widths can bomb."""
        return None

    def getattr(self, obj: Any, attribute: str) -> Any:
        """``vars.items`` is the variable ``items`` when there is one, not the method."""
        charge()
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """``obj[key]``, counted."""
        charge()
        return super().getitem(obj, argument)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """``+``, ``*``, ``%`` and ``**``, refused before they make something too large."""
        charge()
        if operator == "*":
            check_repeat(left, right)
        elif operator == "+" and isinstance(left, (str, list, tuple)):
            at_most(len(left) + _size(right), "the sum")
        elif operator == "%" and isinstance(left, str):
            check_printf(left, right)
        elif operator == "**":
            check_power(left, right)
        return limit(self.binop_table[operator](left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """Calls: ``range`` and allowed methods only."""
        charge()
        # Inside loops and blocks jinja passes its scopes along; no allowed callee needs them.
        kwargs.pop("_loop_vars", None)
        kwargs.pop("_block_vars", None)
        if __obj is safe_range:
            return safe_range(*args, **kwargs)
        owner, name = getattr(__obj, "__self__", None), getattr(__obj, "__name__", "")
        if not isinstance(__obj, (types.BuiltinMethodType, types.MethodType)) or not (
            method_allowed(owner, name)
        ):
            raise SecurityError(f"calling {name or type(__obj).__name__!r} is not allowed")
        if name == "join" and isinstance(owner, str) and len(args) == 1 and not kwargs:
            return join_capped(owner, args[0])
        _check_method(owner, name, args)
        return limit(__obj(*args, **kwargs))


def check_repeat(left: Any, right: Any) -> None:
    """Refuse ``left * right`` when the text, list or integer it makes would be too large."""
    if isinstance(left, int) and not isinstance(left, bool):
        left, right = right, left
    if isinstance(left, (str, list, tuple)) and isinstance(right, int):
        at_most(len(left) * max(right, 0), "the repeated value")
    elif isinstance(left, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
        raise LimitError(f"a number would have more than {MAX_INT_BITS} bits")


def check_power(base: Any, exponent: Any) -> None:
    """Refuse ``base ** exponent`` when the integer it makes would be too large."""
    if not (isinstance(base, int) and isinstance(exponent, int)) or abs(base) <= 1:
        return
    if exponent > 0 and (base.bit_length() - 1) * exponent > MAX_INT_BITS:
        raise LimitError(f"a number would have more than {MAX_INT_BITS} bits")
