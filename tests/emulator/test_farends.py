"""Far-end scripts as mappings (YAML or JSON): callees, callers, remote IVRs, and their errors."""

from __future__ import annotations

import pytest

from flowengine.emulator import Callee, Caller, FarEnds, Press, RemoteIvr, ScriptError


def test_callee_scripts_read_durations_and_outcomes():
    assert Callee.from_dict({"answer": "2s", "hangup": "1m"}) == Callee.answers(2.0, hangup=60.0)
    assert Callee.from_dict({"busy": "500ms"}) == Callee(outcome="busy", after=0.5)
    assert Callee.from_dict({"fail": 1, "message": "503"}).error_message == "503"
    assert Callee.from_dict({"no_answer": True}).outcome == "no_answer"
    assert Callee.from_dict({}) == Callee.answers()
    assert Callee.from_dict({"answer": True}).after == 0.0
    keys = Callee.from_dict({"keys": [["1s", "1"], {"at": 3, "tones": "#", "gap": "100ms"}]})
    assert keys.keys == (Press(1.0, "1"), Press(3.0, "#", 0.1))


def test_callee_with_an_ivr():
    callee = Callee.from_dict(
        {"answer": 1, "ivr": {"start": "root", "menus": {"root": {"1": "hangup"}}}}
    )
    assert callee.ivr == RemoteIvr({"root": {"1": "hangup"}}, start="root")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"answer": 1, "busy": 1}, "one of"),
        ({"answr": 1}, "answr"),
        ({"answer": "soon"}, "not a duration"),
        ({"answer": -1}, "negative"),
        ({"answer": [1]}, "expected a duration"),
        ({"keys": [["1s", "x"]]}, "0-9 A-D"),
        ({"keys": "1"}, "list"),
        ({"keys": [[1]]}, "[time, keys]"),
        ({"ivr": {"menus": {"main": {"1": "nowhere"}}}}, "nowhere"),
        ({"ivr": {"start": "x", "menus": {"main": {}}}}, "ivr.start"),
        ({"ivr": {"menus": 3}}, "ivr.menus"),
    ],
)
def test_bad_callee_scripts_say_what_is_wrong(data, needle):
    with pytest.raises(ScriptError, match=None) as info:
        Callee.from_dict(data)
    assert needle in str(info.value)


def test_caller_scripts():
    caller = Caller.from_dict({"keys": {"2s": "1", "5s": "42#"}, "hangup": 30, "via": "sip"})
    assert caller.keys == (Press(2.0, "1"), Press(5.0, "42#"))
    assert (caller.hangup, caller.via, caller.abandon) == (30.0, "sip", None)
    with pytest.raises(ScriptError, match="via"):
        Caller.from_dict({"via": "carrier pigeon"})
    with pytest.raises(ScriptError, match="hangpu"):
        Caller.from_dict({"hangpu": 3})


def test_far_ends_directory_matches_sip_uris_loosely():
    far = FarEnds.from_dict(
        {
            "numbers": {
                "+14155550100": {"busy": 1},
                "SIP:Desk@PBX.example.com": {"no_answer": True},
            },
            "default": {"answer": "3s"},
        }
    )
    assert far.lookup("+14155550100").outcome == "busy"
    assert far.lookup("sip:desk@pbx.example.com;transport=tls?X-a=1").outcome == "no_answer"
    assert far.lookup("+14155550999") == Callee.answers(3.0)
    with pytest.raises(ScriptError, match="colour"):
        FarEnds.from_dict({"colour": "red"})
    with pytest.raises(ScriptError, match="numbers"):
        FarEnds.from_dict({"numbers": ["+1"]})
