"""Addresses a flow names: E.164 numbers, SIP URIs and the hosts of HTTP URLs. Pure functions.

The checks use them on literal values before a flow is accepted; the runtime can use the same
functions on rendered templates, so a value means the same thing in both places.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

DAILY_SIP_DOMAIN = "sip.daily.co"
"""Daily's own SIP network: ``sipRefer`` cannot hand a call to a host inside it."""

_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_PHONE_PUNCTUATION = re.compile(r"[\s\-.()/]")
_SCHEME = re.compile(r"^sips?:", re.IGNORECASE)
_ESC = r"%[0-9A-Fa-f]{2}"
# RFC 3261 user part: unreserved, escaped and user-unreserved characters, then an optional
# password. The '@' that follows is what ends it, so ';', '?' and '/' may appear in it.
_USER = re.compile(rf"^(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|{_ESC})+(?::(?:[^@\s:]|{_ESC})*)?$")
_DOMAIN = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)*[A-Za-z](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.?$"
)
_PCHAR = rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|{_ESC})"
_PARAM = re.compile(rf"^{_PCHAR}+(?:={_PCHAR}+)?$")
_HCHAR = rf"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$@]|{_ESC})"
_HEADER = re.compile(rf"^{_HCHAR}+={_HCHAR}*$")


def is_e164(number: str) -> bool:
    """True for ``+`` then 2 to 15 digits, the first not 0."""
    return bool(_E164.match(number))


def normalise_phone(number: str) -> str | None:
    """The E.164 form of a number written with spaces, dashes, dots or brackets, if it has one.

    A leading international prefix ``00`` becomes ``+``. None when the text is already E.164
    or cannot be made so without guessing a country code.
    """
    # "+44 (0)20 ..." marks a trunk 0 that is dialled only inside the country: drop it.
    compact = _PHONE_PUNCTUATION.sub("", number.replace("(0)", ""))
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if is_e164(compact) and compact != number else None


def is_sip(value: str) -> bool:
    """True when the value is meant as a SIP URI (starts with ``sip:`` or ``sips:``)."""
    return bool(_SCHEME.match(value.lstrip()))


def sip_uri_problem(uri: str) -> str | None:
    """Why ``uri`` is not a well-formed ``sip:user@host[:port][;params][?headers]``, or None."""
    scheme = _SCHEME.match(uri)
    if scheme is None:
        return "it does not start with sip: or sips:"
    if any(c.isspace() for c in uri):
        return "it contains a space"
    user, at, rest = uri[scheme.end() :].partition("@")
    if not at:
        return "it has no user part (user@host)"
    if not _USER.match(user):
        return f"the user part {user!r} is empty or has characters that must be %-escaped"
    rest, _, headers = rest.partition("?")
    hostport, *params = rest.split(";")
    host, port = _split_port(hostport)
    if not host:
        return "it has no host after '@'"
    if not _host_ok(host):
        return f"the host {host!r} is not a domain name or an IP address"
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        return f"the port {port!r} is not a number from 1 to 65535"
    for param in params:
        if not _PARAM.match(param):
            return f"the parameter {';' + param!r} is malformed (;name or ;name=value)"
    for header in headers.split("&") if headers else ():
        if not _HEADER.match(header):
            return f"the header {'?' + header!r} is malformed (?name=value&name=value)"
    return None


def sip_host(uri: str) -> str:
    """The host of a SIP URI, lower-cased (empty when there is no ``user@``)."""
    rest = uri[m.end() :] if (m := _SCHEME.match(uri.lstrip())) else uri
    after = rest.partition("@")[2]
    host = re.split(r"[;?]", after, maxsplit=1)[0]
    return _split_port(host)[0].lower().rstrip(".")


def in_daily_sip_network(host: str) -> bool:
    """True for ``sip.daily.co`` and every host below it."""
    host = host.lower().rstrip(".")
    return host == DAILY_SIP_DOMAIN or host.endswith("." + DAILY_SIP_DOMAIN)


def _split_port(hostport: str) -> tuple[str, str | None]:
    if hostport.startswith("["):
        host, _, after = hostport.partition("]")
        return host + "]", after[1:] if after.startswith(":") else (after or None)
    host, colon, port = hostport.partition(":")
    return host, port if colon else None


def _host_ok(host: str) -> bool:
    try:
        if host.startswith("[") and host.endswith("]"):
            ipaddress.IPv6Address(host[1:-1])
            return True
        if host.replace(".", "").isdigit():
            ipaddress.IPv4Address(host)
            return True
    except ValueError:
        return False
    return bool(_DOMAIN.match(host))


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """True when ``host`` is listed, or lies below a ``*.domain`` entry (not the domain itself).

    Comparison ignores case and a trailing dot.
    """
    host = host.lower().rstrip(".")
    for entry in allowed:
        entry = entry.strip().lower().rstrip(".")
        if entry.startswith("*.") and host.endswith(entry[1:]):
            return True
        if host == entry:
            return True
    return False


def url_scheme_host(url: str, *, literal_until: int | None = None) -> tuple[str, str | None]:
    """(scheme, host) of a URL, both lower-cased.

    With ``literal_until`` only ``url[:literal_until]`` is known (a template follows): the host
    is None when it is not complete before that point. The host is "" when the URL has none.
    """
    cut = len(url) if literal_until is None else literal_until
    known = url[:cut].strip()
    scheme, sep, rest = known.partition("://")
    if not sep:
        return ("", "") if cut == len(url) else ("", None)
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=-1)
    if end < 0 and cut < len(url):
        return scheme.lower(), None  # the host runs on into what is not known
    try:
        host = urlsplit(f"{scheme}://{rest if end < 0 else rest[:end]}").hostname
    except ValueError:  # a malformed [IPv6] host or port
        host = ""
    return scheme.lower(), host or ""
