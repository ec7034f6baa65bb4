"""The daemon and the Daily emulator as real servers on loopback, with the bridge between them.

Where it sits: shared glue of ``flowengine demo`` and the end-to-end, crash and scale-out
tests, on top of the daemon and the emulator. ``Stack`` is what an operator would run, started
in the order the pieces depend on one another:

1. the emulator (``EmulatorServer``) on a free port of 127.0.0.1, in this process and loop, so
   its request log, webhooks and state can be read directly;
2. one or several daemons (``DaemonProcess``), each a child process started exactly as
   operators start it: ``flowengine serve`` on a port of its own, all on one store (a SQLite
   file in the run's folder by default; a shared URL such as ``redis://...?prefix=...`` for
   several), ``DAILY_API_URL`` pointing at the emulator, and secrets generated for the run
   (``Secrets``) given to every side through the environment;
3. the ``RoomBridge``, standing in for the in-room participant.

With several daemons the emulator stands for Daily behind a load balancer: each webhook
delivery attempt and each pinless request goes to one of the daemons, drawn from the seed, and
the bridge posts each in-room event to one of them. Like a load balancer's health check,
``kill_daemon`` takes the killed daemon out of those targets at once (deliveries already on
their way to it fail, and Daily's retries go to a live one) and ``start_daemon`` puts it back
once it is ready. With every daemon down, the targets stay as they were, so deliveries fail
and are retried as with one daemon.

Each daemon's JSON log goes to the run's folder: ``daemon.log`` for a single daemon,
``daemon-<i>.log`` for several. ``kill_daemon`` (SIGKILL) and ``start_daemon`` restart one on
the same store and port, which is what the crash and scale-out tests do.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from ..daemon.calls import inbound_id
from ..emulator import Caller, Emulator, EmulatorServer, FarEnds
from ..emulator.faults import NO_FAULTS, Faults
from ..emulator.webhooks import RetryType
from .bridge import RoomBridge
from .process import (
    HOST,
    LOOPBACK,
    READY_TIMEOUT,
    DaemonProcess,
    Secrets,
    StackError,
    free_port,
    without_proxy,
)

__all__ = [
    "HOST",
    "LOOPBACK",
    "READY_TIMEOUT",
    "DaemonProcess",
    "Secrets",
    "Stack",
    "StackError",
    "free_port",
    "without_proxy",
]
WEBHOOK_PATH = "/daily/webhooks"
DIALIN_PATH = "/daily/dialin"


class Stack:
    """The emulator, ``flowengine serve`` (one or several) and the bridge, started and stopped
    together.

    Args:
        flows: the folder the daemons serve.
        workdir: the run's folder (the SQLite store by default, and the daemons' logs).
        far_ends: the emulator's scripted callees.
        faults: the emulator's faults (webhooks and REST).
        seed: seeds the emulator's ids, faults and choice of daemon, and which daemon the
            stack's own API requests go to.
        webhook_retry: Daily's retry type for webhooks; ``exponential`` (the default here)
            sends a delivery that got no answer again, as a daemon being restarted needs.
        webhook_concurrency: webhook deliveries in flight at once (each room's in order), as
            Daily delivers different calls' webhooks independently.
        rate_limits: whether the emulator enforces Daily's limits (the daemon paces itself).
        daemon_args: more ``flowengine serve`` flags, for every daemon.
        daemons: how many daemons to run, each on its own port and log.
        store: the ``--store`` every daemon is given; default ``<workdir>/calls.db``
            (SQLite), which only one daemon may use: several need a shared URL
            (``redis://host:port/db?prefix=name``).

    Raises:
        ValueError: fewer than one daemon, or several without a ``store``.
    """

    def __init__(
        self,
        *,
        flows: Path,
        workdir: Path,
        far_ends: FarEnds | None = None,
        faults: Faults = NO_FAULTS,
        seed: int = 0,
        webhook_retry: RetryType = "exponential",
        webhook_concurrency: int = 16,
        rate_limits: bool = True,
        secrets: Secrets | None = None,
        daemon_args: Sequence[str] = (),
        daemons: int = 1,
        store: str | None = None,
    ) -> None:
        if daemons < 1:
            raise ValueError("a stack needs at least one daemon")
        if daemons > 1 and store is None:
            raise ValueError("several daemons need a store they can share (redis://...)")
        self.secrets = secrets or Secrets.generate()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.store: str | Path = workdir / "calls.db" if store is None else store
        self._ports = [free_port() for _ in range(daemons)]
        urls = [f"http://{HOST}:{port}" for port in self._ports]
        self.emulator = Emulator(
            api_key=self.secrets.api_key,
            webhook_url=[f"{url}{WEBHOOK_PATH}" for url in urls],
            webhook_secret=self.secrets.webhook_secret,
            webhook_retry=webhook_retry,
            webhook_concurrency=webhook_concurrency,
            dialin_url=[f"{url}{DIALIN_PATH}" for url in urls],
            pinless_secret=self.secrets.pinless_secret,
            far_ends=far_ends,
            faults=faults,
            seed=seed,
        )
        self.emulator.limits(rate_limits)
        self.emulator_server = EmulatorServer(self.emulator, HOST, 0)
        self._daemon_args = list(daemon_args)
        self._flows = flows
        self._rng = random.Random(seed)
        self.daemons: list[DaemonProcess] = []
        """The daemons, in order (empty until the stack is entered)."""
        self.bridge: RoomBridge | None = None
        self._apis = [
            httpx.AsyncClient(
                base_url=url,
                headers={"Authorization": f"Bearer {self.secrets.api_token}"},
                timeout=10.0,
                trust_env=False,
            )
            for url in urls
        ]
        self.api = self._apis[0]
        """The first daemon's API, authorised with the run's token."""

    @property
    def daemon(self) -> DaemonProcess | None:
        """The first daemon (the only one, by default)."""
        return self.daemons[0] if self.daemons else None

    @property
    def daemon_url(self) -> str:
        """The first daemon's root URL."""
        return self.daemon_urls[0]

    @property
    def daemon_urls(self) -> list[str]:
        """Every daemon's root URL, in order, whether it is running or not."""
        return [str(api.base_url).rstrip("/") for api in self._apis]

    def live(self) -> list[int]:
        """The indices of the daemons whose process is running."""
        return [i for i, daemon in enumerate(self.daemons) if daemon.running]

    async def __aenter__(self) -> Stack:
        await self.emulator_server.__aenter__()
        try:
            several = len(self._ports) > 1
            env = {**self.secrets.env(), "DAILY_API_URL": self.emulator_server.base_url}
            self.daemons = [
                DaemonProcess(
                    flows=self._flows,
                    store=self.store,
                    port=port,
                    env=env,
                    log_path=self.workdir / (f"daemon-{i}.log" if several else "daemon.log"),
                    args=self._daemon_args,
                )
                for i, port in enumerate(self._ports)
            ]
            await asyncio.gather(*(self.start_daemon(i) for i in range(len(self.daemons))))
            self.bridge = RoomBridge(
                self.emulator_server.url,
                self.secrets.api_key,
                self.daemon_urls,
                self.secrets.api_token,
                seed=self.emulator.seed,
            )
            self.bridge.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the bridge, drain and stop the daemons, stop the emulator."""
        if self.bridge is not None:
            await self.bridge.aclose()
            self.bridge = None
        await asyncio.gather(*(daemon.stop() for daemon in self.daemons))
        for api in self._apis:
            await api.aclose()
        await self.emulator_server.__aexit__()

    # -- the daemons' lives ------------------------------------------------------------------

    async def start_daemon(self, i: int = 0) -> None:
        """Start daemon ``i`` (again), wait until it is ready, then send it its share."""
        daemon = self.daemons[i]
        daemon.start()
        await daemon.wait_ready()
        self._route()

    def kill_daemon(self, i: int = 0) -> None:
        """SIGKILL daemon ``i``; the others (if any) get what it would have been sent."""
        self.daemons[i].kill()
        self._route()

    def _route(self) -> None:
        """Point the emulator and the bridge at the running daemons (all, if none runs)."""
        urls = [self.daemon_urls[i] for i in self.live()] or self.daemon_urls
        self.emulator.set_webhook_target([f"{url}{WEBHOOK_PATH}" for url in urls])
        self.emulator.set_dialin_target([f"{url}{DIALIN_PATH}" for url in urls])
        if self.bridge is not None:
            self.bridge.daemon_urls = urls

    # -- calls -------------------------------------------------------------------------------

    async def _request(
        self, method: str, path: str, *, json: Any = None, idempotent: bool = True
    ) -> httpx.Response:
        """One API request to a running daemon, drawn at random; another one if it cannot
        be reached (any transport error when ``idempotent``, else only a refused connection).

        Every daemon reads calls from the shared store, so any of them answers.
        """
        order = self.live() or list(range(len(self._apis)))
        self._rng.shuffle(order)
        failure: httpx.HTTPError | None = None
        for i in order:
            try:
                return await self._apis[i].request(method, path, json=json)
            except httpx.ConnectError as exc:
                failure = exc
            except httpx.HTTPError as exc:
                if not idempotent:
                    raise
                failure = exc
        assert failure is not None
        raise failure

    async def place_call(
        self,
        to: str,
        from_: str | None,
        *,
        caller: Caller | None = None,
        sip_headers: dict[str, str] | None = None,
    ) -> str:
        """Place a pinless dial-in call; its id on the daemon (``in-<callId>``)."""
        inbound = await self.emulator.place_call(to, from_, caller=caller, sip_headers=sip_headers)
        if inbound.pinless_status != 200:
            raise StackError(f"the daemon refused the call to {to}: {inbound.pinless_status}")
        return inbound_id(inbound.call_id)

    async def start_call(self, flow: str, to: str, *, vars: Mapping[str, Any] | None = None) -> str:
        """Start an outbound flow through ``POST /v1/calls`` on a running daemon; its id."""
        body = {"flow": flow, "to": to, "vars": vars or {}}
        answer = await self._request("POST", "/v1/calls", json=body, idempotent=False)
        if answer.status_code != 201:
            raise StackError(f"POST /v1/calls answered {answer.status_code}: {answer.text}")
        return str(answer.json()["id"])

    async def call(self, call_id: str) -> dict[str, Any]:
        """``GET /v1/calls/{id}`` from a running daemon."""
        answer = await self._request("GET", f"/v1/calls/{call_id}")
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        return data

    async def trace(self, call_id: str) -> list[dict[str, Any]]:
        """``GET /v1/calls/{id}/trace`` from a running daemon: one entry per event handled."""
        answer = await self._request("GET", f"/v1/calls/{call_id}/trace")
        answer.raise_for_status()
        trace: list[dict[str, Any]] = answer.json()["trace"]
        return trace

    async def wait_ended(
        self, call_ids: Sequence[str], within: float, *, every: float = 0.25
    ) -> dict[str, dict[str, Any]]:
        """Each call as ``GET /v1/calls/{id}`` shows it, once all have ended or ``within``
        seconds.

        Each round asks for the calls not yet ended, in order, and stops at the first one still
        running (the others need not be asked until it ends: hundreds of calls polled at once
        would load the daemons they wait for); the last round, at the deadline, asks for every
        call not yet ended. A daemon that does not answer (being restarted) is asked again, or
        another one.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        calls: dict[str, dict[str, Any]] = {}
        while True:
            last = loop.time() >= deadline
            for call_id in call_ids:
                if calls.get(call_id, {}).get("ended"):
                    continue
                with contextlib.suppress(httpx.HTTPError):
                    calls[call_id] = await self.call(call_id)
                if not calls.get(call_id, {}).get("ended") and not last:
                    break
            if last or all(calls.get(c, {}).get("ended") for c in call_ids):
                return calls
            await asyncio.sleep(every)
