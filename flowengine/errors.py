"""Problems, in two channels.

*Diagnostics* are problems with a flow, for its author: collected, never raised one at a
time, each with a stable code, a ``file:line:col`` location, a message and a hint.

*Exceptions* are problems with code or the environment, all under one root::

    * FlowEngineError
      x FlowLoadError         - a file cannot be read at all (missing, a directory, no access)
      x FlowValidationError   - .diagnostics: the errors that stop a flow from being used
      x TemplateError         - a template failed while it was rendered for a call
      x UsageError            - a command-line argument is wrong (exit code 2)

Every third-party exception is caught in the one module that imports that library and
re-raised as one of these (``raise ... from exc``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar


class Severity(StrEnum):
    """How bad a diagnostic is: errors fail validation, warnings only with ``--strict``."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A place in a flow file; ``line`` and ``column`` count from 1."""

    file: str
    line: int = 1
    column: int = 1
    path: tuple[str | int, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem with a flow, for its author."""

    code: str
    severity: Severity
    message: str
    location: Location
    hint: str | None = None

    def sort_key(self) -> tuple[str, int, int, str, str]:
        """Order by file, then position, then code, so output is stable."""
        loc = self.location
        return (loc.file, loc.line, loc.column, self.code, self.message)

    def as_dict(self) -> dict[str, object]:
        """The JSON form used by ``--format json``."""
        return {
            "file": self.location.file,
            "line": self.location.line,
            "column": self.location.column,
            "severity": str(self.severity),
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }

    def render(self) -> str:
        """The compiler-style text form: ``file:line:col: error[code] message``."""
        text = f"{self.location}: {self.severity}[{self.code}] {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sorted and without exact repeats."""
    return sorted(set(diagnostics), key=Diagnostic.sort_key)


class FlowEngineError(Exception):
    """The root of every exception flowengine raises on purpose."""

    exit_code: ClassVar[int] = 1


class FlowLoadError(FlowEngineError):
    """Raised when a flow file cannot be read at all (missing, a directory, no access)."""

    exit_code: ClassVar[int] = 2

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot read {path}: {reason}")


class FlowValidationError(FlowEngineError):
    """Raised by ``load_flow`` when a flow has errors; ``.diagnostics`` holds all of them."""

    def __init__(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.diagnostics = tuple(sort_diagnostics(diagnostics))
        errors = [d for d in self.diagnostics if d.severity is Severity.ERROR]
        shown = "\n".join(d.render() for d in errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} error(s) in flow:\n{shown}{more}")


class TemplateError(FlowEngineError):
    """Raised when a template or condition fails while it is evaluated for a call."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"template {source!r} failed: {reason}")


class UsageError(FlowEngineError):
    """Raised when a command-line argument is wrong."""

    exit_code: ClassVar[int] = 2
