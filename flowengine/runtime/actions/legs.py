"""Telephony on call legs: answer, send_dtmf, dial_out, stop_dial_out, transfer and refer.

Each state issues one command and waits for what Daily says about it: the command's own result
(``command.ok`` / ``command.failed``, matched by key) and the webhooks of the leg concerned
(matched by Daily's ``session_id``). A dial-out's session id arrives with its command's result,
which may come after the first ``dialout.*`` event: an event for an unknown session id is then
taken as this leg's. Transfer and refer move the caller's leg out of the room, so the
``dialin.stopped`` / ``participant.left`` that follow are part of the move, not a hang-up.
"""

from __future__ import annotations

from ... import model as m
from ...addresses import is_sip
from ..commands import Answer, SendDtmf, SipCallTransfer, SipRefer, StartDialOut, StopDialOut
from ..events import COMMAND_FAILED, COMMAND_OK, TIMER, Event, is_busy
from ..step import HANGUP, STAY, Step
from .media import TONES

MAX_TONES = 20
"""Daily's limit on the tones of one sendDTMF request."""

LEG_ENDED = frozenset({"dialin.stopped", "participant.left", "dialout.stopped"})


def _mine(step: Step, event: Event) -> bool:
    key = event.payload.get("key")
    return key is not None and key == step.session.scratch.get("key")


def _timer(event: Event, purpose: str) -> bool:
    return event.name == TIMER and event.payload.get("purpose") == purpose


# -- answer ----------------------------------------------------------------------------------


def enter_answer(step: Step, action: m.Answer) -> str | None:
    """Connect the caller; pinless calls wait for the room's ``dialin.ready`` first."""
    info = step.session.call
    if step.session.caller_gone:
        step.note("the caller is gone")
        return "failed"
    if info.get("connected"):
        return "answered"
    step.start_timer("answer", action.timeout)
    if info.get("dialin_call_id") and not info.get("sip_endpoint"):
        step.session.scratch["await_ready"] = True
        step.note("waiting for dialin.ready before connecting the caller")
        return None
    _answer(step)
    return None


def _answer(step: Step) -> None:
    info = step.session.call
    endpoint = info.get("sip_endpoint")
    if isinstance(endpoint, str) and not is_sip(endpoint):
        endpoint = f"sip:{endpoint}"
    command = step.emit(
        Answer,
        dialin_call_id=info.get("dialin_call_id"),
        call_domain=info.get("call_domain"),
        sip_uri=endpoint,
    )
    step.session.scratch["key"] = command.key


def on_answer(step: Step, action: m.Answer, event: Event) -> str | None:
    """``dialin.connected`` -> answered; an error, a failed command or the timer -> failed."""
    scratch = step.session.scratch
    if event.name == "dialin.ready" and scratch.pop("await_ready", False):
        _answer(step)
        return STAY
    if event.name == "dialin.connected":
        return "answered"
    if event.name == "dialin.error" or (event.name == COMMAND_FAILED and _mine(step, event)):
        step.note(f"answer failed: {event.payload.get('error', event.payload.get('error_msg'))}")
        return "failed"
    if event.name == COMMAND_OK and _mine(step, event):
        return STAY
    if _timer(event, "answer"):
        step.note("the caller's leg did not connect in time")
        return "failed"
    return None


# -- send_dtmf -------------------------------------------------------------------------------


def enter_send_dtmf(step: Step, action: m.SendDtmf) -> str | None:
    """Send the rendered tones on the leg."""
    sid = step.leg_session(action.leg)
    if sid is None:
        step.note(f"leg {action.leg!r} is not up")
        return "failed"
    tones = str(step.render(action.tones)).strip().upper()
    if not tones or len(tones) > MAX_TONES or any(t not in TONES for t in tones):
        step.note(f"{tones!r} is not 1 to {MAX_TONES} DTMF keys")
        return "failed"
    command = step.emit(
        SendDtmf,
        leg=action.leg,
        session_id=sid,
        tones=tones,
        method=action.method,
        digit_duration_ms=action.digit_duration_ms,
    )
    step.session.scratch["key"] = command.key
    return None


