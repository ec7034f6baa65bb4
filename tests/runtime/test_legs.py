"""answer, dial_out, send_dtmf, stop_dial_out, transfer and refer against the fake Daily."""

from __future__ import annotations

import pytest

from flowengine.runtime import CommandResult, FakeTelephony
from flowengine.runtime.commands import (
    Answer,
    SendDtmf,
    SipCallTransfer,
    SipRefer,
    StartDialOut,
    StopDialOut,
)

from .conftest import kinds

ANSWER = """
name: answer-test
start: welcome
on: {hangup: gone, error: gone}
states:
  welcome:
    answer: {timeout: 10s}
    on: {answered: fine, failed: broken}
  fine:
    end: {}
  broken:
    hangup: {reason: failed}
  gone:
    end: {}
"""


def test_answer_answered(flow, sim) -> None:
    s = sim(flow(ANSWER))
    assert kinds(s.commands) == ["answer"]
    assert s.path == ["welcome", "fine"]
    assert s.session.legs["caller"] == "sim-1-caller"


def test_answer_failed_command(flow, sim) -> None:
    s = sim(flow(ANSWER), telephony=FakeTelephony(answer="failed"))
    assert s.path == ["welcome", "broken"]
    assert s.outcome == "hangup"


def test_answer_dialin_error(flow, sim) -> None:
    s = sim(flow(ANSWER), telephony=FakeTelephony(results={"answer": CommandResult.success()}))
    s.send("dialin.error", session_id="sim-1-caller", error_msg="start-failed")
    assert s.state == "broken"


def test_answer_times_out(flow, sim) -> None:
    s = sim(flow(ANSWER), telephony=FakeTelephony(results={"answer": CommandResult.success()}))
    s.advance(9.9)
    assert s.state == "welcome"
    s.advance(0.1)
    assert s.state == "broken"


def test_pinless_answer_waits_for_dialin_ready(flow, sim) -> None:
    call = {"dialin_call_id": "call-uuid", "call_domain": "domain-uuid"}
    s = sim(flow(ANSWER), call=call)
    assert s.commands == []
    assert s.state == "welcome"
    s.send("dialin.ready", sip_endpoint="room-x@abc.sip.daily.co")
    (answer,) = (c for c in s.commands if isinstance(c, Answer))
    assert answer.daily_body() == {
        "callId": "call-uuid",
        "callDomain": "domain-uuid",
        "sipUri": "sip:room-x@abc.sip.daily.co",
    }
    assert s.state == "fine"


def test_answer_of_a_connected_caller_is_immediate(flow, sim) -> None:
    s = sim(flow(ANSWER), start=False)
    s.send("dialin.connected", session_id="leg-1")
    assert s.state == "_init"
    s.send("start")
    assert s.commands == []
    assert s.path == ["welcome", "fine"]
    assert s.session.legs["caller"] == "leg-1"


DIAL = """
name: dial-test
start: dial
on: {hangup: cleanup, error: cleanup}
vars: {agent: "+14155550123"}
states:
  dial:
    dial_out:
      to: "{{ vars.agent }}"
      leg: agent
      timeout: 20s
      display_name: Support
    on: {answered: tones, no_answer: unanswered, busy: engaged, failed: broken}
  tones:
    send_dtmf: {tones: "12#", leg: agent, method: telephone-event}
    on: {sent: stop, failed: broken}
  stop:
    stop_dial_out: {leg: agent}
    on: {done: fin, failed: broken}
  unanswered:
    hangup: {reason: no_answer}
  engaged:
    hangup: {reason: busy}
  broken:
    hangup: {reason: failed}
  fin:
    end: {}
  cleanup:
    end: {}
"""


