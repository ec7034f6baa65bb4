"""States that decide, wait or reach other systems: wait, choose, set, http, schedule, call.

``http`` retries a failed attempt (a transport error, a timeout, a 408, 429 or 5xx status) up
to ``retries`` times, waiting ``backoff`` before the first retry and twice as long before each
next one; the outcome is ``ok`` for a 2xx answer, else ``timeout`` when the last attempt timed
out, else ``error``. A guard timer of the request's timeout plus one second turns a port that
never answers into a timed-out attempt. ``schedule`` reads the clock the runtime was given, in
the state's time zone (UTC when none is named).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ... import model as m
from ...addresses import host_allowed, url_scheme_host
from ...templates import evaluate
from ..commands import HttpRequest
from ..compiler import START
from ..events import COMMAND_FAILED, COMMAND_OK, TIMER, Event
from ..step import STAY, Step

HTTP_GUARD = 1.0
"""Seconds past an HTTP request's timeout after which the runtime stops waiting for the port."""


def _timer(event: Event, purpose: str) -> bool:
    return event.name == TIMER and event.payload.get("purpose") == purpose


# -- wait ------------------------------------------------------------------------------------


def enter_wait(step: Step, action: m.Wait) -> str | None:
    """Arm the wait's timer: its duration, or the timeout of a wait for events."""
    if action.duration is not None:
        step.start_timer("wait", action.duration)
    elif action.timeout is not None:
        step.start_timer("wait_timeout", action.timeout)
    return None


def on_wait(step: Step, action: m.Wait, event: Event) -> str | None:
    """``done`` after the duration; a listed event's name; ``timeout``."""
    if _timer(event, "wait"):
        return "done"
    if _timer(event, "wait_timeout"):
        return "timeout"
    if event.name in action.events:
        return event.name
    return None


# -- choose / set ----------------------------------------------------------------------------


def enter_choose(step: Step, action: m.Choose) -> str | None:
    """The first case whose condition holds, else ``otherwise``."""
    context = step.context()
    for i, case in enumerate(action.cases):
        if evaluate(case.condition, context):
            return f"when {i}"
    return "otherwise"


def enter_set(step: Step, action: m.SetVars) -> str | None:
    """Assign in order (a later value sees the earlier ones)."""
    for name, value in action.values.items():
        step.set_var(name, step.render(value))
    return "done"


# -- http ------------------------------------------------------------------------------------


def enter_http(step: Step, action: m.Http) -> str | None:
    """Send the first attempt."""
    step.session.scratch["try"] = 1
    return _send(step, action)


def _send(step: Step, action: m.Http) -> str | None:
    url = str(step.render(action.url)).strip()
    scheme, host = url_scheme_host(url)
    if scheme not in ("http", "https") or not host:
        return step.fail(f"{url!r} is not an http(s) URL")
    if not host_allowed(host, step.flow.allowed_hosts):
        return step.fail(f"the host {host!r} is not in the flow's allowed_hosts")
    attempt: int = step.session.scratch["try"]
    command = step.emit(
        HttpRequest,
        method=action.method,
        url=url,
        params={k: step.render(v) for k, v in action.query.items()},
        headers={k: str(step.render(v)) for k, v in action.headers.items()},
        body=step.render(_plain(action.body)),
        timeout=action.timeout,
        attempt=attempt,
    )
    step.session.scratch["key"] = command.key
    step.start_timer("http", action.timeout + HTTP_GUARD)
    return None


def _plain(value: Any) -> Any:
    """YAML bodies may hold read-only mappings; templates render plain dicts and lists."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def on_http(step: Step, action: m.Http, event: Event) -> str | None:
    """Answers, failures, the guard timer and the backoff timer of an http state."""
    scratch = step.session.scratch
    mine = event.payload.get("key") is not None and event.payload.get("key") == scratch.get("key")
    if mine and event.name == COMMAND_OK:
        step.cancel_timers("http")
        data = event.payload.get("data") or {}
        status = int(data.get("status", 200))
        if 200 <= status < 300:
            return _save(step, action, data, status)
        if status in (408, 429) or status >= 500:
            return _retry(step, action, "error", f"HTTP {status}")
        step.note(f"HTTP {status}")
        return "error"
    if mine and event.name == COMMAND_FAILED:
        step.cancel_timers("http")
        error = str(event.payload.get("error", ""))
        return _retry(step, action, "timeout" if error == "timeout" else "error", error)
    if _timer(event, "http"):
        scratch["key"] = None  # a late answer to this attempt is ignored
        return _retry(step, action, "timeout", "no answer in time")
    if _timer(event, "http_retry"):
        scratch["try"] += 1
        return _send(step, action) or STAY
    return None


def _retry(step: Step, action: m.Http, kind: str, why: str) -> str:
    tries: int = step.session.scratch["try"]
    if tries <= action.retries:
        delay = action.backoff * 2 ** (tries - 1)
        step.note(f"attempt {tries} failed ({why}); retrying in {delay:g}s")
        step.session.scratch["key"] = None
        step.start_timer("http_retry", delay)
        return STAY
    step.note(f"attempt {tries} failed ({why}); no retries left")
    return kind


def _save(step: Step, action: m.Http, data: dict[str, Any], status: int) -> str:
    response = {
        "status": status,
        "json": data.get("json"),
        "text": data.get("text", ""),
        "headers": data.get("headers") or {},
    }
    for name, template in action.save.items():
        step.set_var(name, step.render(template, response=response))
    return "ok"


# -- schedule --------------------------------------------------------------------------------


def enter_schedule(step: Step, action: m.Schedule) -> str | None:
    """open / closed / holiday (``closed`` when holiday is not routed) at the clock's time."""
    if action.override is not None:
        forced = str(step.render(action.override)).strip().lower()
        if forced in ("open", "closed"):
            step.note(f"override: {forced}")
            return forced
    local = datetime.fromtimestamp(step.now, ZoneInfo(action.timezone or "UTC"))
    if local.date().isoformat() in action.holidays:
        return "holiday" if step.routed("holiday") else "closed"
    minute = local.hour * 60 + local.minute
    for start, end in action.hours.get(local.weekday(), ()):
        if start <= minute < end:
            return "open"
    return "closed"


# -- call (sub-flow) -------------------------------------------------------------------------


def enter_call(step: Step, action: m.CallFlow) -> str | None:
    """Push a frame and start the sub-flow; its ``return`` comes back here as an outcome."""
    sub = step.runtime.flows.get(action.flow)
    if sub is None:
        return step.fail(f"the sub-flow {action.flow!r} is not loaded")
    inputs = {name: step.render(_plain(value)) for name, value in action.inputs.items()}
    step.runtime.push_frame(step, sub, inputs)
    return START
