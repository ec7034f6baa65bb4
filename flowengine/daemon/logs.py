"""The daemon's logs: structlog, JSON lines in production, readable lines in a terminal.

Where it sits: configured once by ``flowengine serve`` before the app starts; every other
module of the daemon logs through ``structlog.get_logger`` with the call's context bound
(``call_id``, ``flow``, ``state``), so each line says which call it is about. One ``cdr``
record is written per finished call: the summary an operator bills and reports from.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

from ..runtime.session import Session

log = structlog.get_logger("flowengine.daemon")


def configure(
    fmt: str = "console", stream: TextIO | None = None, level: int = logging.INFO
) -> None:
    """Send every structlog line to ``stream`` (stdout) as JSON (``json``) or for a terminal.

    uvicorn's own loggers are routed through the same renderer, so the whole output is one
    format (one JSON object per line in production).
    """
    out = stream if stream is not None else sys.stdout
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    processors: list[Any] = [*shared]
    if fmt == "json":
        processors.append(structlog.processors.format_exc_info)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        std = logging.getLogger(name)
        std.handlers = [handler]
        std.propagate = False
        std.setLevel(level)


def call_fields(session: Session) -> dict[str, Any]:
    """What every line about a call carries."""
    return {"call_id": session.call_id, "flow": session.flow, "state": session.state}


def path_of(session: Session) -> list[str]:
    """The states the call went through, in order (repeats kept)."""
    path: list[str] = []
    for entry in session.trace:
        path.extend(entry.entered)
    return path


def cdr(session: Session, ended_at: float) -> dict[str, Any]:
    """The call's detail record: one per finished call."""
    info = session.call
    return {
        "call_id": session.call_id,
        "from": info.get("from"),
        "to": info.get("to"),
        "direction": info.get("direction"),
        "flow": session.root_flow,
        "version": session.flow_hash[:12],
        "path": path_of(session),
        "outcome": session.outcome,
        "duration": round(max(0.0, ended_at - session.started_at), 3),
    }


def log_cdr(session: Session, ended_at: float) -> None:
    """Write the call's CDR line."""
    record = cdr(session, ended_at)
    log.info("cdr", **record, state=session.state)