def test_dial_out_answered_then_dtmf_then_stop(flow, sim) -> None:
    s = sim(flow(DIAL))
    assert s.path == ["dial", "tones", "stop", "fin"]
    start, dtmf, stop = (
        c for c in s.commands if isinstance(c, (StartDialOut, SendDtmf, StopDialOut))
    )
    assert start.daily_body() == {"phoneNumber": "+14155550123", "displayName": "Support"}
    assert start.leg == "agent"
    assert dtmf.daily_body() == {
        "sessionId": "dialout-1",
        "tones": "12#",
        "method": "telephone-event",
        "digitDurationMs": 500,
    }
    assert stop.daily_body() == {"sessionId": "dialout-1"}
    assert "agent" not in s.session.legs


def test_dial_out_no_answer_stops_the_leg(flow, sim) -> None:
    s = sim(flow(DIAL), telephony=FakeTelephony(dial_out={"agent": "no_answer"}))
    assert s.state == "dial"
    s.advance(19.9)
    assert s.state == "dial"
    new = s.advance(0.1)
    assert s.state == "unanswered"
    assert isinstance(new[0], StopDialOut)
    assert new[0].session_id == "dialout-1"


@pytest.mark.parametrize(("behaviour", "state"), [("busy", "engaged"), ("failed", "broken")])
def test_dial_out_error_before_answer(flow, sim, behaviour: str, state: str) -> None:
    s = sim(flow(DIAL), telephony=FakeTelephony(dial_out=behaviour))
    assert s.path == ["dial", state]


@pytest.mark.parametrize(
    ("error", "state"),
    [("486 Busy Here", "engaged"), ("User busy", "engaged"), ("DIALOUT_IN_PROGRESS", "broken")],
)
def test_dial_out_command_failure(flow, sim, error: str, state: str) -> None:
    fake = FakeTelephony(results={"start_dial_out": CommandResult.failure(error)})
    s = sim(flow(DIAL), telephony=fake)
    assert s.path == ["dial", state]


def test_dial_out_stopped_before_answer_is_failed(flow, sim) -> None:
    s = sim(flow(DIAL), telephony=FakeTelephony(dial_out="no_answer"))
    s.send("dialout.stopped", session_id="dialout-1")
    assert s.state == "broken"


def test_dial_out_to_a_sip_uri(flow, sim) -> None:
    text = DIAL.replace('agent: "+14155550123"', 'agent: "sip:agent@pbx.example.com"')
    s = sim(flow(text))
    start = next(c for c in s.commands if isinstance(c, StartDialOut))
    assert start.settings["sipUri"] == "sip:agent@pbx.example.com"


def test_dial_out_event_before_the_command_result_is_this_legs(flow, sim) -> None:
    fake = FakeTelephony(results={"start_dial_out": CommandResult.success()})
    s = sim(flow(DIAL), telephony=fake)
    s.send("dialout.connected", session_id="early-1")
    s.send("dialout.answered", session_id="early-1")
    assert s.state == "stop" or s.path[:2] == ["dial", "tones"]
    assert any(isinstance(c, SendDtmf) and c.session_id == "early-1" for c in s.commands)


def test_ring_timeout_before_the_session_id_stops_the_leg_later(flow, sim) -> None:
    fake = FakeTelephony(results={"start_dial_out": CommandResult.success()})
    s = sim(flow(DIAL), telephony=fake)
    start = next(c for c in s.commands if isinstance(c, StartDialOut))
    s.advance(20)
    assert s.state == "unanswered"
    assert s.ended
    # the call has ended: the late result is recorded but stops nothing any more
    s.send("command.ok", key=start.key, command="start_dial_out", leg="agent", data={})
    assert s.trace[-1].note == "the call has ended"


def test_late_session_id_of_an_abandoned_leg_is_stopped(flow, sim) -> None:
    text = DIAL.replace("no_answer: unanswered", "no_answer: pause")
    text += "  pause:\n    wait: {for: 60s}\n    on: {done: fin}\n"
    fake = FakeTelephony(results={"start_dial_out": CommandResult.success()})
    s = sim(flow(text), telephony=fake)
    start = next(c for c in s.commands if isinstance(c, StartDialOut))
    s.advance(20)
    assert s.state == "pause"
    new = s.send(
        "command.ok", key=start.key, command="start_dial_out", leg="agent", data={"sessionId": "z"}
    )
    assert [(c.kind, c.session_id) for c in new if isinstance(c, StopDialOut)] == [
        ("stop_dial_out", "z")
    ]


