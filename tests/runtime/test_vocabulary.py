"""Events and commands as data: names, the busy rule, JSON forms, idempotency keys."""

from __future__ import annotations

import dataclasses

import pytest

from flowengine.runtime import commands as c
from flowengine.runtime import events as ev
from flowengine.runtime.commands import COMMAND_TYPES, command_from_dict

from .test_session import RESUME, SCRIPT, fake, play


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("dialin-connected", "dialin.connected"),
        ("dialout-answered", "dialout.answered"),
        ("participant-left", "participant.left"),
        ("dtmf-event", "dtmf"),
        ("app-message", "app-message"),
        ("calltransfer.initiated", "calltransfer.initiated"),
        ("meeting-ended", "meeting-ended"),
    ],
)
def test_daily_names_are_normalised(raw: str, name: str) -> None:
    assert ev.normalise_name(raw) == name


def test_webhook_envelope() -> None:
    event = ev.from_webhook(
        {"type": "dialout.answered", "id": "x", "payload": {"session_id": "s1"}, "event_ts": 1.0}
    )
    assert event == ev.Event("dialout.answered", {"session_id": "s1"})
    assert event.session_id == "s1"
    assert ev.Event("x", {"sessionId": "s2"}).session_id == "s2"
    assert ev.Event.from_dict(event.to_dict()) == event


@pytest.mark.parametrize(
    ("payload", "busy"),
    [
        ({"error_msg": "486 Busy Here"}, True),
        ({"message": "User BUSY"}, True),
        ({"sip_code": 600}, True),
        ({"error": "failed", "data": {"reason": "busy"}}, True),
        ({"error_msg": "503 Service Unavailable"}, False),
        ({"error_msg": "4860 things"}, False),
        ({}, False),
    ],
)
def test_the_busy_rule(payload: dict[str, object], busy: bool) -> None:
    assert ev.is_busy(payload) is busy


SAMPLES = [
    c.Answer(key="k:1:0", call_id="k", dialin_call_id="a", call_domain="b", sip_uri="sip:r@h"),
    c.Play(key="k:1:1", call_id="k", prompt="p", locale="en-US", text="Hi", barge_in=True),
    c.Say(key="k:1:2", call_id="k", text="Hi", voice="v"),
    c.StopPlay(key="k:1:3", call_id="k"),
    c.StartDialOut(key="k:1:4", call_id="k", leg="agent", settings={"phoneNumber": "+1415"}),
    c.StopDialOut(key="k:1:5", call_id="k", leg="agent", session_id="s"),
    c.SendDtmf(key="k:1:6", call_id="k", leg="agent", session_id="s", tones="1#", method="auto"),
    c.SipCallTransfer(key="k:1:7", call_id="k", leg="caller", session_id="s", to_end_point="+1"),
    c.SipRefer(key="k:1:8", call_id="k", leg="caller", session_id="s", to_end_point="sip:a@b"),
    c.HttpRequest(key="k:1:9", call_id="k", method="GET", url="https://x", params={"a": 1}),
    c.StartTimer(key="k:1:10", call_id="k", timer="t", purpose="ring", seconds=1, deadline=2),
    c.CancelTimer(key="k:1:11", call_id="k", timer="t"),
    c.Hangup(key="k:1:12", call_id="k", reason="done"),
]


def test_every_command_type_has_a_sample() -> None:
    assert {type(s) for s in SAMPLES} == set(COMMAND_TYPES.values())


@pytest.mark.parametrize("command", SAMPLES, ids=lambda s: s.kind)
def test_commands_round_trip_through_json(command: c.Command) -> None:
    assert command_from_dict(command.to_dict()) == command


def test_daily_field_names() -> None:
    transfer = SAMPLES[7]
    assert transfer.to_dict()["toEndPoint"] == "+1"
    assert transfer.daily_body() == {"sessionId": "s", "toEndPoint": "+1"}
    assert SAMPLES[6].daily_body() == {"sessionId": "s", "tones": "1#", "method": "auto"}
    assert SAMPLES[4].to_dict()["phoneNumber"] == "+1415"
    assert SAMPLES[10].internal
    assert not SAMPLES[9].internal


def test_commands_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SAMPLES[0].key = "other"  # type: ignore[misc]


def test_idempotency_keys_are_deterministic_and_unique(flow, sim) -> None:
    f = flow(RESUME)
    runs = []
    for _ in range(2):
        s = sim(f, telephony=fake())
        for step in SCRIPT:
            play(s, step)
        runs.append([c.key for c in s.issued])
    assert runs[0] == runs[1]
    assert len(runs[0]) == len(set(runs[0]))
    assert all(k.startswith("sim-1:") and len(k.split(":")) == 3 for k in runs[0])
