"""The runner daemon: ``flowengine serve``.

Where it sits: on top of everything else: the runtime runs calls, the store keeps them, the
Daily client acts, the project loader reads the flows; this package receives Daily's
webhooks and pinless requests, runs every call to its end, and survives restarts.

- ``settings``: flags and environment, checked at startup;
- ``flows``: loading, routing by ``match``, hot reload;
- ``telephony``: the runtime's commands as Daily REST requests and business HTTP;
- ``persistence``: persist-then-execute, the inbox, restoring calls;
- ``calls``: starting calls, routing events to them, the end of a call;
- ``ingress`` / ``api``: the HTTP endpoints; ``app``: ``Daemon`` and ``create_app``;
- ``metrics``, ``logs``: Prometheus and structlog; ``serve``: the command.

docs/daemon.md describes the endpoints, the durability and restore rules, and operations.
"""

from __future__ import annotations

# The app (Starlette, prometheus-client) is imported from ``flowengine.daemon.app`` only when
# used, so that ``flowengine validate`` does not pay for loading it.
from .settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
