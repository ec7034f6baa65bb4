"""The daemon and the Daily emulator as real servers on loopback, with the bridge between them.

Where it sits: shared glue of ``flowengine demo`` and the end-to-end and crash tests, on top of
the daemon and the emulator. ``Stack`` is what an operator would run on one machine, started
in the order the pieces depend on one another:

1. the emulator (``EmulatorServer``) on a free port of 127.0.0.1, in this process and loop, so
   its request log, webhooks and state can be read directly;
2. the daemon as a child process, exactly as operators start it: ``flowengine serve`` with a
   SQLite store in the run's folder, ``DAILY_API_URL`` pointing at the emulator, and secrets
   generated for the run (``Secrets``) given to both sides through the environment;
3. the ``RoomBridge``, standing in for the in-room participant.

The daemon's JSON log goes to ``daemon.log`` in the run's folder. ``kill_daemon`` (SIGKILL) and
``start_daemon`` restart it on the same store and port, which is what the crash test does.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ..daemon.calls import inbound_id
from ..emulator import Caller, Emulator, EmulatorServer, FarEnds
from ..emulator.faults import NO_FAULTS, Faults
from ..emulator.webhooks import RetryType
from .bridge import RoomBridge

HOST = "127.0.0.1"
LOOPBACK = ("127.0.0.1", "localhost")
READY_TIMEOUT = 30.0


def without_proxy(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with loopback added to ``NO_PROXY``: httpx honours proxy variables, and
    traffic between the daemon and the emulator must never leave the machine."""
    out = dict(env)
    for name in ("NO_PROXY", "no_proxy"):
        listed = [h for h in out.get(name, "").split(",") if h.strip()]
        out[name] = ",".join([*listed, *(h for h in LOOPBACK if h not in listed)])
    return out


class StackError(RuntimeError):
    """Raised when a server does not start (the message carries the end of its log)."""


