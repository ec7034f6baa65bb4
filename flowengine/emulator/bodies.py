"""Reading request bodies as Daily does, and refusing them in Daily's words.

``ApiError`` is a Daily error answer (status, ``error`` type, ``info`` text) raised by the
operations and rendered by ``rest.py``. Bodies are checked in two steps: their JSON shape
here (unknown parameters, wrong JSON types), then their values by the very request models
``DailyClient`` sends (``flowengine.daily.models``), so the client and the emulator cannot
disagree about what is valid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowengine.daily.errors import DailyRequestError
from flowengine.daily.models import Codecs


class ApiError(Exception):
    """A Daily error answer: ``{"error": error, "info": info}`` with ``status``."""

    def __init__(self, status: int, error: str, info: str) -> None:
        self.status = status
        self.error = error
        self.info = info
        super().__init__(f"{status} {error}: {info}")


def invalid(info: str) -> ApiError:
    """400 ``invalid-request-error``."""
    return ApiError(400, "invalid-request-error", info)


def not_found(info: str) -> ApiError:
    """404 ``not-found``."""
    return ApiError(404, "not-found", info)


def checked(build: Callable[[], Any]) -> Any:
    """Build a ``flowengine.daily.models`` request, turning its refusal into a 400."""
    try:
        return build()
    except DailyRequestError as exc:
        raise invalid(f"{exc.field}: {exc.reason}") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise invalid(str(exc)) from None


_STRINGS = frozenset(
    {
        "sessionId",
        "sipUri",
        "phoneNumber",
        "displayName",
        "userId",
        "callerId",
        "extension",
        "toEndPoint",
        "callId",
        "callDomain",
    }
)


def body_fields(body: dict[str, Any], fields: dict[str, str], ignored: set[str]) -> dict[str, Any]:
    """Keyword arguments for a ``models`` request from Daily's camelCase body; unknown keys
    are refused (``ignored`` ones are accepted and left out), and so are values of the
    wrong JSON type, which the models do not all check."""
    if unknown := set(body) - set(fields) - ignored:
        raise invalid(f"unknown parameter {sorted(unknown)[0]!r}")
    for key, value in body.items():
        if key in _STRINGS and not isinstance(value, str):
            raise invalid(f"{key} must be a string")
        if key == "video" and not isinstance(value, bool):
            raise invalid("video must be a boolean")
        if key == "waitBeforeExtensionDialSec" and (
            isinstance(value, bool) or not isinstance(value, int)
        ):
            raise invalid("waitBeforeExtensionDialSec must be an integer")
    return {fields[k]: v for k, v in body.items() if k in fields}


def parse_codecs(value: object) -> Codecs | None:
    """Daily's ``codecs`` object as ``Codecs``, or a 400."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"audio", "video"}:
        raise invalid("codecs must be an object with audio and video lists")
    lists = {k: v for k, v in value.items()}
    if not all(isinstance(v, list) and all(isinstance(c, str) for c in v) for v in lists.values()):
        raise invalid("codecs.audio and codecs.video must be lists of codec names")
    codecs: Codecs = checked(lambda: Codecs(**{k: tuple(v) for k, v in lists.items()}))
    return codecs