def on_send_dtmf(step: Step, action: m.SendDtmf, event: Event) -> str | None:
    """The command's result decides."""
    if _mine(step, event):
        if event.name == COMMAND_OK:
            return "sent"
        if event.name == COMMAND_FAILED:
            return "failed"
    return None


# -- dial_out / stop_dial_out ----------------------------------------------------------------


def enter_dial_out(step: Step, action: m.DialOut) -> str | None:
    """Start the dial-out and the ring timer."""
    to = str(step.render(action.to)).strip()
    settings: dict[str, object] = {"sipUri": to} if is_sip(to) else {"phoneNumber": to}
    if action.display_name:
        settings["displayName"] = str(step.render(action.display_name))
    if action.caller_id:
        settings["callerId"] = action.caller_id
    if action.user_id:
        settings["userId"] = action.user_id
    if action.video:
        settings["video"] = True
    if action.codecs:
        settings["codecs"] = {kind: list(names) for kind, names in action.codecs.items()}
    if action.extension:
        settings["extension"] = action.extension
        if action.wait_before_extension:
            settings["waitBeforeExtensionDialSec"] = round(action.wait_before_extension)
    _retire(step, action.leg)
    command = step.emit(StartDialOut, leg=action.leg, settings=settings)
    step.session.scratch.update(key=command.key, leg=action.leg)
    step.start_timer("ring", action.timeout)
    return None


def _retire(step: Step, leg: str) -> str | None:
    """Forget a leg's session id, remembering it so its late events are not taken for a new
    leg of the same name (a dial-out that rings out and is dialled again)."""
    sid = step.session.legs.pop(leg, None)
    if sid is not None:
        step.session.call.setdefault("ended_sessions", []).append(sid)
    return sid


def _our_leg(step: Step, leg: str) -> bool:
    sid, legs = step.event_session(), step.session.legs
    if sid is None:
        return step.event.leg in (None, leg)
    if sid in step.session.call.get("ended_sessions", ()):
        return False
    known = legs.get(leg)
    if known is not None:
        return sid == known
    if sid in legs.values():
        return False
    legs[leg] = sid  # the webhook came before the command's result: it is this leg's
    return True


def on_dial_out(step: Step, action: m.DialOut, event: Event) -> str | None:
    """answered / busy / failed from the leg's events; no_answer when the ring timer fires."""
    name = event.name
    if _mine(step, event):
        if name == COMMAND_OK:
            return STAY
        if name == COMMAND_FAILED:
            return "busy" if is_busy(event.payload) else "failed"
    if name.startswith("dialout.") and _our_leg(step, action.leg):
        if name == "dialout.answered":
            return "answered"
        if name in ("dialout.error", "dialout.stopped"):
            step.note(f"the dial-out ended before it was answered: {dict(event.payload)}")
            return "busy" if is_busy(event.payload) else "failed"
        return None
    if _timer(event, "ring"):
        sid = _retire(step, action.leg)
        if sid is not None:
            step.emit(StopDialOut, leg=action.leg, session_id=sid)
        else:  # its session id is not known yet: stop it when the command's result comes
            step.session.call.setdefault("abandoned_dialouts", []).append(
                step.session.scratch.get("key")
            )
        return "no_answer"
    return None


def enter_stop_dial_out(step: Step, action: m.StopDialOut) -> str | None:
    """Stop the leg; a leg that is not up is already stopped (``done``)."""
    sid = step.session.legs.get(action.leg)
    if sid is None:
        step.note(f"leg {action.leg!r} is not up: nothing to stop")
        return "done"
    command = step.emit(StopDialOut, leg=action.leg, session_id=sid)
    step.session.scratch["key"] = command.key
    return None


