"""``flowengine serve`` as a child process, and what a run shares with it.

Where it sits: under ``stack.py``, which starts one or several of these beside the emulator.
``DaemonProcess`` starts the daemon exactly as operators do (its JSON log to a file of the
run), waits for ``/readyz``, and SIGKILLs (``kill``) or drains (``stop``) it. ``Secrets`` are
the key, HMAC secrets and API token of one run, given to the daemon and the emulator through
the environment; ``free_port`` and ``without_proxy`` keep everything on loopback.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
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
    """``flowengine serve`` as a child process on a fixed port, its log in a file.

    ``store`` is what ``--store`` is given: a SQLite path, or a URL (``redis://...``) that
    several daemons may share.
    """

    def __init__(
        self,
        *,
        flows: Path,
        store: str | Path,
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

    def log_records(self) -> list[dict[str, Any]]:
        """The daemon's JSON log lines, parsed (a line cut short by SIGKILL is left out)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        records: list[dict[str, Any]] = []
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the daemon's log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
