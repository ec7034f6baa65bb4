"""The send gate: a last word, asked right before a request that acts goes out.

A caller that must record a request before it is sent (the daemon claims each command in its
outbox) sets a gate with ``send_gate`` around its call into this package. ``Requester.call``
asks it once per request, after the limiter has granted a paced endpoint its slot and right
before the first attempt; retries of that request do not ask again. Reads (``GET``) act on
nothing and never ask. The in-room participant asks it right before each telephony call of
the call client (after its own limiter slot) and before ejecting the phone legs.

The gate answers True to send, False to send nothing: the request then raises
``DailyNotSentError``, and nothing of it has left the process. Without a gate, everything is
sent as before. The gate lives in a ``contextvars.ContextVar``, so it follows the awaiting
task (and tasks it starts) and nothing else; the gate itself decides what a second question
within the same context means (the daemon's answers the first one again).

Depends only on ``errors.py`` and the standard library.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flowengine.daily.errors import DailyError

SendGate = Callable[[], Awaitable[bool]]
"""Asked right before a request goes out: True to send it, False to send nothing."""

_GATE: ContextVar[SendGate | None] = ContextVar("flowengine_daily_send_gate", default=None)


class DailyNotSentError(DailyError):
    """Raised when the send gate refused a request: nothing of it was sent."""

    def __init__(self, *, method: str, endpoint: str) -> None:
        self.method = method
        self.endpoint = endpoint
        super().__init__(f"Daily {method} {endpoint} not sent: the send gate refused it")


@contextmanager
def send_gate(gate: SendGate) -> Iterator[None]:
    """Ask ``gate`` before each request that acts, sent within this block."""
    token = _GATE.set(gate)
    try:
        yield
    finally:
        _GATE.reset(token)


async def pass_gate(method: str, endpoint: str) -> None:
    """Return when the request may go out; ``DailyNotSentError`` if the gate refuses it."""
    gate = _GATE.get()
    if gate is not None and not await gate():
        raise DailyNotSentError(method=method, endpoint=endpoint)
