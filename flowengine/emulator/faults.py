"""What can go wrong on purpose: REST failures, slow answers, webhook trouble, rate limits.

``Faults`` is a plain, frozen description of one run's trouble; every switch is off by
default. Decisions are drawn from a ``random.Random`` seeded by ``Faults.seed``, one draw per
question in a fixed order, so a test that sets the same faults and sends the same requests
sees the same failures every time. Webhook trouble is bounded: an event is delayed at most
``webhook_delay_max`` seconds, held back at most ``reorder_window`` seconds, and sent at most
twice.

``RateLimits`` are not faults but Daily's documented limits, enforced with sliding windows on
the emulator's clock (docs/emulator.md lists the tiers).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

TELEPHONY_ENDPOINTS = frozenset(
    {"dialOut/start", "dialOut/sendDTMF", "sipCallTransfer", "sipRefer"}
)
"""Daily's "start recording, live streaming, PSTN or SIP" tier (sendDTMF read as PSTN/SIP,
as the client's limiter reads it)."""


def _share(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a share between 0 and 1, not {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """Failures to inject in one run; shares are probabilities per request or per webhook.

    REST (each request to ``/v1`` draws once, in this order):

    - ``rest_429``: answered 429 ``rate-limit-error`` before anything is done;
    - ``rest_5xx``: answered 500 ``server-error`` before anything is done;
    - ``rest_5xx_after``: done, then answered 500 anyway (the answer is "lost": the side
      effect happened, which is what a client must never repeat blindly);
    - ``slow``: the answer waits ``slow_seconds`` (real time: it is for client timeouts).

    ``endpoints`` limits REST faults to those endpoint names (``dialOut/start``...).

    Webhooks (each event draws once, in this order):

    - ``webhook_drop``: never sent;
    - ``webhook_duplicate``: sent twice, the copy ``duplicate_gap`` seconds later;
    - ``webhook_delay``: sent up to ``webhook_delay_max`` seconds late (uniform);
    - ``webhook_reorder``: held back until the next event has been sent (at most
      ``reorder_window`` seconds), so the two arrive swapped.
    """

    seed: int = 0
    rest_429: float = 0.0
    rest_5xx: float = 0.0
    rest_5xx_after: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 2.0
    endpoints: frozenset[str] | None = None
    webhook_drop: float = 0.0
    webhook_duplicate: float = 0.0
    duplicate_gap: float = 0.0
    webhook_delay: float = 0.0
    webhook_delay_max: float = 2.0
    webhook_reorder: float = 0.0
    reorder_window: float = 5.0

    def __post_init__(self) -> None:
        for name in (
            "rest_429",
            "rest_5xx",
            "rest_5xx_after",
            "slow",
            "webhook_drop",
            "webhook_duplicate",
            "webhook_delay",
            "webhook_reorder",
        ):
            _share(name, getattr(self, name))
        for name in ("slow_seconds", "duplicate_gap", "webhook_delay_max", "reorder_window"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @property
    def any_rest(self) -> bool:
        """Whether any REST fault is switched on."""
        return any((self.rest_429, self.rest_5xx, self.rest_5xx_after, self.slow))


NO_FAULTS = Faults()


@dataclass(frozen=True, slots=True)
class RestFault:
    """What to do to one REST request."""

    refuse: int | None = None
    """Answer this status (429 or 500) without acting."""
    fail_after: bool = False
    """Act, then answer 500."""
    slow: float = 0.0
    """Seconds to wait before answering."""

    @property
    def name(self) -> str | None:
        """A short label for the request log."""
        if self.refuse == 429:
            return "429"
        if self.refuse is not None:
            return "5xx"
        if self.fail_after:
            return "5xx-after"
        return "slow" if self.slow else None


@dataclass(frozen=True, slots=True)
class WebhookFault:
    """What to do to one webhook."""

    drop: bool = False
    duplicate: bool = False
    delay: float = 0.0
    reorder: bool = False


class Dice:
    """The seeded draws behind ``Faults``; one instance per run."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)

    def rest(self, endpoint: str) -> RestFault:
        """The fault for one request to ``endpoint`` (draws nothing when none is on)."""
        f = self.faults
        if not f.any_rest or (f.endpoints is not None and endpoint not in f.endpoints):
            return RestFault()
        if self._hit(f.rest_429):
            return RestFault(refuse=429)
        if self._hit(f.rest_5xx):
            return RestFault(refuse=500)
        after = self._hit(f.rest_5xx_after)
        slow = f.slow_seconds if self._hit(f.slow) else 0.0
        return RestFault(fail_after=after, slow=slow)

    def webhook(self) -> WebhookFault:
        """The fault for one webhook event."""
        f = self.faults
        if self._hit(f.webhook_drop):
            return WebhookFault(drop=True)
        duplicate = self._hit(f.webhook_duplicate)
        delay = self._rng.uniform(0.0, f.webhook_delay_max) if self._hit(f.webhook_delay) else 0.0
        return WebhookFault(duplicate=duplicate, delay=delay, reorder=self._hit(f.webhook_reorder))

    def _hit(self, share: float) -> bool:
        # No draw for a switch that is off: turning one fault on does not reshuffle the others.
        return share > 0.0 and self._rng.random() < share


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``calls`` accepted requests in any ``period`` seconds."""

    calls: int
    period: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimits:
    """Daily's REST limits per tier; a request must fit every window of its tier."""

    general: tuple[Window, ...] = (Window(20, 1.0), Window(100, 5.0))
    telephony: tuple[Window, ...] = (Window(1, 1.0), Window(5, 5.0))
    delete_room: tuple[Window, ...] = (Window(2, 1.0), Window(50, 30.0))
    telephony_endpoints: frozenset[str] = field(default=TELEPHONY_ENDPOINTS)

    def tier(self, endpoint: str) -> str:
        """Which tier ``endpoint`` counts against."""
        if endpoint in self.telephony_endpoints:
            return "telephony"
        return "delete_room" if endpoint == "rooms/delete" else "general"

    def windows(self, tier: str) -> tuple[Window, ...]:
        """The windows of ``tier``."""
        windows: tuple[Window, ...] = getattr(self, tier)
        return windows


class Limiter:
    """Sliding-window counting of accepted requests per tier; refused ones do not count."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._accepted: dict[str, deque[float]] = {}

    def allow(self, endpoint: str, now: float) -> bool:
        """Whether a request to ``endpoint`` at ``now`` fits its tier; records it if so."""
        tier = self.limits.tier(endpoint)
        windows = self.limits.windows(tier)
        longest = max((w.period for w in windows), default=0.0)
        times = self._accepted.setdefault(tier, deque())
        while times and times[0] <= now - longest:
            times.popleft()
        for window in windows:
            if _count_since(times, now - window.period) >= window.calls:
                return False
        times.append(now)
        return True


def _count_since(times: Iterable[float], start: float) -> int:
    return sum(1 for t in times if t > start)