def free_port(host: str = HOST) -> int:
    """A TCP port free on ``host`` now (the OS picks it; another process could take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Secrets:
    """The key, the two HMAC secrets and the API token of one run, shared by both servers."""

    api_key: str
    webhook_secret: str
    pinless_secret: str
    api_token: str

    @classmethod
    def generate(cls) -> Secrets:
        """Fresh random secrets (the HMAC secrets base64, as Daily gives them)."""
        return cls(
            api_key=secrets.token_urlsafe(24),
            webhook_secret=base64.b64encode(secrets.token_bytes(32)).decode(),
            pinless_secret=base64.b64encode(secrets.token_bytes(32)).decode(),
            api_token=secrets.token_urlsafe(24),
        )

    def env(self) -> dict[str, str]:
        """The environment variables both ``flowengine serve`` and the emulator read."""
        return {
            "DAILY_API_KEY": self.api_key,
            "DAILY_WEBHOOK_SECRET": self.webhook_secret,
            "DAILY_PINLESS_SECRET": self.pinless_secret,
            "FLOWENGINE_API_TOKEN": self.api_token,
        }


class DaemonProcess:
    """``flowengine serve`` as a child process on a fixed port, its log in a file."""

    def __init__(
        self,
        *,
        flows: Path,
        store: Path,
        port: int,
        env: Mapping[str, str],
        log_path: Path,
        args: Sequence[str] = (),
    ) -> None:
        self.flows, self.store, self.port = flows, store, port
        self.env = without_proxy({**os.environ, **env})
        self.log_path = log_path
        self.args = list(args)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        """The process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start ``flowengine serve`` (returns at once; ``wait_ready`` waits for it)."""
        command = [
            sys.executable,
            "-m",
            "flowengine",
            "serve",
            *("--host", HOST, "--port", str(self.port)),
            *("--flows", str(self.flows), "--store", str(self.store)),
            *("--log-format", "json", "--reload-interval", "0"),
            *self.args,
        ]
        with self.log_path.open("ab") as log_file:
            # In the parent's process group: a Ctrl-C at the terminal reaches the daemon too,
            # which drains and exits 0 by itself, and a closed terminal leaves no orphan.
            self.process = subprocess.Popen(
                command, stdout=log_file, stderr=subprocess.STDOUT, env=self.env
            )
        self.starts += 1

    async def wait_ready(self, within: float = READY_TIMEOUT) -> None:
        """Return once ``/readyz`` answers 200 (every live call restored).

        Raises:
            StackError: the process ended, or was not ready ``within`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as http:
            while loop.time() < deadline:
                if not self.running:
                    raise StackError(f"flowengine serve exited:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{self.url}/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.05)
        raise StackError(f"flowengine serve not ready after {within:g}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye; what is in the store is all that survives."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    async def stop(self, grace: float = 20.0) -> int | None:
        """SIGTERM (a graceful drain), SIGKILL after ``grace`` seconds; the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, grace)
            except subprocess.TimeoutExpired:
                self.kill()
        return process.returncode

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the daemon's log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Stack:
    """The emulator, ``flowengine serve`` and the bridge, started and stopped together.

    Args:
        flows: the folder the daemon serves.
        workdir: the run's folder (the SQLite store and the daemon's log).
        far_ends: the emulator's scripted callees.
        faults: the emulator's faults (webhooks and REST).
        seed: seeds the emulator's ids and faults.
        webhook_retry: Daily's retry type for webhooks; ``exponential`` (the default here)
            sends a delivery that got no answer again, as a daemon being restarted needs.
        webhook_concurrency: webhook deliveries in flight at once (each room's in order), as
            Daily delivers different calls' webhooks independently.
        rate_limits: whether the emulator enforces Daily's limits (the daemon paces itself).
        daemon_args: more ``flowengine serve`` flags.
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
    ) -> None:
        self.secrets = secrets or Secrets.generate()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        daemon_url = f"http://{HOST}:{port}"
        self.emulator = Emulator(
            api_key=self.secrets.api_key,
            webhook_url=f"{daemon_url}/daily/webhooks",
            webhook_secret=self.secrets.webhook_secret,
            webhook_retry=webhook_retry,
            webhook_concurrency=webhook_concurrency,
            dialin_url=f"{daemon_url}/daily/dialin",
            pinless_secret=self.secrets.pinless_secret,
            far_ends=far_ends,
            faults=faults,
            seed=seed,
        )
        self.emulator.limits(rate_limits)
        self.emulator_server = EmulatorServer(self.emulator, HOST, 0)
        self._daemon_args = list(daemon_args)
        self._flows = flows
        self._port = port
        self.daemon: DaemonProcess | None = None
        self.bridge: RoomBridge | None = None
        self.api = httpx.AsyncClient(
            base_url=daemon_url,
            headers={"Authorization": f"Bearer {self.secrets.api_token}"},
            timeout=10.0,
            trust_env=False,
        )

    @property
    def daemon_url(self) -> str:
        """The daemon's root URL."""
        return str(self.api.base_url).rstrip("/")

    async def __aenter__(self) -> Stack:
        await self.emulator_server.__aenter__()
        try:
            self.daemon = DaemonProcess(
                flows=self._flows,
                store=self.workdir / "calls.db",
                port=self._port,
                env={**self.secrets.env(), "DAILY_API_URL": self.emulator_server.base_url},
                log_path=self.workdir / "daemon.log",
                args=self._daemon_args,
            )
            await self.start_daemon()
            self.bridge = RoomBridge(
                self.emulator_server.url,
                self.secrets.api_key,
                self.daemon_url,
                self.secrets.api_token,
            )
            self.bridge.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the bridge, drain and stop the daemon, stop the emulator."""
        if self.bridge is not None:
            await self.bridge.aclose()
            self.bridge = None
        if self.daemon is not None:
            await self.daemon.stop()
        await self.api.aclose()
        await self.emulator_server.__aexit__()

    # -- the daemon's life -------------------------------------------------------------------

    async def start_daemon(self) -> None:
        """Start ``flowengine serve`` (again) and wait until it is ready."""
        assert self.daemon is not None
        self.daemon.start()
        await self.daemon.wait_ready()

    def kill_daemon(self) -> None:
        """SIGKILL the daemon."""
        assert self.daemon is not None
        self.daemon.kill()

    # -- calls -------------------------------------------------------------------------------

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
        """Start an outbound flow through ``POST /v1/calls``; its id."""
        answer = await self.api.post("/v1/calls", json={"flow": flow, "to": to, "vars": vars or {}})
        if answer.status_code != 201:
            raise StackError(f"POST /v1/calls answered {answer.status_code}: {answer.text}")
        return str(answer.json()["id"])

    async def call(self, call_id: str) -> dict[str, Any]:
        """``GET /v1/calls/{id}``."""
        answer = await self.api.get(f"/v1/calls/{call_id}")
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        return data

    async def trace(self, call_id: str) -> list[dict[str, Any]]:
        """``GET /v1/calls/{id}/trace``: one entry per event handled."""
        answer = await self.api.get(f"/v1/calls/{call_id}/trace")
        answer.raise_for_status()
        trace: list[dict[str, Any]] = answer.json()["trace"]
        return trace

    async def wait_ended(
        self, call_ids: Sequence[str], within: float, *, every: float = 0.25
    ) -> dict[str, dict[str, Any]]:
        """Each call as ``GET /v1/calls/{id}`` shows it, once all have ended or ``within``
        seconds.

        A daemon that does not answer (being restarted) is asked again.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        calls: dict[str, dict[str, Any]] = {}
        while True:
            for call_id in call_ids:
                if calls.get(call_id, {}).get("ended"):
                    continue
                with contextlib.suppress(httpx.HTTPError):
                    calls[call_id] = await self.call(call_id)
            done = all(calls.get(c, {}).get("ended") for c in call_ids)
            if done or loop.time() >= deadline:
                return calls
            await asyncio.sleep(every)
