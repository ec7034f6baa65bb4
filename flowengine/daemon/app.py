"""The daemon wired together: ``Daemon`` (engine, store, Daily, flows) and its Starlette app.

Where it sits: the top of the daemon package; ``serve.py`` runs it under uvicorn, tests drive
it in-process (``httpx.ASGITransport``, Starlette's ``TestClient``) against the emulator.
Nothing here is global: ``create_app(settings, store=..., daily=..., clock=...)`` builds one
daemon from what it is given, and the caller closes the store and the client it passed in.

Lifecycle: ``start()`` restores every live call of the store (on a shared store, every one no
other daemon runs: ``ownership.py``; with room agents on, each gets a participant in its room:
``rooms.py``), then starts the hot-reload poller and, on a shared store, the lease loops; only
then is the daemon ready (``/readyz``). ``stop()`` (SIGTERM, through uvicorn's lifespan) stops
accepting (the ingress answers 503), and within ``drain_timeout`` makes the participants
leave, waits for in-flight events and commands and for every append; then it stops the engine
and releases its leases. What was not finished is in the store and is taken back by the next
start, or at once by another daemon on the same shared store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import structlog
from starlette.applications import Starlette
from starlette.routing import Route

from ..daily import DailyClient, pinless_verifier, webhook_verifier
from ..daily.participant_client import AudioFactory, ClientFactory
from ..runtime.engine import Engine
from ..runtime.ports import AsyncioClock, Clock, Telephony
from ..runtime.session import Session
from ..store import CallRecord, Store
from .api import Api
from .calls import Calls
from .flows import FlowCatalog, ReloadResult, pinned_versions
from .housekeeping import DAY, Housekeeping
from .ingress import Ingress
from .metrics import Metrics
from .ownership import Ownership
from .persistence import DurableTelephony, Persistence
from .restore import restore_calls
from .rooms import RoomAgents, warn_keys_without_agent
from .settings import Settings
from .telephony import BusinessHttp, RestTelephony

log = structlog.get_logger("flowengine.daemon")


class Daemon:
    """One daemon: its engine, persistence, calls, ingress and API."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        daily: DailyClient,
        clock: Clock | None = None,
        catalog: FlowCatalog | None = None,
        http: httpx.AsyncClient | None = None,
        metrics: Metrics | None = None,
        shared: bool | None = None,
        client_factory: ClientFactory | None = None,
        audio_factory: AudioFactory | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock: Clock = clock or AsyncioClock()
        self.catalog = catalog or FlowCatalog.load(settings.flows)
        self.metrics = metrics or Metrics()
        self._own_http = http is None
        self.http = http or httpx.AsyncClient()
        self.persistence = Persistence(store, on_step=self._on_step)
        self.rest = RestTelephony(
            daily,
            BusinessHttp(self.http),
            sessions=self._session,
            flows=lambda s: self.catalog.flows.version(s.flow_hash),
            metrics=self.metrics,
        )
        self.rooms: RoomAgents | None = None
        inner: Telephony = self.rest
        if settings.room_agent == "daily":  # in-room when the call's participant is in
            self.rooms = RoomAgents(
                daily,
                self.persistence,
                fallback=self.rest,
                flows=self.catalog.flows,
                clock=self.clock,
                prompts_dir=settings.flows,
                client_factory=client_factory,
                audio_factory=audio_factory,
            )
            inner = self.rooms.router
        self.telephony = DurableTelephony(inner, self.persistence)
        self.engine = Engine(
            self.catalog.flows,
            self.telephony,
            self.clock,
            room_sip_domain=settings.room_sip_domain,
            persist=self.persistence.persist,
        )
        self.persistence.bind(self.engine)
        self.calls = Calls(
            self.engine,
            self.persistence,
            self.catalog,
            daily,
            self.metrics,
            self.clock,
            agents=self.rooms,
        )
        self.housekeeping = (
            Housekeeping(store, self.clock, settings.keep_ended * DAY)
            if settings.keep_ended > 0
            else None
        )
        self.ownership: Ownership | None = None
        if settings.shared if shared is None else shared:
            self.ownership = Ownership(
                store,
                engine=self.engine,
                persistence=self.persistence,
                telephony=self.telephony,
                owner=settings.owner,
                ttl=settings.lease_ttl,
                clock=self.clock,
                track=self._track_taken,
                drop=self.calls.drop,
                load_version=self._load_versions,
                metrics=self.metrics,
            )
            self.calls.lease = self.ownership.lease
            self.calls.release = self.ownership.release
        take_over = self.ownership.take_over if self.ownership is not None else None
        now = self.clock.now
        self.ingress = Ingress(
            calls=self.calls,
            persistence=self.persistence,
            webhooks=webhook_verifier(settings.webhook_secret, clock=now),
            pinless=pinless_verifier(settings.pinless_secret, clock=now),
            metrics=self.metrics,
            accepting=lambda: self.accepting,
            take_over=take_over,
        )
        self.api = Api(
            calls=self.calls,
            persistence=self.persistence,
            token=settings.api_token,
            metrics=self.metrics,
            ready=lambda: self.ready,
            take_over=take_over,
            load_versions=self._load_versions,
        )
        self.accepting = False
        self.ready = False
        self._watcher: asyncio.Task[None] | None = None

    def _track_taken(self, session: Session) -> None:
        # A call taken over from another daemon: indexed and counted, and a participant in
        # its room when room agents are on.
        self.calls.track(session)
        if self.rooms is not None:
            self.rooms.reopen([session])

    async def _load_versions(self, record: CallRecord) -> None:
        # A call another daemon started, or an old one, may be on a version not loaded here.
        hashes = pinned_versions(record.flow_hash, record.snapshot)
        await self.catalog.ensure_all(self.store, hashes)

    def _session(self, call_id: str) -> Session | None:
        return self.engine.get(call_id)

    def _on_step(self, session: Session, event: object) -> None:
        self.calls.on_step(session, event)  # type: ignore[arg-type]

    def _on_reload(self, result: ReloadResult) -> None:
        if result.changed:
            self.metrics.flow_reloads.labels("updated").inc()
        if result.errors:
            self.metrics.flow_reloads.labels("refused").inc()

    async def start(self) -> list[Session]:
        """Restore every live call, start the flow poller, and begin accepting."""
        self.accepting = True  # restored calls' events may arrive while they are restored
        await self.catalog.prepare(self.store)  # versions saved; pinned ones fetched back
        lease = self.ownership.lease if self.ownership is not None else None
        restored = await restore_calls(
            self.engine, self.persistence, self.telephony, track=self.calls.track, lease=lease
        )
        if self.ownership is not None:
            self.ownership.start()
        if self.housekeeping is not None:
            self.housekeeping.start()
        if self.rooms is not None:
            self.rooms.reopen(restored)
        else:
            warn_keys_without_agent(self.catalog.current())
        if self.settings.reload_interval > 0:
            self._watcher = asyncio.get_running_loop().create_task(
                self.catalog.watch(self.settings.reload_interval, self._on_reload)
            )
        self.ready = True
        log.info(
            "daemon ready",
            restored=len(restored),
            loaded=self.catalog.flows.names,
            **self.settings.describe(),
        )
        return restored

    async def stop(self) -> None:
        """Stop accepting, drain what is in flight, persist, stop the engine."""
        self.accepting = self.ready = False
        if self.ownership is not None:
            self.ownership.taking = False  # leases still renewed while draining
        if self.housekeeping is not None:
            await self.housekeeping.stop()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        try:
            async with asyncio.timeout(self.settings.drain_timeout):
                if self.rooms is not None:
                    await self.rooms.aclose()  # every participant leaves the room
                await self.engine.idle()
                await self.persistence.drain()
        except TimeoutError:
            log.warning("shutdown: work still in flight was left to the next start")
        await self.engine.aclose()
        await self.persistence.drain()
        if self.ownership is not None:
            await self.ownership.stop()  # the other daemons take this one's calls at once
        if self._own_http:
            await self.http.aclose()
        log.info("daemon stopped", live=sum(1 for s in self.engine.calls.values() if not s.ended))

    def app(self) -> Starlette:
        """The ASGI app; its lifespan runs ``start`` and ``stop``."""

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            await self.start()
            try:
                yield
            finally:
                await self.stop()

        api = self.api
        routes = [
            Route("/daily/webhooks", self.ingress.webhook, methods=["POST"]),
            Route("/daily/dialin", self.ingress.dialin, methods=["POST"]),
            Route("/v1/calls", api.authorised(api.start_call), methods=["POST"]),
            Route("/v1/calls/{call_id}", api.authorised(api.get_call), methods=["GET"]),
            Route("/v1/calls/{call_id}/trace", api.authorised(api.get_trace), methods=["GET"]),
            Route("/v1/calls/{call_id}/events", api.authorised(api.post_event), methods=["POST"]),
            Route("/healthz", api.healthz, methods=["GET"]),
            Route("/readyz", api.readyz, methods=["GET"]),
            Route("/metrics", api.metrics_text, methods=["GET"]),
        ]
        app = Starlette(routes=routes, lifespan=lifespan)
        app.state.daemon = self
        return app


def create_app(
    settings: Settings,
    *,
    store: Store,
    daily: DailyClient,
    clock: Clock | None = None,
    catalog: FlowCatalog | None = None,
    http: httpx.AsyncClient | None = None,
) -> Starlette:
    """The daemon's app (``app.state.daemon`` is the ``Daemon``)."""
    daemon = Daemon(settings, store=store, daily=daily, clock=clock, catalog=catalog, http=http)
    return daemon.app()
