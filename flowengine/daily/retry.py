"""When a failed request to Daily may be sent again, and how long to wait first.

Two facts decide it. *Did Daily possibly act?* A connect error means the request never left,
and a 429 means Daily refused it before acting: neither can have had an effect. A timeout or a
dropped connection after sending, or a 5xx, may have. *Is doing it twice harmless?* Reading or
deleting a room, making a token or stopping a leg is; starting a call leg, a transfer, a REFER
or sending tones is not. Each endpoint carries its answer (``Repeat``) in ``ENDPOINTS``; the
table in ``client.py`` and docs/daily.md says the same in prose.

Sits under ``client.py``; no I/O here, only rules and arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Repeat(Enum):
    """How freely an endpoint's request may be sent again after a failure."""

    SAFE = "safe"
    """Idempotent: sent again after any transient failure."""
    ONCE = "once"
    """Not idempotent: sent again only when Daily cannot have acted on the first request."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One Daily operation and the rules that govern sending it."""

    name: str
    """Stable name used in logs and errors, e.g. ``dialOut/start``."""
    method: str
    repeat: Repeat
    paced: bool = False
    """Sent through the shared telephony limiter (Daily's PSTN/SIP tier)."""
    effect: str = ""
    """What a blind repeat could do twice, for ``DailyOutcomeUnknownError``."""
    conflict_after_unknown: bool = False
    """A 4xx answering a repeat may only mean the earlier attempt already worked."""


GET_ROOM = Endpoint("rooms/get", "GET", Repeat.SAFE)
CREATE_ROOM = Endpoint(
    "rooms/create",
    "POST",
    Repeat.SAFE,
    effect="create a second room",
    conflict_after_unknown=True,
)
DELETE_ROOM = Endpoint("rooms/delete", "DELETE", Repeat.SAFE)
CREATE_MEETING_TOKEN = Endpoint("meeting-tokens/create", "POST", Repeat.SAFE)
DIAL_OUT_START = Endpoint(
    "dialOut/start", "POST", Repeat.ONCE, paced=True, effect="start a second call leg"
)
DIAL_OUT_STOP = Endpoint("dialOut/stop", "POST", Repeat.SAFE)
SEND_DTMF = Endpoint(
    "dialOut/sendDTMF", "POST", Repeat.ONCE, paced=True, effect="send the tones twice"
)
SIP_CALL_TRANSFER = Endpoint(
    "sipCallTransfer", "POST", Repeat.ONCE, paced=True, effect="start a second transfer"
)
SIP_REFER = Endpoint(
    "sipRefer", "POST", Repeat.ONCE, paced=True, effect="send a second (billed) REFER"
)
PINLESS_CALL_UPDATE = Endpoint(
    "dialin/pinlessCallUpdate",
    "POST",
    Repeat.SAFE,
    effect="route the held call twice",
    conflict_after_unknown=True,
)

ENDPOINTS: tuple[Endpoint, ...] = (
    GET_ROOM,
    CREATE_ROOM,
    DELETE_ROOM,
    CREATE_MEETING_TOKEN,
    DIAL_OUT_START,
    DIAL_OUT_STOP,
    SEND_DTMF,
    SIP_CALL_TRANSFER,
    SIP_REFER,
    PINLESS_CALL_UPDATE,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by attempts and by total time."""

    max_attempts: int = 4
    """Attempts in all, the first included."""
    max_elapsed: float = 20.0
    """Seconds from the first send after which no further attempt starts."""
    base_delay: float = 0.5
    """The wait before the first retry, before jitter."""
    max_delay: float = 8.0
    """The cap on one wait, before jitter."""
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_elapsed < 0 or self.base_delay < 0:
            raise ValueError("a retry policy needs max_attempts >= 1 and non-negative times")
        if self.max_delay < self.base_delay or self.multiplier < 1:
            raise ValueError("a retry policy needs max_delay >= base_delay and multiplier >= 1")

    def delay(self, retry: int, rand: float) -> float:
        """The wait before retry number ``retry`` (1-based); ``rand`` is uniform in [0, 1).

        Half the wait is fixed and half random ("equal jitter"): many calls failing together
        (Daily briefly down) spread out, yet none retries almost at once.
        """
        cap = min(self.max_delay, self.base_delay * self.multiplier ** (retry - 1))
        return cap / 2 + cap / 2 * rand


NO_RETRY = RetryPolicy(max_attempts=1, max_elapsed=0.0)
"""For callers that do their own retrying, and for tests."""