def on_stop_dial_out(step: Step, action: m.StopDialOut, event: Event) -> str | None:
    """The command's result decides."""
    if _mine(step, event):
        if event.name == COMMAND_OK:
            _retire(step, action.leg)
            return "done"
        if event.name == COMMAND_FAILED:
            return "failed"
    return None


# -- transfer and refer ----------------------------------------------------------------------


def enter_transfer(step: Step, action: m.Transfer) -> str | None:
    """sipCallTransfer the leg to a room, a SIP URI or a number."""
    sid = step.leg_session(action.leg)
    if sid is None:
        step.note(f"leg {action.leg!r} is not up")
        return "failed"
    target = str(step.render(action.target)).strip()
    room = None
    to: str | None = target
    if action.target_kind == "room":
        room = target
        domain = step.runtime.room_sip_domain
        to = f"sip:{target}@{domain}" if domain else None
    wait = action.wait_before_extension if action.extension else 0
    command = step.emit(
        SipCallTransfer,
        leg=action.leg,
        room=room,
        session_id=sid,
        to_end_point=to,
        caller_id=action.caller_id,
        extension=action.extension,
        wait_before_extension_dial_sec=round(wait) if wait else None,
    )
    step.session.scratch.update(key=command.key, sid=sid)
    step.start_timer("transfer", action.timeout)
    return None


def _about_leg(step: Step) -> bool:
    sid = step.event_session()
    return sid is None or sid == step.session.scratch.get("sid")


def _moving(step: Step, event: Event) -> str | None:
    """Shared by transfer and refer: the command's result and the leg leaving the room.

    From the moment the command is issued, the leg's ``dialin.stopped``/``participant.left``
    are taken as part of the move (Daily may send them before its REST answer is read). If
    the move then fails with the caller gone, the outcome is ``hangup``.
    """
    if _mine(step, event):
        if event.name == COMMAND_FAILED:
            step.note(f"Daily refused: {event.payload.get('error')}")
            return _failed(step)
        return STAY
    if event.name in LEG_ENDED and _about_leg(step):
        step.note("the leg left the room: it is being moved")
        return STAY
    return None


def _failed(step: Step) -> str:
    return HANGUP if step.session.caller_gone else "failed"


def on_transfer(step: Step, action: m.Transfer, event: Event) -> str | None:
    """``calltransfer.answered`` -> answered; failure, ``completed`` first or timeout -> failed."""
    moved = _moving(step, event)
    if moved is not None:
        return moved
    name = event.name
    if name.startswith("calltransfer.") and _about_leg(step):
        if name == "calltransfer.answered":
            return "answered"
        if name == "calltransfer.completed":
            step.note("the transfer ended before it was answered")
            return "failed"
        return STAY
    if _timer(event, "transfer"):
        step.note("the transfer target did not answer in time")
        return _failed(step)
    return None


def enter_refer(step: Step, action: m.Refer) -> str | None:
    """sipRefer the leg out of Daily."""
    sid = step.leg_session(action.leg)
    if sid is None:
        step.note(f"leg {action.leg!r} is not up")
        return "failed"
    to = str(step.render(action.to)).strip()
    command = step.emit(SipRefer, leg=action.leg, session_id=sid, to_end_point=to)
    step.session.scratch.update(key=command.key, sid=sid)
    step.start_timer("refer", action.timeout)
    return None


def on_refer(step: Step, action: m.Refer, event: Event) -> str | None:
    """``calltransfer.initiated`` (a REFER) -> accepted; failure or timeout -> failed.

    A REFER never produces ``calltransfer.answered`` or ``completed``.
    """
    moved = _moving(step, event)
    if moved is not None:
        return moved
    name = event.name
    if name in ("calltransfer.triggered", "calltransfer.initiated") and _about_leg(step):
        if event.payload.get("is_sip_refer") is False:
            return None
        return "accepted" if name == "calltransfer.initiated" else STAY
    if _timer(event, "refer"):
        step.note("the REFER was not confirmed in time")
        return _failed(step)
    return None
