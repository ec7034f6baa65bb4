"""Checks on what a flow asks of the phone network and of business systems.

DTMF tones and their length, SIP URIs, E.164 numbers, which legs exist and which of them are
SIP (``sipRefer`` works on SIP legs only, and never towards Daily's own SIP network), time zones
of schedules, the hosts ``http`` states reach, and the timers and pattern of ``collect``. Daily
refuses a bad request only when the call reaches that state, in front of a caller; here it is
refused before the flow is accepted. Only literal values are checked: a template's value is
known only during a call.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from functools import cache
from typing import TypeVar

from .. import model as m
from ..addresses import (
    host_allowed,
    in_daily_sip_network,
    is_e164,
    is_sip,
    normalise_phone,
    sip_host,
    sip_uri_problem,
    url_scheme_host,
)
from ..durations import format_duration
from ..errors import Diagnostic, Location
from ..templates import is_template
from . import CheckContext, did_you_mean, rule
from .subflows import related_flows

DTMF_TONES = frozenset("0123456789ABCD*#")
MAX_TONES = 20
"""Daily's sendDTMF sends at most this many tones per request."""
DIGIT_MS = (50, 2000)
CALLER = "caller"
"""The leg that started the call; it always exists."""

_SIP_FORM = "sip:user@host[:port][;params][?headers], e.g. sip:queue@pbx.example.com"

A = TypeVar("A")


def _actions(ctx: CheckContext, kind: type[A]) -> Iterator[tuple[m.State, A]]:
    for state in ctx.flow.states.values():
        if isinstance(state.action, kind):
            yield state, state.action


def _literal(value: object) -> str | None:
    """The value when it is text the checks can read (not a template)."""
    return value if isinstance(value, str) and not is_template(value) else None


# --- SIP URIs and phone numbers -------------------------------------------------------------


def _phone_diag(ctx: CheckContext, loc: Location, where: str, number: str) -> Diagnostic:
    fixed = normalise_phone(number)
    if fixed is not None:
        hint = f"Write it as {fixed!r}."
    elif "@" in number:
        hint = f"A SIP address needs the sip: prefix: 'sip:{number}'."
    else:
        hint = "Write + then the country code and number, digits only, e.g. '+14155550100'."
    return ctx.error(
        "invalid-phone-number",
        loc,
        f"{where} {number!r} is not an E.164 phone number",
        hint,
    )


def _sip_diag(
    ctx: CheckContext, loc: Location, where: str, uri: str, reason: str, hint: str | None = None
) -> Diagnostic:
    return ctx.error(
        "invalid-sip-uri",
        loc,
        f"{where} {uri!r} is not a valid SIP URI: {reason}",
        hint or f"Write {_SIP_FORM}.",
    )


