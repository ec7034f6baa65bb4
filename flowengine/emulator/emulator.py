"""``Emulator``: a local Daily (REST, webhooks, pinless dial-in, far ends) in one object.

In-process, a test needs no sockets: ``emu.app`` is the Starlette app to put behind
``httpx.ASGITransport`` (``emu.daily_client()`` does that for ``DailyClient``), and the
webhook and dial-in targets may themselves be ASGI apps. ``server.py`` serves the same app
with uvicorn. Time comes from a clock with the runtime's ``Clock`` shape: real time by
default, or a ``VirtualClock`` so ``await emu.advance(3)`` plays three seconds of far-end
script at once. Faults, limits and far-end scripts can be changed between steps.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp

from flowengine.daily.client import DailyClient
from flowengine.emulator.control import control_routes
from flowengine.emulator.dialin import DialIn
from flowengine.emulator.dialout import DialOut
from flowengine.emulator.farends import Callee, Caller, FarEnds
from flowengine.emulator.faults import NO_FAULTS, Dice, Faults, Limiter, RateLimits
from flowengine.emulator.inroom import InRoomBus
from flowengine.emulator.log import RequestLog
from flowengine.emulator.network import Network, Timing
from flowengine.emulator.rest import RestApi, not_found_handler
from flowengine.emulator.state import Ids, InboundCall, State
from flowengine.emulator.timeline import Outbox, Timeline
from flowengine.emulator.transfers import Transfers
from flowengine.emulator.webhooks import Poster, RetryType, WebhookSender, targets_of
from flowengine.runtime.ports import AsyncioClock, Clock

DEFAULT_API_KEY = "emulator-api-key"
DEFAULT_WEBHOOK_SECRET = "ZW11bGF0b3Itd2ViaG9vay1zZWNyZXQ="  # base64("emulator-webhook-secret")
DEFAULT_PINLESS_SECRET = "ZW11bGF0b3ItcGlubGVzcy1zZWNyZXQ="  # base64("emulator-pinless-secret")
INGRESS_URL = "http://ingress.test/webhooks/daily"
DIALIN_URL = "http://ingress.test/dialin"
BASE_URL = "http://localhost/v1"
"""What ``daily_client()`` uses: ``DailyClient`` accepts plain HTTP to a local host only."""


class Emulator:
    """A local Daily domain.

    Args:
        api_key: the Bearer key ``/v1`` accepts.
        domain: the domain's subdomain (room URLs, SIP endpoints ``<room>@<domain>.sip.daily.co``).
        webhook_url, webhook_app: where webhooks go: a URL, or several (each delivery attempt
            goes to one of them, drawn from ``seed``, as a load balancer in front of several
            daemons would spread them), served by ``webhook_app`` in-process when given (the
            URL then defaults to ``INGRESS_URL``); neither: none are sent.
        webhook_secret: the base64 ``hmac`` webhooks are signed with.
        webhook_event_types: only these types are sent (Daily's ``eventTypes``); None: all.
        webhook_retry: Daily's ``retryType``: ``circuit-breaker`` or ``exponential``.
        webhook_basic_auth: sent as ``Authorization: Basic <value>`` (Daily's ``basicAuth``).
        webhook_concurrency: deliveries in flight at once (default 1: one after another).
            Daily delivers the webhooks of different calls independently; with more than one,
            each room's webhooks still go out in order, and other rooms' do not queue behind
            a slow answer (or a retry behind a backlog).
        dialin_url, dialin_app, pinless_secret: the pinless ``room_creation_api`` (one URL or
            several, one drawn per call) and its hmac.
        far_ends: the scripted callees; default: everyone answers at once.
        faults: failures to inject; ``emu.faults = ...`` switches them between steps.
        rate_limits: the limits to enforce (default: Daily's); ``limits(False)`` switches
            them off.
        timing: delays of Daily's own steps.
        purchased_numbers: phone-number id -> number; a dial-out's ``callerId`` must be one
            of the ids when any are given.
        clock: ``now()`` and ``call_later``: ``AsyncioClock`` (default) or ``VirtualClock``.
        sleep: how a slow answer waits (real time by default: it is for client timeouts).
        seed: seeds room names, session and call ids, and the choice among several targets.
        timeout: seconds a webhook or pinless target has to answer.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        domain: str = "emulator",
        webhook_url: str | Sequence[str] | None = None,
        webhook_app: ASGIApp | None = None,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        webhook_event_types: frozenset[str] | None = None,
        webhook_retry: RetryType = "circuit-breaker",
        webhook_basic_auth: str | None = None,
        webhook_concurrency: int = 1,
        dialin_url: str | Sequence[str] | None = None,
        dialin_app: ASGIApp | None = None,
        pinless_secret: str = DEFAULT_PINLESS_SECRET,
        far_ends: FarEnds | None = None,
        faults: Faults = NO_FAULTS,
        rate_limits: RateLimits | None = None,
        timing: Timing | None = None,
        purchased_numbers: dict[str, str] | None = None,
        clock: Clock | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        seed: int = 0,
        timeout: float = 10.0,
    ) -> None:
        self.api_key = api_key
        self.seed = seed
        self.clock: Clock = clock if clock is not None else AsyncioClock()
        self.timeline = Timeline(self.clock)
        self.outbox = Outbox(webhook_concurrency)
        self.poster = Poster(timeout)
        self.log = RequestLog()
        self.inroom = InRoomBus()
        self.far_ends = far_ends if far_ends is not None else FarEnds()
        self._faults = faults
        self._dice = Dice(faults)
        self.rate_limits = RateLimits() if rate_limits is None else rate_limits
        self.limiter: Limiter | None = Limiter(self.rate_limits)
        ids = Ids(seed)
        self.state = State(domain=domain, domain_id=ids.uuid())
        self.webhooks = WebhookSender(
            targets=targets_of(webhook_url, webhook_app, INGRESS_URL),
            secret=webhook_secret,
            timeline=self.timeline,
            outbox=self.outbox,
            poster=self.poster,
            dice=lambda: self._dice,
            event_types=webhook_event_types,
            retry_type=webhook_retry,
            basic_auth=webhook_basic_auth,
            seed=seed,
        )
        self.network = Network(
            state=self.state,
            ids=ids,
            timeline=self.timeline,
            sender=self.webhooks,
            bus=self.inroom,
            far_ends=self.far_ends,
            timing=timing or Timing(),
            purchased_numbers=dict(purchased_numbers or {}),
        )
        self.dialout = DialOut(self.network)
        self.transfers = Transfers(self.network)
        self.dialin = DialIn(
            self.network,
            self.poster,
            targets_of(dialin_url, dialin_app, DIALIN_URL),
            pinless_secret,
            seed=seed,
        )
        self.rest = RestApi(
            network=self.network,
            dialout=self.dialout,
            transfers=self.transfers,
            dialin=self.dialin,
            timeline=self.timeline,
            log=self.log,
            api_key=lambda: self.api_key,
            dice=lambda: self._dice,
            limiter=lambda: self.limiter,
            sleep=sleep,
        )
        self.app = Starlette(
            routes=[*self.rest.routes(), *control_routes(self)],
            exception_handlers={HTTPException: not_found_handler},
            lifespan=self._lifespan,
        )
        self._clients: list[httpx.AsyncClient] = []
        on_settle = getattr(self.clock, "on_settle", None)
        if callable(on_settle):
            # A VirtualClock waits for the webhooks a timer caused before firing the next.
            on_settle(self.outbox.idle)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        # Served by uvicorn: close the senders when the server stops.
        yield
        await self.aclose()

    # -- switches --------------------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The faults in force; setting them restarts their seeded draws."""
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._faults = faults
        self._dice = Dice(faults)

    def limits(self, enabled: bool) -> None:
        """Switch Daily's rate limits on (fresh windows) or off."""
        self.limiter = Limiter(self.rate_limits) if enabled else None

    def callee(self, address: str, callee: Callee) -> None:
        """Script the far end at a phone number or SIP URI."""
        self.far_ends.add(address, callee)

    def set_webhook_target(
        self, url: str | Sequence[str] | None = None, app: ASGIApp | None = None
    ) -> None:
        """Send webhooks to ``url`` or one of several URLs (served by ``app`` in-process when
        given), or nowhere. Deliveries already queued go to the new targets."""
        self.webhooks.targets = targets_of(url, app, INGRESS_URL)

    def set_dialin_target(
        self, url: str | Sequence[str] | None = None, app: ASGIApp | None = None
    ) -> None:
        """Send pinless dial-in requests to ``url`` or one of several (or ``app``), or nowhere."""
        self.dialin.targets = targets_of(url, app, DIALIN_URL)

    # -- calls and time --------------------------------------------------------------------

    async def place_call(
        self,
        to: str,
        from_: str | None = "+14155550123",
        *,
        caller: Caller | None = None,
        sip_headers: dict[str, str] | None = None,
    ) -> InboundCall:
        """Place an inbound pinless call (see ``dialin.py``); returns it once the dial-in URL
        has answered the signed request."""
        return await self.dialin.place_call(to, from_, caller=caller, sip_headers=sip_headers)

    async def settle(self) -> None:
        """Run everything due now and wait until every webhook it caused has been sent."""
        for _ in range(1000):
            await asyncio.sleep(0)
            ran = self.timeline.run_due()
            await self.outbox.idle()
            await asyncio.sleep(0)
            if not ran and not self.outbox.pending:
                return

    async def advance(self, seconds: float) -> None:
        """Move a virtual clock ``seconds`` on, playing what falls due in order, then settle.

        Raises:
            TypeError: the clock is not virtual (it has no ``advance``).
        """
        advance = getattr(self.clock, "advance", None)
        if not callable(advance):
            raise TypeError("advance() needs a virtual clock (Emulator(clock=VirtualClock()))")
        await self.settle()
        await advance(seconds)
        await self.settle()

    def daily_client(self, **options: Any) -> DailyClient:
        """A ``DailyClient`` on this emulator through ``httpx.ASGITransport`` (no sockets).

        ``options`` go to ``DailyClient`` (``limiter``, ``retry``, ``clock``, ``sleep``...);
        the HTTP client is closed by ``aclose()``.
        """
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app))
        self._clients.append(http)
        options.setdefault("base_url", BASE_URL)
        return DailyClient(options.pop("api_key", self.api_key), http=http, **options)

    async def aclose(self) -> None:
        """Stop sending and close every HTTP client this emulator made."""
        await self.outbox.aclose()
        await self.poster.aclose()
        for http in self._clients:
            await http.aclose()
        self._clients.clear()

    async def __aenter__(self) -> Emulator:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
