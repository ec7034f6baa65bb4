"""Checking an ``expect`` (or ``end``) against a simulated call: what differs, said plainly.

Where it sits: called by ``scenarios.runner`` after each ``expect`` step. Every key of the
expectation is checked and each mismatch becomes a ``Failure`` at that key's location, with
what was expected and what happened (for commands, the commands that were sent instead).
Values compare as a designer means them: a mapping checks only the fields it gives, and a
number in the scenario equals the same digits in text (``tones: 2`` matches ``"2"``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import Location
from ..runtime import Command, Simulator
from .model import Check, Expectation


@dataclass(frozen=True, slots=True)
class Failure:
    """One thing that did not hold."""

    location: Location
    message: str
    details: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        loc = self.location
        return {
            "file": loc.file,
            "line": loc.line,
            "column": loc.column,
            "message": self.message,
            "details": list(self.details),
        }


def matches(expected: Any, actual: Any) -> bool:
    """True when ``actual`` has what ``expected`` asks for (mappings: the fields given)."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and matches(value, actual[key]) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    if (
        isinstance(actual, str)
        and isinstance(expected, int | float)
        and not isinstance(expected, bool)
    ):
        return actual == str(expected)  # YAML reads an unquoted 2 as a number
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return bool(expected == actual)


def short(value: Any, width: int = 60) -> str:
    """A value in a report line, cut to ``width`` characters."""
    text = _plain(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _plain(value: Any) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_plain(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value) if isinstance(value, str) else str(value)


def command_text(command: Command | Mapping[str, Any]) -> str:
    """A command on one line: its kind and its fields (not the key or call id)."""
    data = command.to_dict() if isinstance(command, Command) else dict(command)
    kind = data.pop("type", "?")
    for skip in ("key", "call_id"):
        data.pop(skip, None)
    if kind == "play":  # what a designer recognises: the prompt id and its words
        return f"play {data.get('prompt')} ({data.get('locale')}): {short(data.get('text'), 56)}"
    if kind == "say":
        return f"say: {short(data.get('text'), 64)}"
    fields = " ".join(f"{k}={short(v, 48)}" for k, v in data.items() if v not in (None, {}, []))
    return f"{kind} {fields}".rstrip()


def check(expectation: Expectation, sim: Simulator, since: int) -> list[Failure]:
    """Every mismatch between ``expectation`` and the call (commands counted from ``since``)."""
    failures: list[Failure] = []
    for item in expectation.checks:
        failures.extend(_CHECKS[item.key](item, sim, since))
    return failures


def _where(sim: Simulator) -> str:
    text = f"{sim.state!r}"
    if sim.session.frames:
        text += f" of the sub-flow {sim.flow!r}"
    if sim.ended:
        text += f" (the call has ended: {sim.outcome})"
    return text


def _state(item: Check, sim: Simulator, since: int) -> Iterator[Failure]:
    if sim.state != item.value:
        yield Failure(
            item.location, f"expected state {item.value!r}, but the call is in {_where(sim)}"
        )


def _flow(item: Check, sim: Simulator, since: int) -> Iterator[Failure]:
    if sim.flow != item.value:
        yield Failure(
            item.location, f"expected flow {item.value!r}, but the call is in {sim.flow!r}"
        )


def _path(item: Check, sim: Simulator, since: int) -> Iterator[Failure]:
    actual, wanted = sim.path, list(item.value)
    if actual == wanted:
        return
    same = next(
        (i for i, (a, b) in enumerate(zip(actual, wanted, strict=False)) if a != b),
        min(len(actual), len(wanted)),
    )
    if same < len(wanted) and same < len(actual):
        what = f"state {same + 1} is {actual[same]!r}, not {wanted[same]!r}"
    elif same < len(wanted):
        what = f"the call entered only {len(actual)} states; {wanted[same]!r} is missing"
    else:
        what = f"the call went on to {actual[same]!r}"
    yield Failure(
        item.location,
        f"the path differs: {what}",
        (f"expected: {' -> '.join(wanted)}", f"actual:   {' -> '.join(actual)}"),
    )


def _visited(item: Check, sim: Simulator, since: int) -> Iterator[Failure]:
    actual, at = sim.path, 0
    for name in item.value:
        try:
            at = actual.index(name, at) + 1
        except ValueError:
            after = f" after {actual[at - 1]!r}" if at else ""
            yield Failure(
                item.location,
                f"expected the call to enter {name!r}{after}, but it did not",
                (f"path: {' -> '.join(actual) or '(none)'}",),
            )
            return


def _vars(item: Check, sim: Simulator, since: int) -> Iterator[Failure]:
    values = sim.vars
    for name, wanted in dict(item.value).items():
        if name not in values:
            yield Failure(
                item.location, f"expected vars.{name} = {short(wanted)}, but it is not set"
            )
        elif not matches(wanted, values[name]):
            yield Failure(
                item.location,
                f"expected vars.{name} = {short(wanted)}, but it is {short(values[name])}",
            )


def _sent(sim: Simulator, since: int) -> list[Command]:
    return sim.commands[since:]


def _listing(sent: Sequence[Command]) -> tuple[str, ...]:
    if not sent:
        return ("sent since the previous expect: nothing",)
    return ("sent since the previous expect:", *(f"  {command_text(c)}" for c in sent))


def _is(command: Mapping[str, Any], kind: str, fields: Mapping[str, Any]) -> bool:
    return command["type"] == kind and matches(fields, command)


def _commands(item: Check, sim: Simulator, since: int) -> Iterator[Failure]:
    sent = _sent(sim, since)
    data = [c.to_dict() for c in sent]
    at = 0
    for n, entry in enumerate(item.value, 1):
        ((kind, fields),) = dict(entry).items()
        fields = dict(fields or {})
        found = next(
            (
                i
                for i in range(at, len(data))
                if data[i]["type"] == kind and matches(fields, data[i])
            ),
            None,
        )
        if found is not None:
            at = found + 1
            continue
        wanted = f"{kind} {short(fields)}" if fields else kind
        same_kind = [d for d in data[at:] if d["type"] == kind]
        if same_kind:
            diff = [
                f"{k}={short(same_kind[0].get(k))}"
                for k, v in fields.items()
                if not matches(v, same_kind[0].get(k))
            ]
            reason = f"the {kind} sent has {', '.join(diff)}"
        elif any(_is(d, kind, fields) for d in data[:at]):
            reason = "it was sent, but before the command listed ahead of it"
        else:
            reason = f"no {kind} was sent"
        yield Failure(item.location, f"expected command {n}: {wanted}; {reason}", _listing(sent))
        return


def _no_commands(item: Check, sim: Simulator, since: int) -> Iterator[Failure]:
    sent = _sent(sim, since)
    if item.value and sent:
        yield Failure(
            item.location, f"expected no commands, but {len(sent)} were sent", _listing(sent)
        )
    elif not item.value and not sent:
        yield Failure(item.location, "expected commands, but nothing was sent")


def _ended(item: Check, sim: Simulator, since: int) -> Iterator[Failure]:
    if sim.ended != item.value:
        yield Failure(
            item.location,
            f"expected the call to have ended, but it is in {_where(sim)}"
            if item.value
            else f"expected the call to go on, but it has ended ({sim.outcome}) in {sim.state!r}",
        )


def _outcome(item: Check, sim: Simulator, since: int) -> Iterator[Failure]:
    if sim.outcome != item.value:
        actual = f"it ended with {sim.outcome!r}" if sim.ended else f"it is still in {_where(sim)}"
        yield Failure(item.location, f"expected the call to end with {item.value!r}, but {actual}")


_CHECKS = {
    "state": _state,
    "flow": _flow,
    "path": _path,
    "visited": _visited,
    "vars": _vars,
    "commands": _commands,
    "no_commands": _no_commands,
    "ended": _ended,
    "outcome": _outcome,
}
