"""Scripted far ends: who answers a dial-out or a transfer, and what an inbound caller does.

A script is small and declarative, as a dataclass or as a mapping (from YAML or JSON):

- a **callee** (a dial-out or transfer target, per phone number or SIP URI):
  ``{answer: 2s, hangup: 60s}``, ``{busy: 1s}``, ``{fail: 1s, message: "503 ..."}``,
  ``{no_answer: true}``; optionally ``keys`` it presses once answered and an ``ivr`` that
  reacts to the tones sent with ``sendDTMF``;
- a **caller** (an inbound call the emulator places): ``{keys: [[2s, "1"], [5s, "42#"]],
  hangup: 30s}``, times counted from ``dialin.connected``; ``abandon: 10s`` hangs up while
  still on hold; ``via: sip`` marks a caller on the SIP interconnect (a PBX), which is what
  ``sipRefer`` needs.

Durations are seconds (numbers) or strings such as ``500ms``, ``2s``, ``1m30s``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from flowengine.durations import parse_duration

Outcome = Literal["answer", "busy", "fail", "no_answer"]

HANGUP = "hangup"
"""An IVR menu target that ends the call."""

BUSY_MESSAGE = "Busy Here (SIP 486)"
FAIL_MESSAGE = "Service Unavailable (SIP 503)"


class ScriptError(ValueError):
    """Raised when a far-end script cannot be read; the message names the field."""


def seconds(value: object, where: str) -> float:
    """Seconds from a number or a duration string."""
    if isinstance(value, bool):
        raise ScriptError(f"{where}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = parse_duration(value.strip())
        except ValueError as exc:
            raise ScriptError(f"{where}: {exc}") from None
    else:
        raise ScriptError(f"{where}: expected a duration, got {value!r}")
    if result < 0:
        raise ScriptError(f"{where}: must not be negative")
    return result


@dataclass(frozen=True, slots=True)
class Press:
    """Keys pressed ``at`` seconds after the leg connected, ``gap`` seconds apart."""

    at: float
    tones: str
    gap: float = 0.25

    def __post_init__(self) -> None:
        if not self.tones or any(t not in "0123456789ABCD*#" for t in self.tones):
            raise ScriptError(f"keys: {self.tones!r} is not 1 or more of 0-9 A-D * #")


def _presses(value: object, where: str) -> tuple[Press, ...]:
    """``[[at, tones], ...]``, ``[{at, tones, gap?}, ...]`` or ``{at: tones}``."""
    if value is None:
        return ()
    items: list[Any]
    if isinstance(value, Mapping):
        items = [[at, tones] for at, tones in value.items()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ScriptError(f"{where}: expected a list of [time, keys]")
    out: list[Press] = []
    for i, item in enumerate(items):
        here = f"{where}[{i}]"
        if isinstance(item, Press):
            out.append(item)
        elif isinstance(item, Mapping):
            gap = seconds(item.get("gap", 0.25), f"{here}.gap")
            out.append(Press(seconds(item.get("at"), f"{here}.at"), str(item.get("tones")), gap))
        elif isinstance(item, list | tuple) and len(item) == 2:
            out.append(Press(seconds(item[0], f"{here}[0]"), str(item[1])))
        else:
            raise ScriptError(f"{here}: expected [time, keys]")
    return tuple(sorted(out, key=lambda p: p.at))


@dataclass(frozen=True, slots=True)
class RemoteIvr:
    """A far-end IVR: it "plays" a menu and follows the tones it hears to the next one.

    ``menus`` maps a menu name to ``{tone: next menu}``; the target ``hangup`` ends the call.
    A tone a menu does not list replays it as ``<menu>:invalid``. What it plays is recorded
    on the leg (``Leg.played``), so tests can see where the tones led.
    """

    menus: Mapping[str, Mapping[str, str]]
    start: str = "main"

    def __post_init__(self) -> None:
        if self.start not in self.menus:
            raise ScriptError(f"ivr.start: no menu named {self.start!r}")
        for name, options in self.menus.items():
            for tone, target in options.items():
                if target != HANGUP and target not in self.menus:
                    raise ScriptError(f"ivr.menus.{name}.{tone}: no menu named {target!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RemoteIvr:
        """An IVR from ``{start, menus: {name: {tone: target}}}``."""
        menus = data.get("menus")
        if not isinstance(menus, Mapping):
            raise ScriptError("ivr.menus: expected a mapping of menus")
        parsed = {str(k): {str(t): str(v) for t, v in dict(m).items()} for k, m in menus.items()}
        return cls(menus=parsed, start=str(data.get("start", "main")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Callee:
    """The far end of a dial-out or a transfer: answers, is busy, fails or never answers."""

    outcome: Outcome = "answer"
    after: float = 0.0
    """Seconds of ringing before the outcome (answer, busy or fail)."""
    hangup: float | None = None
    """Seconds after answering at which the far end hangs up; None: it stays."""
    message: str | None = None
    """The error text of ``busy`` / ``fail`` (defaults name SIP 486 / 503)."""
    keys: tuple[Press, ...] = ()
    ivr: RemoteIvr | None = None

    @classmethod
    def answers(
        cls,
        after: float = 0.0,
        *,
        hangup: float | None = None,
        keys: tuple[Press, ...] = (),
        ivr: RemoteIvr | None = None,
    ) -> Callee:
        """Answers after ``after`` seconds of ringing."""
        return cls(outcome="answer", after=after, hangup=hangup, keys=keys, ivr=ivr)

    @classmethod
    def busy(cls, after: float = 0.5, message: str = BUSY_MESSAGE) -> Callee:
        """Rejects the call as busy."""
        return cls(outcome="busy", after=after, message=message)

    @classmethod
    def fails(cls, after: float = 0.5, message: str = FAIL_MESSAGE) -> Callee:
        """The call fails (network or far-end error)."""
        return cls(outcome="fail", after=after, message=message)

    @classmethod
    def never_answers(cls) -> Callee:
        """Rings until someone stops the call."""
        return cls(outcome="no_answer")

    @property
    def error_message(self) -> str:
        """The text sent with ``dialout.error``."""
        return self.message or (BUSY_MESSAGE if self.outcome == "busy" else FAIL_MESSAGE)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "callee") -> Callee:
        """A callee from its script mapping (see the module docstring)."""
        known = {"answer", "busy", "fail", "no_answer", "hangup", "message", "keys", "ivr"}
        if unknown := set(data) - known:
            raise ScriptError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        chosen = [k for k in ("answer", "busy", "fail", "no_answer") if k in data]
        if len(chosen) > 1:
            raise ScriptError(f"{where}: give one of answer, busy, fail, no_answer")
        outcome: Outcome = chosen[0] if chosen else "answer"  # type: ignore[assignment]
        after = 0.0
        if outcome != "no_answer" and chosen:
            raw = data[outcome]
            after = 0.0 if raw is True else seconds(raw, f"{where}.{outcome}")
        ivr = data.get("ivr")
        hangup = data.get("hangup")
        return cls(
            outcome=outcome,
            after=after,
            hangup=None if hangup is None else seconds(hangup, f"{where}.hangup"),
            message=None if data.get("message") is None else str(data["message"]),
            keys=_presses(data.get("keys"), f"{where}.keys"),
            ivr=RemoteIvr.from_dict(ivr) if isinstance(ivr, Mapping) else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """An inbound caller: presses keys and hangs up at times counted from being connected."""

    keys: tuple[Press, ...] = ()
    hangup: float | None = None
    """Seconds after ``dialin.connected`` at which the caller hangs up; None: never."""
    abandon: float | None = None
    """Seconds after placing the call at which a caller still on hold gives up."""
    via: Literal["pstn", "sip"] | None = None
    """How the call reaches Daily; None: ``sip`` when ``From`` is a SIP URI, else ``pstn``."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "caller") -> Caller:
        """A caller from its script mapping (see the module docstring)."""
        if unknown := set(data) - {"keys", "hangup", "abandon", "via"}:
            raise ScriptError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        via = data.get("via")
        if via not in (None, "pstn", "sip"):
            raise ScriptError(f"{where}.via: must be pstn or sip")
        hangup, abandon = data.get("hangup"), data.get("abandon")
        return cls(
            keys=_presses(data.get("keys"), f"{where}.keys"),
            hangup=None if hangup is None else seconds(hangup, f"{where}.hangup"),
            abandon=None if abandon is None else seconds(abandon, f"{where}.abandon"),
            via=via,
        )


