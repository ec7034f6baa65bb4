"""The daemon's settings: flags and environment, checked once at startup.

Where it sits: the first thing ``flowengine serve`` builds, before the store, the flows or the
app. Flags carry what differs per run (where to listen, which flows, which store); the
environment carries the secrets, so they never appear in a process list or a shell history.
Every problem is a ``SettingsError`` naming the setting, and no message ever echoes a secret's
value: secrets are held in ``flowengine.daily.Secret`` from the moment they are read.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..daily import DEFAULT_BASE_URL, Secret
from ..daily.errors import DailyConfigError
from ..daily.requester import check_base_url
from ..daily.webhooks import decode_secret
from ..errors import FlowEngineError

DEFAULT_STORE = ".flowengine/calls.db"
LOG_FORMATS = ("json", "console")
SHARED_STORES = ("redis://", "rediss://", "unix://")
"""Store URLs several daemons may share (the others are held by one process)."""
ROOM_AGENTS = ("auto", "daily", "off")
DEFAULT_LEASE_TTL = 15.0
"""Seconds a call's lease lasts without renewal: how long a dead daemon's calls wait."""
DEFAULT_KEEP_ENDED = 30.0
"""Days an ended call stays in the store."""
MIN_KEEP_ENDED = 1 / 24
"""Days: an ended call is kept an hour at least (its last commands may still settle)."""
MIN_TOKEN_LENGTH = 16
"""A bearer token shorter than this is refused: it would be guessable."""


class SettingsError(FlowEngineError):
    """Raised when a setting is missing or unusable; the message names it, never its value."""

    exit_code: ClassVar[int] = 2

    def __init__(self, setting: str, reason: str) -> None:
        self.setting = setting
        self.reason = reason
        super().__init__(f"{setting}: {reason}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the daemon needs to start, already checked."""

    flows: Path
    daily_api_key: Secret
    webhook_secret: Secret
    pinless_secret: Secret
    api_token: Secret
    host: str = "127.0.0.1"
    port: int = 8000
    store: str = DEFAULT_STORE
    daily_api_url: str = DEFAULT_BASE_URL
    log_format: str = "console"
    reload_interval: float = 2.0
    """Seconds between two looks at the flows folder; 0 turns hot reload off."""
    drain_timeout: float = 10.0
    """Seconds a graceful shutdown waits for in-flight events and commands."""
    keep_ended: float = DEFAULT_KEEP_ENDED
    """Days an ended call stays in the store (its record, journal and trace); 0: for good."""
    lease_ttl: float = DEFAULT_LEASE_TTL
    """Seconds a call's lease lasts unrenewed (several daemons): how long a dead daemon's
    calls wait before another daemon takes them."""
    owner: str = ""
    """This daemon's owner id among several (default: host, process id, a random part)."""
    room_sip_domain: str | None = None
    """The SIP host of the domain's rooms (``<domain>.sip.daily.co``), for room transfers."""
    room_agent: str = "off"
    """``daily``: an in-room participant per call (``rooms.py``); ``off``: none."""
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def shared(self) -> bool:
        """Whether the store is one several daemons share (Redis): calls are run under leases."""
        return self.store.startswith(SHARED_STORES)

    def describe(self) -> dict[str, object]:
        """The settings as they may be logged: secrets only as set / not set."""
        return {
            "host": self.host,
            "port": self.port,
            "flows": str(self.flows),
            "store": self.store,
            "daily_api_url": self.daily_api_url,
            "log_format": self.log_format,
            "reload_interval": self.reload_interval,
            "shared_store": self.shared,
            "owner": self.owner,
            "lease_ttl": self.lease_ttl,
            "keep_ended_days": self.keep_ended,
            "room_agent": self.room_agent,
            "secrets": "DAILY_API_KEY, DAILY_WEBHOOK_SECRET, DAILY_PINLESS_SECRET, "
            "FLOWENGINE_API_TOKEN set",
        }


