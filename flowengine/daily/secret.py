"""A wrapper that keeps a credential out of reprs, messages and log lines.

Used by the client for the API key and by the webhook verifiers for their HMAC secrets; the
only way to the raw value is ``reveal()``, called where the value goes on the wire.
"""

from __future__ import annotations

from typing import NoReturn


class Secret:
    """A string credential whose ``str`` and ``repr`` never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The raw value, for the one place that puts it on the wire."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        # Pickling would write the raw value into a snapshot or a queue message.
        raise TypeError("a Secret cannot be pickled")


def as_secret(value: str | Secret) -> Secret:
    """``value`` wrapped, unless it already is a ``Secret``.

    Callers ``del`` their raw parameter right after, so that a traceback rendered with its
    frame locals (structlog and rich can do that) shows only the wrapper.
    """
    return value if isinstance(value, Secret) else Secret(value)


def redact(text: str, *secrets: Secret) -> str:
    """``text`` with every occurrence of each secret's value replaced by ``[redacted]``."""
    for secret in secrets:
        value = secret.reveal()
        if value:
            text = text.replace(value, "[redacted]")
    return text