def test_send_dtmf_failed(flow, sim) -> None:
    s = sim(flow(DIAL), telephony=FakeTelephony(send_dtmf="failed"))
    assert s.path == ["dial", "tones", "broken"]


def test_stop_dial_out_failed(flow, sim) -> None:
    s = sim(flow(DIAL), telephony=FakeTelephony(stop_dial_out="failed"))
    assert s.path == ["dial", "tones", "stop", "broken"]


LEGLESS = """
name: legless
start: dial
on: {hangup: fin, error: fin}
states:
  dial:
    dial_out: {to: "+14155550123", leg: agent}
    on: {answered: fin, failed: tones}
  tones:
    send_dtmf: {tones: "1", leg: agent}
    on: {sent: fin, failed: stop}
  stop:
    stop_dial_out: {leg: agent}
    on: {done: fin}
  fin:
    end: {}
"""


def test_a_leg_that_is_not_up(flow, sim) -> None:
    s = sim(flow(LEGLESS), telephony=FakeTelephony(dial_out="failed"))
    assert s.path == ["dial", "tones", "stop", "fin"]
    assert kinds(s.commands) == ["start_dial_out"]


TRANSFER = """
name: transfer-test
start: xfer
on: {hangup: gone, error: gone}
vars: {room: sales}
states:
  xfer:
    transfer: {%(target)s, timeout: 30s}
    on: {answered: fin, failed: broken}
  fin:
    end: {}
  broken:
    hangup: {reason: failed}
  gone:
    hangup: {reason: gone}
"""


def transfer(target: str = 'phone: "+14155550199"') -> str:
    return TRANSFER % {"target": target}


def test_transfer_answered(flow, sim) -> None:
    s = sim(flow(transfer()))
    (xfer,) = s.commands
    assert isinstance(xfer, SipCallTransfer)
    assert xfer.daily_body() == {"sessionId": "sim-1-caller", "toEndPoint": "+14155550199"}
    assert s.path == ["xfer", "fin"]
    assert s.outcome == "end"
    assert any(t.event.name == "dialin.stopped" and t.target == "xfer" for t in s.trace)


def test_transfer_to_a_room(flow, sim) -> None:
    s = sim(flow(transfer('room: "{{ vars.room }}"')))
    (xfer,) = s.commands
    assert xfer.room == "sales"
    assert xfer.to_end_point == "sip:sales@example.sip.daily.co"


def test_transfer_to_a_room_without_a_known_sip_host(flow, sim) -> None:
    s = sim(flow(transfer('room: "{{ vars.room }}"')), room_sip_domain=None)
    (xfer,) = s.commands
    assert xfer.room == "sales"
    assert xfer.to_end_point is None


def test_transfer_failed(flow, sim) -> None:
    s = sim(flow(transfer()), telephony=FakeTelephony(transfer="failed"))
    assert s.path == ["xfer", "broken"]


def test_transfer_times_out(flow, sim) -> None:
    fake = FakeTelephony(results={"sip_call_transfer": CommandResult.success()})
    s = sim(flow(transfer()), telephony=fake)
    s.advance(30)
    assert s.path == ["xfer", "broken"]


def test_transfer_completed_before_answered_is_failed(flow, sim) -> None:
    fake = FakeTelephony(results={"sip_call_transfer": CommandResult.success()})
    s = sim(flow(transfer()), telephony=fake)
    s.send("calltransfer.initiated", session_id="sim-1-caller")
    s.send("calltransfer.completed", session_id="sim-1-caller")
    assert s.path == ["xfer", "broken"]


def test_caller_hanging_up_before_the_transfer_moves(flow, sim) -> None:
    fake = FakeTelephony(results={"sip_call_transfer": CommandResult.success()})
    s = sim(flow(transfer()), telephony=fake)
    s.hangup()
    assert s.path == ["xfer", "gone"]