def address_key(address: str) -> str:
    """A number or SIP URI as looked up: SIP parameters and headers dropped, scheme lowered."""
    if address[:4].lower() == "sip:" or address[:5].lower() == "sips:":
        rest = address.partition(":")[2]
        return "sip:" + rest.split(";", 1)[0].split("?", 1)[0].lower()
    return address.strip()


@dataclass(slots=True)
class FarEnds:
    """The directory of callees by address, with a default for anyone not listed."""

    numbers: dict[str, Callee] = field(default_factory=dict)
    default: Callee = field(default_factory=Callee.answers)

    def __post_init__(self) -> None:
        self.numbers = {address_key(k): v for k, v in self.numbers.items()}

    def add(self, address: str, callee: Callee) -> None:
        """Script the far end at ``address`` (a phone number or a SIP URI)."""
        self.numbers[address_key(address)] = callee

    def lookup(self, address: str) -> Callee:
        """The script for ``address``: its own, else the default."""
        return self.numbers.get(address_key(address), self.default)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FarEnds:
        """``{numbers: {address: callee}, default: callee}``."""
        if unknown := set(data) - {"numbers", "default"}:
            raise ScriptError(f"far ends: unknown key {sorted(unknown)[0]!r}")
        numbers = data.get("numbers") or {}
        if not isinstance(numbers, Mapping):
            raise ScriptError("numbers: expected a mapping of address -> callee")
        default = data.get("default")
        return cls(
            numbers={
                str(k): Callee.from_dict(v or {}, f"numbers[{k!r}]") for k, v in numbers.items()
            },
            default=Callee.from_dict(default, "default")
            if isinstance(default, Mapping)
            else Callee.answers(),
        )
