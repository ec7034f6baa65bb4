"""Diagnostics rendered for people (text), programs (JSON) and GitHub Actions (annotations)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .errors import Diagnostic, Severity

FORMATS = ("text", "json", "github")


def summary(diagnostics: Sequence[Diagnostic], files: int) -> str:
    """One line: how many errors and warnings in how many files."""
    errors = sum(1 for d in diagnostics if d.severity is Severity.ERROR)
    warnings = len(diagnostics) - errors
    noun = "file" if files == 1 else "files"
    if not diagnostics:
        return f"{files} {noun} checked: no problems"
    return (
        f"{files} {noun} checked: {errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}"
    )


def render(diagnostics: Sequence[Diagnostic], files: int, fmt: str) -> str:
    """The whole report in one of ``FORMATS``."""
    if fmt == "json":
        return json.dumps([d.as_dict() for d in diagnostics], indent=2)
    if fmt == "github":
        return "\n".join(_annotation(d) for d in diagnostics)
    lines = [d.render() for d in diagnostics]
    lines.append(summary(diagnostics, files))
    return "\n".join(lines)


def _escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def _annotation(d: Diagnostic) -> str:
    level = "error" if d.severity is Severity.ERROR else "warning"
    loc = d.location
    message = d.message + (f"\n{d.hint}" if d.hint else "")
    return (
        f"::{level} file={_escape(loc.file, prop=True)},line={loc.line},col={loc.column},"
        f"title={_escape(d.code, prop=True)}::{_escape(message)}"
    )
