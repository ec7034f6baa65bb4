"""Request dataclasses: Daily's exact bodies, and invalid values refused before sending."""

from __future__ import annotations

import pytest

from flowengine.daily import (
    Codecs,
    DailyRequestError,
    DialOutRequest,
    MeetingTokenSpec,
    RoomSpec,
    SendDtmfRequest,
    SipCallTransferRequest,
    SipConfig,
    SipReferRequest,
)
from flowengine.daily.models import check_room_name


def test_sip_config_defaults_follow_daily():
    assert SipConfig().to_json() == {
        "display_name": "sw-sip-dialin",
        "video": False,
        "sip_mode": "dial-in",
        "num_endpoints": 1,
    }


def test_sip_config_with_provider_and_codecs():
    sip = SipConfig(provider="daily", codecs=Codecs(audio=("PCMU", "PCMA")))
    assert sip.to_json()["provider"] == "daily"
    assert sip.to_json()["codecs"] == {"audio": ["PCMU", "PCMA"]}


def test_public_room_and_token_without_owner():
    assert RoomSpec(privacy="public").to_json() == {"privacy": "public", "properties": {}}
    token = MeetingTokenSpec(room_name="r1", is_owner=False, eject_at_token_exp=True)
    assert token.to_json() == {
        "properties": {"room_name": "r1", "is_owner": False, "eject_at_token_exp": True}
    }


def test_dial_out_to_chooses_sip_or_phone():
    assert DialOutRequest.to("sips:a@b.example").to_json() == {"sipUri": "sips:a@b.example"}
    assert DialOutRequest.to("+442071838750").to_json() == {"phoneNumber": "+442071838750"}


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: DialOutRequest(), "sipUri/phoneNumber"),
        (
            lambda: DialOutRequest(sip_uri="sip:a@b", phone_number="+14155550100"),
            "sipUri/phoneNumber",
        ),
        (lambda: DialOutRequest.to("4155550100"), "phoneNumber"),
        (lambda: DialOutRequest.to("+0155550100"), "phoneNumber"),
        (lambda: DialOutRequest.to("sip:a b@c"), "sipUri"),
        (lambda: DialOutRequest.to("+14155550100", video=True), "video"),
        (lambda: DialOutRequest.to("+14155550100", user_id="u" * 37), "userId"),
        (lambda: DialOutRequest.to("+14155550100", caller_id=" "), "callerId"),
        (lambda: DialOutRequest.to("+14155550100", extension="12 3"), "extension"),
        (
            lambda: DialOutRequest.to("+14155550100", wait_before_extension_dial_sec=61),
            "waitBeforeExtensionDialSec",
        ),
        (lambda: SendDtmfRequest(session_id="s", tones=""), "tones"),
        (lambda: SendDtmfRequest(session_id="s", tones="1" * 21), "tones"),
        (lambda: SendDtmfRequest(session_id="s", tones="12a"), "tones"),
        (lambda: SendDtmfRequest(session_id="", tones="1"), "sessionId"),
        (
            lambda: SendDtmfRequest(session_id="s", tones="1", digit_duration_ms=49),
            "digitDurationMs",
        ),
        (lambda: SendDtmfRequest(session_id="s", tones="1", method="loud"), "method"),  # type: ignore[arg-type]
        (lambda: SipCallTransferRequest(session_id="s", to_end_point="sales"), "toEndPoint"),
        (lambda: SipReferRequest(session_id="s", to_end_point="+14155550100"), "toEndPoint"),
        (lambda: Codecs(audio=("MP3",)), "codecs.audio"),
        (lambda: Codecs(video=("AV1",)), "codecs.video"),
        (lambda: SipConfig(num_endpoints=0), "sip.num_endpoints"),
        (lambda: SipConfig(display_name=""), "sip.display_name"),
        (lambda: RoomSpec(name="call/1"), "room"),
        (lambda: RoomSpec(exp=0), "exp"),
        (lambda: MeetingTokenSpec(room_name=""), "room"),
    ],
)
def test_invalid_values_are_refused_with_the_field_named(build, field):
    with pytest.raises(DailyRequestError) as caught:
        build()
    assert caught.value.field == field
    assert str(caught.value).startswith(f"invalid {field}: ")


def test_all_dtmf_tones_are_accepted():
    assert SendDtmfRequest(session_id="s", tones="0123456789ABCD#*").tones == "0123456789ABCD#*"


@pytest.mark.parametrize("name", ["call-1", "Call_2", "a" * 128])
def test_room_names_in_daily_alphabet_pass(name):
    assert check_room_name(name) == name


@pytest.mark.parametrize("name", ["", "a" * 129, "call.1", "call 1", "../x", "call?x=1", "é"])
def test_room_names_that_could_change_the_path_are_refused(name):
    with pytest.raises(DailyRequestError, match="invalid room"):
        check_room_name(name)