@rule
def addresses(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Dial-out, transfer, refer and match targets are well-formed SIP URIs or E.164 numbers."""
    for i, number in enumerate(ctx.flow.match.dialin):
        if _literal(number) is not None and not is_e164(number):
            yield _phone_diag(ctx, ctx.locate(("match", "dialin", i)), "match.dialin", number)
    for i, uri in enumerate(ctx.flow.match.sip_uri):
        reason = sip_uri_problem(uri) if _literal(uri) is not None else None
        if reason:
            yield _sip_diag(ctx, ctx.locate(("match", "sip_uri", i)), "match.sip_uri", uri, reason)
    for state in ctx.flow.states.values():
        action = state.action
        if isinstance(action, m.DialOut):
            field, value, sip = "to", action.to, is_sip(action.to)
        elif isinstance(action, m.Transfer) and action.target_kind != "room":
            field, value = action.target_kind, action.target
            sip = action.target_kind == "sip"
        elif isinstance(action, m.Refer):
            field, value, sip = "to", action.to, True
        else:
            continue
        if _literal(value) is None:
            continue
        loc = ctx.locate(ctx.state_path(state, field))
        where = f"state {state.name!r}: {state.kind}.{field}"
        if not sip:
            if not is_e164(value):
                yield _phone_diag(ctx, loc, where, value)
            continue
        reason = sip_uri_problem(value.strip())
        if reason is None:
            continue
        hint = None
        if isinstance(action, m.Refer) and not is_sip(value):
            hint = f"refer hands a SIP call to a SIP URI: write {_SIP_FORM}"
            if is_e164(value) or normalise_phone(value):
                hint = "refer cannot send a call to a phone number; use transfer: {phone: ...}."
        yield _sip_diag(ctx, loc, where, value, reason, hint)


@rule
def refer_targets(ctx: CheckContext) -> Iterator[Diagnostic]:
    """sipRefer needs both ends outside Daily's SIP network, so never refer to *.sip.daily.co."""
    for state, action in _actions(ctx, m.Refer):
        # The user part may be a template; the host is what decides, and it is often literal.
        host = sip_host(action.to) if is_sip(action.to) else ""
        if host and not is_template(host) and in_daily_sip_network(host):
            yield ctx.error(
                "refer-to-daily",
                ctx.locate(ctx.state_path(state, "to")),
                f"state {state.name!r} refers the call to {host!r}, inside Daily's SIP network: "
                "sipRefer needs both ends outside it",
                "To move the call to another Daily room use transfer: {room: <name>}; "
                "refer is for handing the call back to a PBX or carrier.",
            )


# --- Legs -------------------------------------------------------------------------------------


def _dial_outs(ctx: CheckContext) -> dict[str, list[str]]:
    """Leg name -> the ``to`` of every dial_out that creates it."""
    legs: dict[str, list[str]] = {}
    for flow in related_flows(ctx):
        for state in flow.states.values():
            if isinstance(state.action, m.DialOut):
                legs.setdefault(state.action.leg, []).append(state.action.to)
    return legs


_LEG_VERBS = {"send_dtmf": "sends DTMF on", "stop_dial_out": "stops", "transfer": "transfers"}


@rule
def legs(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Legs exist before they are used, and only SIP legs are referred."""
    created = _dial_outs(ctx)
    known = sorted({CALLER, *created})
    for state in ctx.flow.states.values():
        action = state.action
        if not isinstance(action, (m.SendDtmf, m.StopDialOut, m.Transfer, m.Refer)):
            continue
        path = ctx.state_path(state, "leg")
        written = path in ctx.doc.values
        leg = f"{action.leg!r}" + ("" if written else " (the default leg)")
        if action.leg != CALLER and action.leg not in created:
            yield ctx.error(
                "unknown-leg",
                ctx.locate(path),
                f"state {state.name!r} {_LEG_VERBS.get(state.kind, 'refers')} leg {leg}, "
                "but no dial_out creates it",
                did_you_mean(action.leg, known)
                or f"Legs of this call: {', '.join(known)}. Set leg: to one of them, or "
                f"dial out with leg: {action.leg} first.",
            )
        elif isinstance(action, m.Refer) and not _sip_leg(ctx, action.leg, created):
            what = "a phone call" if action.leg == CALLER else "dialled to a phone number"
            yield ctx.error(
                "refer-from-non-sip",
                ctx.locate(path),
                f"state {state.name!r} refers leg {leg}, which is {what}: "
                "sipRefer works only on SIP legs",
                "Use transfer (sipCallTransfer) to move a phone leg; refer needs a call that "
                "arrived over SIP (match sip_uri or sip_headers) or a dial_out to a sip: URI.",
            )


def _sip_leg(ctx: CheckContext, leg: str, created: dict[str, list[str]]) -> bool:
    """False only when the leg is certainly a phone (PSTN) leg."""
    if leg == CALLER:
        match = ctx.flow.match
        return not match.dialin or bool(match.sip_uri) or bool(match.sip_headers)
    return any(_literal(to) is None or is_sip(to) for to in created.get(leg, ()))


# --- DTMF -------------------------------------------------------------------------------------


@rule
def send_dtmf(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Tones are ones Daily can send, at most 20, each 50 ms to 2 s long."""
    for state, action in _actions(ctx, m.SendDtmf):
        tones = _literal(action.tones)
        if tones is not None:
            loc = ctx.locate(ctx.state_path(state, "tones"))
            bad = sorted({c for c in tones if c not in DTMF_TONES})
            if bad or not tones:
                shown = ", ".join(repr(c) for c in bad)
                hint = "Tones are 0-9, A-D, * and #."
                if any(c in "abcd" for c in bad):
                    hint += " Write A-D in upper case."
                if any(c in ",w" for c in bad):
                    hint += " For a pause, send the tones in two states with a wait between."
                what = f"{shown} {'is not a DTMF tone' if len(bad) == 1 else 'are not DTMF tones'}"
                yield ctx.error(
                    "invalid-dtmf",
                    loc,
                    f"state {state.name!r} sends {tones!r}: {what if bad else 'no tones'}",
                    hint,
                )
            elif len(tones) > MAX_TONES:
                yield ctx.error(
                    "invalid-dtmf",
                    loc,
                    f"state {state.name!r} sends {len(tones)} tones; Daily sends at most "
                    f"{MAX_TONES} at a time",
                    "Split them over two send_dtmf states chained with on: {sent: <next>}.",
                )
        low, high = DIGIT_MS
        if not low <= action.digit_duration_ms <= high:
            yield ctx.error(
                "digit-duration",
                ctx.locate(ctx.state_path(state, "digit_duration")),
                f"state {state.name!r} plays each tone for {action.digit_duration_ms}ms; "
                f"Daily accepts {low}ms to {high}ms",
                "Most systems hear tones of 100ms to 500ms reliably; the default is 500ms.",
            )


# --- Schedules --------------------------------------------------------------------------------


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _zone_hint(name: str) -> str:
    by_lower = {z.lower(): z for z in _zones()}
    if name.lower() in by_lower:
        return f"Zone names are case-sensitive: write {by_lower[name.lower()]!r}."
    close = did_you_mean(name, _zones()) if "/" in name else None
    return close or (
        "Use an IANA zone name such as 'Europe/London' or 'America/New_York', "
        "not an abbreviation like PST or a UTC offset."
    )


def zone_known(name: str) -> bool:
    """True for an IANA time zone name, spelt exactly."""
    if name in _zones():
        return True
    if name.lower() in {z.lower() for z in _zones()}:
        return False  # a case variant that a case-insensitive file system would still load
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@rule
def schedules(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Opening hours mean nothing without the time zone they are kept in."""
    for state, action in _actions(ctx, m.Schedule):
        if action.timezone is None:
            yield ctx.error(
                "schedule-no-timezone",
                ctx.locate(ctx.state_path(state), key=True),
                f"state {state.name!r} has opening hours but no timezone",
                "Add timezone: <IANA zone>, e.g. Europe/London: otherwise the server's own "
                "clock would decide when callers find you open.",
            )
        elif _literal(action.timezone) is not None and not zone_known(action.timezone):
            yield ctx.error(
                "invalid-timezone",
                ctx.locate(ctx.state_path(state, "timezone")),
                f"state {state.name!r} uses the time zone {action.timezone!r}, "
                "which is not an IANA time zone",
                _zone_hint(action.timezone),
            )


# --- HTTP -------------------------------------------------------------------------------------


@rule
def http_hosts(ctx: CheckContext) -> Iterator[Diagnostic]:
    """An http state reaches only the flow's allowed hosts; the runtime enforces the same list."""
    allowed = ctx.flow.allowed_hosts
    for state, action in _actions(ctx, m.Http):
        loc = ctx.locate(ctx.state_path(state, "url"))
        cut = min(
            (i for i in (action.url.find("{{"), action.url.find("{%")) if i >= 0), default=None
        )
        scheme, host = url_scheme_host(action.url, literal_until=cut)
        where = f"state {state.name!r} calls {action.url!r}"
        if host is None:
            yield ctx.error(
                "http-host-not-allowed",
                loc,
                f"{where}, whose host comes from a template",
                "Write the scheme and host literally (https://crm.example.com/...) and template "
                "only the path or query: the host is checked against allowed_hosts.",
            )
        elif scheme not in ("https", "http") or not host:
            yield ctx.error(
                "http-host-not-allowed",
                loc,
                f"{where}, which is not an http or https URL",
                "Start the URL with https:// and a host name.",
            )
        elif not allowed:
            yield ctx.error(
                "http-host-not-allowed",
                loc,
                f"{where}, but the flow allows no hosts",
                f"Add allowed_hosts: [{host}] at the top of the flow.",
            )
        elif not host_allowed(host, allowed):
            # A typo in the URL is likelier than in the list; wildcards are no spelling to match.
            exact = [h for h in allowed if not h.startswith("*.")]
            yield ctx.error(
                "http-host-not-allowed",
                loc,
                f"{where}: the host {host!r} is not in allowed_hosts",
                did_you_mean(host, exact)
                or f"Add {host!r} to allowed_hosts, which lists: {', '.join(allowed)}.",
            )


# --- Collect ----------------------------------------------------------------------------------


@rule
def collect_settings(ctx: CheckContext) -> Iterator[Diagnostic]:
    """Timers that contradict each other, and patterns or digit counts no input can satisfy."""
    for state, action in _actions(ctx, m.Collect):
        path = ctx.state_path(state, "timeouts")
        first, inter, total = action.first_digit, action.inter_digit, action.total
        if inter >= first:
            at = "inter_digit" if (*path, "inter_digit") in ctx.doc.values else "first_digit"
            yield ctx.warning(
                "timeout-order",
                ctx.locate((*path, at)),
                f"state {state.name!r} waits {format_duration(inter)} between keys but only "
                f"{format_duration(first)} for the first key",
                "Give the caller longer to start (first_digit) than between keys (inter_digit), "
                "e.g. first_digit: 5s, inter_digit: 3s.",
            )
        if total is not None and total < first:
            yield ctx.warning(
                "timeout-order",
                ctx.locate((*path, "total")),
                f"state {state.name!r} allows {format_duration(total)} in total, less than the "
                f"{format_duration(first)} it waits for the first key",
                "Make total longer than first_digit plus the time to type every digit.",
            )
        if action.max_digits < action.min_digits:
            yield ctx.error(
                "invalid-pattern",
                ctx.locate(ctx.state_path(state, "max_digits")),
                f"state {state.name!r} collects at most {action.max_digits} digits but at "
                f"least {action.min_digits}: no input can be accepted",
                "Make max_digits at least min_digits.",
            )
        pattern = _literal(action.pattern)
        if pattern is not None:
            try:
                re.compile(pattern)
            except (re.error, OverflowError, RecursionError) as exc:
                reason = str(exc)  # re.error says where: "... at position 3"
                yield ctx.error(
                    "invalid-pattern",
                    ctx.locate(ctx.state_path(state, "pattern")),
                    f"state {state.name!r} has the pattern '{pattern}', which is not a valid "
                    f"regular expression: {reason}",
                    "Write a Python regular expression matched against all the digits, "
                    "e.g. '[0-9]{4,6}' or '(0|44)[0-9]+'; in YAML, quote it with single quotes.",
                )
