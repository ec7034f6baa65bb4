"""Durations as flows write them (``5s``, ``500ms``, ``1m30s``) and back."""

from __future__ import annotations

import re

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a duration string.

    Raises:
        ValueError: the text is not a duration.
    """
    pos, total = 0, 0.0
    for part in _PART.finditer(text):
        if part.start() != pos:
            break
        total += float(part.group(1)) * _UNITS[part.group(2)]
        pos = part.end()
    if pos != len(text) or not text:
        raise ValueError(f"{text!r} is not a duration (write e.g. 5s, 500ms, 1m30s)")
    return total


def format_duration(seconds: float) -> str:
    """A short human form: ``1.5s``, ``250ms``, ``2m``."""
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"