def default_owner() -> str:
    """A name no other daemon has: host, process id and a random part (a restarted daemon
    with a recycled process id is still another owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _secret(env: Mapping[str, str], name: str) -> Secret:
    value = env.get(name, "")
    if not value.strip():
        raise SettingsError(name, "is not set (put it in the environment)")
    return Secret(value.strip())


def _hmac(env: Mapping[str, str], name: str) -> Secret:
    secret = _secret(env, name)
    try:
        decode_secret(secret, name)
    except DailyConfigError as exc:
        raise SettingsError(name, exc.reason) from None
    return secret


def _room_agent(value: str, api_url: str) -> str:
    """``--room-agent`` resolved to ``daily`` or ``off``."""
    from .rooms import daily_python_installed  # imports daily-python, only when asked

    if value not in ROOM_AGENTS:
        raise SettingsError("--room-agent", f"choose one of {', '.join(ROOM_AGENTS)}")
    if value == "off":
        return "off"
    installed = daily_python_installed()
    if value == "daily" and not installed:
        raise SettingsError(
            "--room-agent", "daily needs daily-python: install flowengine[daily] (or choose off)"
        )
    if value == "auto" and (not installed or api_url.startswith("http://")):
        return "off"  # no daily-python, or a local emulator whose rooms it cannot join
    return "daily"


def load_settings(
    *,
    flows: str | os.PathLike[str],
    env: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    store: str | None = None,
    log_format: str = "console",
    reload_interval: float = 2.0,
    drain_timeout: float = 10.0,
    lease_ttl: float = DEFAULT_LEASE_TTL,
    owner: str | None = None,
    keep_ended: float = DEFAULT_KEEP_ENDED,
    room_agent: str | None = None,
) -> Settings:
    """Check the flags and read the environment.

    Raises:
        SettingsError: the first setting that is missing or unusable.
    """
    env = os.environ if env is None else env
    folder = Path(flows)
    if not folder.is_dir():
        raise SettingsError("--flows", f"{folder} is not a folder")
    try:
        if host != "localhost":
            ipaddress.ip_address(host)
    except ValueError:
        raise SettingsError("--host", f"{host!r} is not an IP address or localhost") from None
    if not 0 <= port <= 65535:
        raise SettingsError("--port", f"{port} is not a TCP port (0..65535)")
    if log_format not in LOG_FORMATS:
        raise SettingsError("--log-format", f"choose one of {', '.join(LOG_FORMATS)}")
    if reload_interval < 0:
        raise SettingsError("--reload-interval", "must be 0 (off) or a positive number")
    if drain_timeout <= 0:
        raise SettingsError("--drain-timeout", "must be positive")
    if keep_ended != 0 and not MIN_KEEP_ENDED <= keep_ended <= 36500:
        raise SettingsError("--keep-ended", "must be 0 (keep ended calls) or 1/24 to 36500 days")
    if not 0.5 <= lease_ttl <= 3600:
        raise SettingsError("--lease-ttl", "must be between 0.5 and 3600 seconds")
    owner = (owner or "").strip() or default_owner()
    if len(owner) > 200 or not owner.isprintable():
        raise SettingsError("--owner", "must be printable and at most 200 characters")
    api_url = env.get("DAILY_API_URL", "").strip() or DEFAULT_BASE_URL
    try:
        api_url = check_base_url(api_url)
    except DailyConfigError as exc:
        raise SettingsError("DAILY_API_URL", exc.reason) from None
    key = _secret(env, "DAILY_API_KEY")
    if any(c.isspace() or not c.isprintable() for c in key.reveal()):
        raise SettingsError("DAILY_API_KEY", "contains whitespace or control characters")
    token = _secret(env, "FLOWENGINE_API_TOKEN")
    if len(token.reveal()) < MIN_TOKEN_LENGTH:
        raise SettingsError(
            "FLOWENGINE_API_TOKEN", f"is shorter than {MIN_TOKEN_LENGTH} characters"
        )
    return Settings(
        flows=folder,
        daily_api_key=key,
        webhook_secret=_hmac(env, "DAILY_WEBHOOK_SECRET"),
        pinless_secret=_hmac(env, "DAILY_PINLESS_SECRET"),
        api_token=token,
        host=host,
        port=port,
        store=store or env.get("FLOWENGINE_STORE", "").strip() or DEFAULT_STORE,
        daily_api_url=api_url,
        log_format=log_format,
        reload_interval=reload_interval,
        drain_timeout=drain_timeout,
        lease_ttl=lease_ttl,
        owner=owner,
        keep_ended=keep_ended,
        room_sip_domain=env.get("DAILY_ROOM_SIP_DOMAIN", "").strip() or None,
        room_agent=_room_agent(
            room_agent or env.get("FLOWENGINE_ROOM_AGENT", "").strip() or "auto", api_url
        ),
    )
