"""Reading calls back: a trace as one line per move, a call's path, and Daily's side effects.

Where it sits: beside ``stack.py``, for the demo's output and the tests' assertions. Traces come
from the daemon's ``GET /v1/calls/{id}/trace`` as JSON and are turned back into the runtime's
``TraceEntry`` (so moves print as the scenario reports print them); side effects come from the
emulator's request log and are grouped by the call (room) they acted on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..daemon.calls import inbound_id
from ..emulator import LogEntry
from ..runtime.compiler import ENDED, INIT
from ..runtime.session import TraceEntry
from ..scenarios.report import event_label, moves_text

_BRIEF_FIELDS = {
    "answer": (),
    "start_dial_out": ("leg", "phoneNumber", "sipUri"),
    "stop_dial_out": ("leg",),
    "send_dtmf": ("leg", "tones"),
    "sip_call_transfer": ("room", "toEndPoint"),
    "sip_refer": ("toEndPoint",),
    "hangup": ("reason",),
    "play": ("prompt",),
    "http_request": ("method", "url"),
}
QUIET_COMMANDS = frozenset({"start_timer", "cancel_timer", "stop_play"})
"""Commands the runtime gives itself (timers) or that say nothing about the path."""


def short_id(call_id: str, width: int = 8) -> str:
    """``in-f7c1bd87-4da5-...`` -> ``in-f7c1bd87``: enough to tell a few calls apart."""
    head, sep, rest = call_id.partition("-")
    return f"{head}-{rest[:width]}" if sep else call_id[: width + 3]


def command_brief(command: Mapping[str, Any]) -> str | None:
    """A command in a few words (``sip_call_transfer toEndPoint=sip:...``); None when quiet."""
    kind = str(command.get("type", "?"))
    if kind in QUIET_COMMANDS:
        return None
    if kind == "say":
        return "say"
    fields = _BRIEF_FIELDS.get(kind, ())
    words = [kind, *(f"{f}={command[f]}" for f in fields if command.get(f) not in (None, ""))]
    return " ".join(words)


def event_brief(entry: TraceEntry) -> str:
    """The event that caused a trace entry: ``dtmf 1``, ``timer wait``, ``send_dtmf ok``, or
    Daily's event name (the session id it carries is left out: one call has few legs)."""
    label = event_label(entry)
    name = entry.event.name
    if "." in name and not name.startswith("command."):
        return name
    return label


def entry_line(entry: Mapping[str, Any], root_flow: str) -> str | None:
    """One trace entry as ``event: state --key--> state  (commands)``; None when it shows
    nothing (no move, no command worth naming)."""
    parsed = TraceEntry.from_dict(dict(entry))
    moved = moves_text(parsed.moves, root_flow)
    briefs = [b for c in entry.get("commands", ()) if (b := command_brief(c)) is not None]
    if not moved and not briefs:
        return None
    text = f"{event_brief(parsed)}: {moved or f'(in {parsed.target})'}"
    if briefs:
        text += "  (" + "; ".join(briefs) + ")"
    return text


def path_of(trace: Iterable[Mapping[str, Any]], root_flow: str) -> list[str]:
    """The states the call went through, in order (a sub-flow's as ``flow/state``)."""
    path: list[str] = []
    for entry in trace:
        for flow, _source, _trigger, target in entry.get("moves", ()):
            if target in (ENDED, INIT):
                continue
            path.append(target if flow == root_flow else f"{flow}/{target}")
    return path


def room_of(entry: LogEntry) -> str | None:
    """The room (the daemon's call id) a Daily request acted on, if it names one."""
    parts = entry.path.split("/")  # "", "v1", "rooms", name, operation...
    if entry.endpoint == "rooms/create" and isinstance(entry.body, Mapping):
        name = entry.body.get("name")
        return str(name) if name else None
    if entry.endpoint == "dialin/pinlessCallUpdate" and isinstance(entry.body, Mapping):
        call_id = entry.body.get("callId")
        return inbound_id(str(call_id)) if call_id else None
    if len(parts) >= 4 and parts[2] == "rooms":
        return parts[3]
    return None


def effects_by_call(entries: Iterable[LogEntry]) -> dict[str, list[str]]:
    """The endpoints of ``entries`` (the log's ``side_effects()``) by room, in order."""
    out: dict[str, list[str]] = {}
    for entry in entries:
        room = room_of(entry)
        if room is not None:
            out.setdefault(room, []).append(entry.endpoint)
    return out
