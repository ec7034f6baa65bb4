"""Telephony checks: tones, SIP URIs, phone numbers, legs, refer, schedules, hosts, collect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flowengine.addresses import (
    host_allowed,
    in_daily_sip_network,
    normalise_phone,
    sip_uri_problem,
    url_scheme_host,
)
from flowengine.errors import Diagnostic, Severity
from flowengine.project import validate_paths

WriteFlow = Callable[..., Path]


def flow(*states: str, match: str = '{dialin: ["+14155550100"]}', head: str = "") -> str:
    """A flow whose states s0, s1, ... each hold one action written on one line.

    Routes are left out on purpose: only the code under test is looked at.
    """
    lines = ["name: t", f"match: {match}", head, "start: s0", "states:"]
    for i, action in enumerate(states):
        lines += [f"  s{i}:", f"    {action}"]
    return "\n".join(lines) + "\n"


def found(write_flow: WriteFlow, text: str, code: str) -> list[Diagnostic]:
    report = validate_paths([write_flow(text)])
    assert not [d for d in report.diagnostics if d.code in ("wrong-type", "invalid-value")]
    return [d for d in report.diagnostics if d.code == code]


# --- invalid-dtmf, digit-duration ---------------------------------------------------------

DIAL = 'dial_out: {to: "+14155550123", leg: bank}'


@pytest.mark.parametrize(
    ("tones", "needle"),
    [
        ("12x#", "'x' is not a DTMF tone"),
        ("1a", "'a' is not a DTMF tone"),
        ("1,2w", "are not DTMF tones"),
        ("", "no tones"),
        ("1" * 21, "21 tones"),
    ],
)
def test_bad_tones_are_reported(write_flow: WriteFlow, tones: str, needle: str) -> None:
    diags = found(
        write_flow, flow(DIAL, f'send_dtmf: {{tones: "{tones}", leg: bank}}'), "invalid-dtmf"
    )
    assert len(diags) == 1
    assert needle in diags[0].message
    assert diags[0].severity is Severity.ERROR
    assert diags[0].location.line == 9


@pytest.mark.parametrize("tones", ["0123456789ABCD*#", "1" * 20, "{{ vars.pin }}#", "{{ x }}zz"])
def test_good_or_templated_tones_pass(write_flow: WriteFlow, tones: str) -> None:
    text = flow(DIAL, f'send_dtmf: {{tones: "{tones}", leg: bank}}', head="vars: {pin: '1'}")
    assert found(write_flow, text, "invalid-dtmf") == []


def test_lower_case_tone_hint_says_upper_case(write_flow: WriteFlow) -> None:
    (diag,) = found(write_flow, flow(DIAL, 'send_dtmf: {tones: "1b", leg: bank}'), "invalid-dtmf")
    assert diag.hint is not None
    assert "upper case" in diag.hint


def test_short_form_tones_are_checked_at_the_value(write_flow: WriteFlow) -> None:
    (diag,) = found(write_flow, flow(DIAL, 'send_dtmf: "9x"'), "invalid-dtmf")
    assert (diag.location.line, diag.location.column) == (9, 16)


@pytest.mark.parametrize(
    ("duration", "bad"),
    [("30ms", True), ("2001ms", True), ("3s", True), ("50ms", False), ("2s", False), (None, False)],
)
def test_digit_duration_range(write_flow: WriteFlow, duration: str | None, bad: bool) -> None:
    extra = f", digit_duration: {duration}" if duration else ""
    text = flow(DIAL, f'send_dtmf: {{tones: "1", leg: bank{extra}}}')
    diags = found(write_flow, text, "digit-duration")
    assert bool(diags) is bad
    if bad:
        assert diags[0].location.column == 56


# --- invalid-sip-uri, invalid-phone-number -------------------------------------------------

BAD_URIS = [
    ("sip:pbx.example.com", "no user part"),
    ("sip:queue@", "no host"),
    ("sip:que ue@pbx.example.com", "space"),
    ("sip:queue@pbx_example.com", "not a domain name"),
    ("sip:queue@999.1.1.1", "not a domain name"),
    ("sip:queue@pbx.example.com:0", "port"),
    ("sip:queue@pbx.example.com:70000", "port"),
    ("sip:queue@pbx.example.com;", "parameter"),
    ("sip:queue@pbx.example.com?X-Account", "header"),
    ("sip:@pbx.example.com", "user part"),
    ("pbx.example.com", "does not start with sip:"),
]
GOOD_URIS = [
    "sip:queue@pbx.example.com",
    "SIP:queue@PBX.example.com",
    "sips:+14155550100@carrier.example.net:5061;transport=tls",
    "sip:queue@10.0.0.1",
    "sip:queue@[2001:db8::1]:5060",
    "sip:queue@pbx.example.com?X-Account=42&X-Lang=fr",
    "sip:queue%20a@pbx.example.com;user=phone",
]


@pytest.mark.parametrize(("uri", "needle"), BAD_URIS)
def test_sip_uri_problems(uri: str, needle: str) -> None:
    problem = sip_uri_problem(uri)
    assert problem is not None
    assert needle in problem


@pytest.mark.parametrize("uri", GOOD_URIS)
def test_well_formed_sip_uris(uri: str) -> None:
    assert sip_uri_problem(uri) is None


@pytest.mark.parametrize(
    "action",
    [
        'dial_out: {to: "sip:pbx.example.com"}',
        'transfer: {sip: "sip:queue@"}',
        'transfer: {sip: "pbx.example.com"}',
        'refer: {to: "sip:a b@pbx.example.com"}',
    ],
)
def test_sip_targets_are_checked(write_flow: WriteFlow, action: str) -> None:
    diags = found(
        write_flow, flow(action, match='{sip_uri: ["sip:in@pbx.example.com"]}'), "invalid-sip-uri"
    )
    assert len(diags) == 1
    assert "state 's0'" in diags[0].message


def test_match_sip_uri_is_checked(write_flow: WriteFlow) -> None:
    text = flow("hangup: {}", match='{sip_uri: ["sip:in@pbx.example.com", "sip:in@"]}')
    (diag,) = found(write_flow, text, "invalid-sip-uri")
    assert diag.message.startswith("match.sip_uri 'sip:in@'")


def test_refer_to_a_phone_number_is_not_a_sip_uri(write_flow: WriteFlow) -> None:
    text = flow('refer: {to: "+14155550199"}', match='{sip_uri: ["sip:in@pbx.example.com"]}')
    (diag,) = found(write_flow, text, "invalid-sip-uri")
    assert diag.hint is not None
    assert "transfer" in diag.hint


@pytest.mark.parametrize(
    "action",
    [
        *(f'dial_out: {{to: "{u}"}}' for u in GOOD_URIS),
        'dial_out: {to: "sip:{{ vars.ext }}@pbx.example.com"}',
        'transfer: {sip: "{{ vars.pbx }}"}',
        'refer: {to: "{{ vars.pbx }}"}',
        'transfer: {room: "sales"}',
    ],
)
def test_good_or_templated_sip_targets_pass(write_flow: WriteFlow, action: str) -> None:
    text = flow(action, head="vars: {ext: '1', pbx: 'sip:q@pbx.example.com'}")
    assert found(write_flow, text, "invalid-sip-uri") == []


@pytest.mark.parametrize(
    ("number", "hint"),
    [
        ("+1 415 555 0123", "'+14155550123'"),
        ("+1 (415) 555-0123", "'+14155550123'"),
        ("0044 20 7946 0000", "'+442079460000'"),
        ("14155550123", "country code"),
        ("+0123", "country code"),
        ("+1", "country code"),
        ("+1234567890123456", "country code"),
        ("tel:+14155550123", "country code"),
        ("agent@pbx.example.com", "'sip:agent@pbx.example.com'"),
    ],
)
def test_bad_numbers_are_reported_with_a_hint(
    write_flow: WriteFlow, number: str, hint: str
) -> None:
    (diag,) = found(write_flow, flow(f'dial_out: {{to: "{number}"}}'), "invalid-phone-number")
    assert diag.hint is not None
    assert hint in diag.hint
    assert "dial_out.to" in diag.message


def test_transfer_phone_and_match_dialin_are_checked(write_flow: WriteFlow) -> None:
    text = flow('transfer: {phone: "415-555-0123"}', match='{dialin: ["+14155550100", "0800"]}')
    diags = found(write_flow, text, "invalid-phone-number")
    assert [d.location.line for d in diags] == [2, 7]


@pytest.mark.parametrize("number", ["+14155550123", "+12", "+123456789012345", "{{ vars.n }}"])
def test_good_or_templated_numbers_pass(write_flow: WriteFlow, number: str) -> None:
    text = flow(
        f'dial_out: {{to: "{number}"}}', f'transfer: {{phone: "{number}"}}', head="vars: {n: '+1'}"
    )
    assert found(write_flow, text, "invalid-phone-number") == []


def test_normalise_phone() -> None:
    assert normalise_phone("+44 (0)20 7946 0000") == "+442079460000"
    assert normalise_phone("+14155550123") is None  # already E.164: nothing to suggest
    assert normalise_phone("020 7946 0000") is None  # no country code: no guess


# --- refer-to-daily, refer-from-non-sip -----------------------------------------------------

SIP_IN = '{sip_uri: ["sip:in@pbx.example.com"]}'


@pytest.mark.parametrize(
    ("to", "bad"),
    [
        ("sip:room@sip.daily.co", True),
        ("sip:room@acme.sip.daily.co", True),
        ("sip:room@ACME.SIP.DAILY.CO:5060", True),
        ("sip:{{ vars.room }}@acme.sip.daily.co", True),
        ("sip:queue@pbx.example.com", False),
        ("sip:room@mysip.daily.co", False),
        ("sip:room@sip.daily.co.example.com", False),
        ("{{ vars.pbx }}", False),
    ],
)
def test_refer_to_daily(write_flow: WriteFlow, to: str, bad: bool) -> None:
    text = flow(f'refer: {{to: "{to}"}}', match=SIP_IN, head="vars: {room: r, pbx: p}")
    assert bool(found(write_flow, text, "refer-to-daily")) is bad


def test_daily_network() -> None:
    assert in_daily_sip_network("sip.daily.co.")
    assert not in_daily_sip_network("daily.co")


@pytest.mark.parametrize(
    ("match", "bad"),
    [
        ('{dialin: ["+14155550100"]}', True),
        ('{dialin: ["+14155550100"], sip_uri: ["sip:in@pbx.example.com"]}', False),
        ('{dialin: ["+14155550100"], sip_headers: {X-Route: pbx}}', False),
        (SIP_IN, False),
        ("{}", False),
    ],
)
def test_refer_on_the_caller_leg(write_flow: WriteFlow, match: str, bad: bool) -> None:
    text = flow('refer: {to: "sip:q@pbx.example.com"}', match=match)
    diags = found(write_flow, text, "refer-from-non-sip")
    assert bool(diags) is bad
    if bad:
        assert "'caller' (the default leg)" in diags[0].message


@pytest.mark.parametrize(
    ("to", "bad"),
    [("+14155550123", True), ("sip:agent@pbx.example.com", False), ("{{ vars.to }}", False)],
)
def test_refer_on_a_dial_out_leg(write_flow: WriteFlow, to: str, bad: bool) -> None:
    text = flow(
        f'dial_out: {{to: "{to}", leg: agent}}',
        'refer: {to: "sip:q@pbx.example.com", leg: agent}',
        match=SIP_IN,
        head="vars: {to: x}",
    )
    diags = found(write_flow, text, "refer-from-non-sip")
    assert bool(diags) is bad
    if bad:
        assert (diags[0].location.line, diags[0].location.column) == (9, 47)


# --- unknown-leg ----------------------------------------------------------------------------


def test_unknown_leg_with_a_misspelling(write_flow: WriteFlow) -> None:
    text = flow(DIAL, 'send_dtmf: {tones: "1", leg: bnak}', "stop_dial_out: {leg: bank}")
    (diag,) = found(write_flow, text, "unknown-leg")
    assert "'bnak'" in diag.message
    assert diag.hint == "Did you mean 'bank'?"


def test_default_leg_that_no_dial_out_creates(write_flow: WriteFlow) -> None:
    (diag,) = found(write_flow, flow(DIAL, "stop_dial_out: {}"), "unknown-leg")
    assert "'dialout' (the default leg)" in diag.message
    assert diag.hint is not None
    assert "bank, caller" in diag.hint


@pytest.mark.parametrize(
    "action",
    [
        'transfer: {phone: "+14155550123"}',
        'transfer: {phone: "+14155550123", leg: caller}',
        "stop_dial_out: {leg: bank}",
        'send_dtmf: {tones: "1", leg: bank}',
    ],
)
def test_known_legs_pass(write_flow: WriteFlow, action: str) -> None:
    assert found(write_flow, flow(DIAL, action), "unknown-leg") == []


def test_default_dial_out_leg_is_known(write_flow: WriteFlow) -> None:
    text = flow('dial_out: {to: "+14155550123"}', 'send_dtmf: "1"', "stop_dial_out:")
    assert found(write_flow, text, "unknown-leg") == []


def test_legs_of_a_calling_flow_are_known_in_the_sub_flow(write_flow: WriteFlow) -> None:
    write_flow(flow(DIAL, "call: {flow: sub}").replace("name: t", "name: main"), "main.yaml")
    sub = write_flow(
        "name: sub\nstart: s\nstates:\n  s:\n    send_dtmf: {tones: '1', leg: bank}\n"
        "    on: {sent: r, failed: r}\n  r:\n    return: {}\n",
        "sub.yaml",
    )
    assert [d for d in validate_paths([sub]).diagnostics if d.code == "unknown-leg"] == []


# --- schedule-no-timezone, invalid-timezone -----------------------------------------------

HOURS = 'hours: {mon-fri: "09:00-17:00"}'


def test_schedule_without_timezone_points_at_the_key(write_flow: WriteFlow) -> None:
    (diag,) = found(write_flow, flow(f"schedule: {{{HOURS}}}"), "schedule-no-timezone")
    assert (diag.location.line, diag.location.column) == (7, 5)


@pytest.mark.parametrize(
    ("zone", "hint"),
    [
        ("europe/london", "case-sensitive: write 'Europe/London'"),
        ("Europe/Londn", "Did you mean 'Europe/London'?"),
        ("PST", "IANA zone name"),
        ("UTC+1", "IANA zone name"),
    ],
)
def test_invalid_timezone(write_flow: WriteFlow, zone: str, hint: str) -> None:
    (diag,) = found(
        write_flow, flow(f"schedule: {{timezone: '{zone}', {HOURS}}}"), "invalid-timezone"
    )
    assert diag.hint is not None
    assert hint in diag.hint


@pytest.mark.parametrize("zone", ["Europe/London", "America/Los_Angeles", "UTC", "{{ vars.tz }}"])
def test_valid_or_templated_timezone(write_flow: WriteFlow, zone: str) -> None:
    text = flow(f"schedule: {{timezone: '{zone}', {HOURS}}}", head="vars: {tz: UTC}")
    assert found(write_flow, text, "invalid-timezone") == []
    assert found(write_flow, text, "schedule-no-timezone") == []


# --- http-host-not-allowed ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "hosts", "needle"),
    [
        ("https://crm.example.org/a", '["*.example.com"]', "not in allowed_hosts"),
        ("https://example.com/a", '["*.example.com"]', "not in allowed_hosts"),
        ("https://crm.example.com/a", "[]", "allows no hosts"),
        ("{{ vars.base }}/a", '["crm.example.com"]', "from a template"),
        ("https://{{ vars.base }}.example.com/a", '["*.example.com"]', "from a template"),
        ("https://crm.example.com{{ vars.base }}", '["crm.example.com"]', "from a template"),
        ("ftp://crm.example.com/a", '["crm.example.com"]', "not an http or https URL"),
        ("crm.example.com/a", '["crm.example.com"]', "not an http or https URL"),
    ],
)
def test_hosts_not_allowed(write_flow: WriteFlow, url: str, hosts: str, needle: str) -> None:
    text = flow(f'http: {{url: "{url}"}}', head=f"allowed_hosts: {hosts}\nvars: {{base: x}}")
    (diag,) = found(write_flow, text, "http-host-not-allowed")
    assert needle in diag.message


def test_misspelt_host_gets_a_suggestion(write_flow: WriteFlow) -> None:
    text = flow('http: {url: "https://crm.exmaple.com/a"}', head="allowed_hosts: [crm.example.com]")
    (diag,) = found(write_flow, text, "http-host-not-allowed")
    assert diag.hint == "Did you mean 'crm.example.com'?"


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("https://crm.example.com/a", '["*.example.com"]'),
        ("https://a.b.example.com/a", '["*.example.com"]'),
        ("https://CRM.Example.com/a", '["crm.example.com"]'),
        ("http://crm.example.com:8443/a?x=1", '["crm.example.com"]'),
        ("https://crm.example.com/accounts/{{ vars.base }}", '["crm.example.com"]'),
        ("https://crm.example.com?q={{ vars.base }}", '["crm.example.com"]'),
    ],
)
def test_allowed_hosts_pass(write_flow: WriteFlow, url: str, hosts: str) -> None:
    text = flow(f'http: {{url: "{url}"}}', head=f"allowed_hosts: {hosts}\nvars: {{base: x}}")
    assert found(write_flow, text, "http-host-not-allowed") == []


def test_host_helpers() -> None:
    assert host_allowed("api.example.com.", ["*.Example.com"])
    assert not host_allowed("example.com", ["*.example.com"])
    assert not host_allowed("badexample.com", ["*.example.com"])
    assert url_scheme_host("https://u:p@h.example.com:1/x") == ("https", "h.example.com")
    assert url_scheme_host("https://h.example.com/{{ x }}", literal_until=22) == (
        "https",
        "h.example.com",
    )


# --- timeout-order, invalid-pattern ---------------------------------------------------------


def collect(extra: str) -> str:
    return flow(
        f"collect: {{prompt: p, into: pin, max_digits: 4{extra}}}",
        head='prompts: {p: "Enter your PIN."}',
    )


@pytest.mark.parametrize(
    ("timeouts", "count"),
    [
        ("{inter_digit: 8s}", 1),
        ("{first_digit: 3s, inter_digit: 3s}", 1),
        ("{first_digit: 2s}", 1),
        ("{total: 4s}", 1),
        ("{first_digit: 10s, inter_digit: 10s, total: 5s}", 2),
        ("{}", 0),
        ("{first_digit: 10s, inter_digit: 2s, total: 30s}", 0),
    ],
)
def test_timeout_order(write_flow: WriteFlow, timeouts: str, count: int) -> None:
    diags = found(write_flow, collect(f", timeouts: {timeouts}"), "timeout-order")
    assert len(diags) == count
    assert all(d.severity is Severity.WARNING for d in diags)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (", pattern: '([0-9]'", "not a valid regular expression"),
        (", pattern: '[0-9'", "not a valid regular expression"),
        (", pattern: 'a{99999999999}'", "not a valid regular expression"),
        (", min_digits: 6", "at most 4 digits but at least 6"),
    ],
)
def test_invalid_pattern(write_flow: WriteFlow, extra: str, needle: str) -> None:
    (diag,) = found(write_flow, collect(extra), "invalid-pattern")
    assert needle in diag.message


@pytest.mark.parametrize(
    "extra", [", pattern: '[0-9]{4}'", ", min_digits: 4", ", pattern: '{{ vars.p }}'", ""]
)
def test_valid_pattern(write_flow: WriteFlow, extra: str) -> None:
    assert found(write_flow, collect(extra), "invalid-pattern") == []