def test_transfer_failing_after_the_caller_left_is_a_hangup(flow, sim) -> None:
    fake = FakeTelephony(results={"sip_call_transfer": CommandResult.success()})
    s = sim(flow(transfer()), telephony=fake)
    s.send("dialin.stopped", session_id="sim-1-caller")
    assert s.state == "xfer"
    s.advance(30)
    assert s.path == ["xfer", "gone"]


REFER = """
name: refer-test
start: ref
on: {hangup: gone, error: gone}
states:
  ref:
    refer: {to: "sip:queue@pbx.example.com", timeout: 10s}
    on: {accepted: fin, failed: broken}
  fin:
    end: {}
  broken:
    hangup: {reason: failed}
  gone:
    end: {}
"""


def test_refer_accepted_without_answered_or_completed(flow, sim) -> None:
    s = sim(flow(REFER))
    (refer,) = s.commands
    assert isinstance(refer, SipRefer)
    assert refer.daily_body() == {
        "sessionId": "sim-1-caller",
        "toEndPoint": "sip:queue@pbx.example.com",
    }
    names = [t.event.name for t in s.trace]
    assert "calltransfer.answered" not in names
    assert "calltransfer.completed" not in names
    assert s.path == ["ref", "fin"]


def test_refer_failed(flow, sim) -> None:
    s = sim(flow(REFER), telephony=FakeTelephony(refer="failed"))
    assert s.path == ["ref", "broken"]


def test_refer_times_out(flow, sim) -> None:
    fake = FakeTelephony(results={"sip_refer": CommandResult.success()})
    s = sim(flow(REFER), telephony=fake)
    s.advance(10)
    assert s.path == ["ref", "broken"]


def test_refer_ignores_a_non_refer_transfer_event(flow, sim) -> None:
    fake = FakeTelephony(results={"sip_refer": CommandResult.success()})
    s = sim(flow(REFER), telephony=fake)
    s.send("calltransfer.initiated", session_id="sim-1-caller", is_sip_refer=False)
    assert s.state == "ref"
    s.send("calltransfer.initiated", session_id="sim-1-caller", is_sip_refer=True)
    assert s.state == "fin"


REDIAL = """
name: redial
start: dial
on: {hangup: fin}
states:
  dial:
    dial_out: {to: "+14155550123", leg: agent, timeout: 20s}
    max_visits: 3
    on: {answered: talk, no_answer: dial, busy: fin, failed: broken, max_visits: fin}
  talk:
    hangup: {reason: answered}
  broken:
    hangup: {reason: failed}
  fin:
    hangup: {}
"""


def test_a_dial_out_redialled_at_once_ignores_the_old_legs_late_events(flow, sim) -> None:
    """The first leg's dialout.stopped (sent for the stop after the ring timeout) arrives while
    the same state dials again: it belongs to the old leg, not the new one."""

    class InTurn(FakeTelephony):
        answers = ["no_answer", "answered"]

        def dial_out_behaviour(self, leg: str) -> str:
            return self.answers.pop(0)

    s = sim(flow(REDIAL), telephony=InTurn())
    s.advance(20)
    s.send("dialout.stopped", session_id="dialout-1")
    assert s.state == "talk"
    assert s.path == ["dial", "dial", "talk"]


def test_an_abandoned_dial_outs_late_result_is_stopped_not_taken_for_the_redial(flow, sim) -> None:
    fake = FakeTelephony(results={"start_dial_out": CommandResult.success()})
    s = sim(flow(REDIAL), telephony=fake)
    first = next(c for c in s.commands if isinstance(c, StartDialOut))
    s.advance(20)
    assert s.path == ["dial", "dial"]
    new = s.send(
        "command.ok", key=first.key, command="start_dial_out", leg="agent", data={"sessionId": "z"}
    )
    assert [c.session_id for c in new if isinstance(c, StopDialOut)] == ["z"]
    assert "agent" not in s.session.legs
    s.send("dialout.answered", session_id="z")
    assert s.state == "dial"
