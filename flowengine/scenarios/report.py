"""Scenario runs as text for people and JSON for programs; a call's trace as a designer reads it.

Where it sits: the output side of ``flowengine test`` and ``flowengine simulate``. A trace is
printed state by state: when, the event, the moves it caused (``welcome --answered-->
business_hours``, ``=>`` into a sub-flow, ``<=`` back to the caller), the commands sent, and
the runtime's note when it had something to say. The scenario's own steps are shown between
the entries they caused (``> dtmf 1``), so a failure reads like a transcript of the call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..durations import format_duration
from ..runtime import TraceEntry
from ..runtime.commands import StartTimer
from ..runtime.compiler import END, ENDED, INIT, START
from ..runtime.session import Move
from .coverage import FlowCoverage
from .expect import command_text
from .runner import ScenarioResult
from .suite import Run

FORMATS = ("text", "json")
_EVENT_WIDTH = 26


def event_label(entry: TraceEntry) -> str:
    """The event of a trace entry, with what identifies it (the key, the timer, the command)."""
    event = entry.event
    payload = event.payload
    if event.name == "dtmf":
        return f"dtmf {payload.get('tone', '?')}"
    if event.name == "timer":
        return f"timer {payload.get('purpose', '?')}"
    if event.name == "command.ok":
        return f"{payload.get('command', 'command')} ok"
    if event.name == "command.failed":
        return f"{payload.get('command', 'command')} failed ({payload.get('error', '')})"
    about = event.leg or payload.get("session_id") or payload.get("sessionId")
    return f"{event.name} ({about})" if about else event.name


def _state(flow: str, name: str, root: str) -> str:
    if name == ENDED:
        return "(ended)"
    return name if flow == root else f"{flow}/{name}"


def moves_text(
    moves: Sequence[Move], root: str, labels: Mapping[tuple[str, str, str], str] | None = None
) -> str:
    """A chain of moves: ``welcome --answered--> business_hours --open--> greeting``."""
    text, last = "", None
    for move in moves:
        flow, source, trigger, target = move
        here = _state(flow, target, root)
        if source == INIT and trigger == START:
            text += f" => {here}" if text else here
        else:
            origin = _state(flow, source, root)
            if origin != last:
                text += f" <= {origin}" if text else origin
            label = "end" if trigger == END else (labels or {}).get(move[:3], trigger)
            text += f" --{label}--> {here}"
        last = here
    return text


def _command_line(command: Any) -> str | None:
    if isinstance(command, StartTimer):
        return f"timer {command.purpose} {format_duration(command.seconds)}"
    if command.internal:
        return None
    return command_text(command)


def entry_lines(
    entry: TraceEntry,
    started: float,
    root: str,
    *,
    verbose: bool,
    labels: Mapping[tuple[str, str, str], str] | None = None,
) -> list[str]:
    """One trace entry (empty when it changed nothing and ``verbose`` is off; keys pressed
    are always shown)."""
    commands = [line for c in entry.commands if (line := _command_line(c)) is not None]
    shown = [c for c in commands if not c.startswith("timer ")]
    if not verbose:  # timers explain waits, but each key press re-arms one: verbose only
        commands = shown
    quiet = not entry.note or entry.note == "the call has ended"
    if not verbose and not entry.moves and not shown and quiet and entry.event.name != "dtmf":
        return []
    when = f"+{max(0.0, entry.at - started):.3f}".rstrip("0").rstrip(".") + "s"
    moved = (
        moves_text(entry.moves, root, labels) or f"(stays in {_state(root, entry.target, root)})"
    )
    if entry.flow and not entry.moves:
        moved = f"(stays in {entry.flow}/{entry.target})"
    lines = [f"{when:>8}  {event_label(entry):<{_EVENT_WIDTH}} {moved}"]
    lines += [f"{'':>10}{c}" for c in commands]
    if entry.note:
        lines.append(f"{'':>10}note: {entry.note}")
    return lines


def trace_lines(result: ScenarioResult, *, verbose: bool = False) -> list[str]:
    """The call's trace with the scenario's steps shown where they happened."""
    marks: dict[int, list[str]] = {}
    for step, at in result.marks:
        text = f"> {step.describe()} (line {step.location.line})"
        if step is result.failed_step:
            text += "  <-- failed"
        marks.setdefault(at, []).append(text)
    lines: list[str] = []
    for i, entry in enumerate(result.trace):
        lines += marks.pop(i, [])
        lines += entry_lines(
            entry, result.started_at, result.flow, verbose=verbose, labels=result.labels
        )
    for rest in marks.values():
        lines += rest
    end = result.scenario.end
    if end is not None and (result.failed_end or result.passed):
        failed = "  <-- failed" if result.failed_end else ""
        lines.append(f"> end (line {end.location.line}){failed}")
    return lines


def scenario_lines(result: ScenarioResult, *, verbose: bool = False) -> list[str]:
    """A scenario's verdict, its failures with expected vs actual, and its trace."""
    scenario = result.scenario
    head = "ok  " if result.passed else "FAIL"
    lines = [f"{head} {scenario.name} ({scenario.location.file}:{scenario.location.line})"]
    for failure in result.failures:
        lines.append(f"  {failure.location}: {failure.message}")
        lines += [f"    {d}" for d in failure.details]
    lines.append("  trace:")
    lines += [f"    {line}" for line in trace_lines(result, verbose=verbose)]
    return lines


def coverage_lines(coverage: Sequence[FlowCoverage]) -> list[str]:
    """Per flow: the share of edges taken, and the edges no scenario took."""
    if not coverage:
        return []
    width = max(len(c.flow) for c in coverage)
    lines = ["edge coverage:"]
    for c in coverage:
        excluded = f" ({len(c.excluded)} marked unreachable)" if c.excluded else ""
        counts = f"{len(c.covered)}/{len(c.edges)} edges{excluded}"
        lines.append(f"  {c.flow:<{width}}  {c.percent:5.1f}%  {counts}")
        lines += [f"    not taken: {edge}" for edge in c.uncovered]
        lines += [f"    unreachable: {edge} ({reason})" for edge, reason in c.excluded]
        lines += [f"    taken although marked unreachable: {edge}" for edge in c.contradicted]
    return lines


def summary(run: Run) -> str:
    """``N scenarios: N passed, N failed`` (and files that could not run)."""
    results = run.results
    failed = len(run.failed)
    noun = "scenario" if len(results) == 1 else "scenarios"
    text = f"{len(results)} {noun}: {len(results) - failed} passed, {failed} failed"
    broken = sum(1 for f in run.files if f.errors)
    if broken:
        text += f"; {broken} scenario file{'s' if broken != 1 else ''} with errors"
    return text


def _text(run: Run, minimum: float | None, verbose: bool) -> Iterator[str]:
    for diagnostic in run.diagnostics:
        yield diagnostic.render()
    for file in run.files:
        for result in file.results:
            if not result.passed:
                yield from scenario_lines(result, verbose=verbose)
            elif verbose:
                yield f"ok   {result.scenario.name}"
        if file.results:
            failed = sum(1 for r in file.results if not r.passed)
            counts = f"{len(file.results) - failed} passed" + (
                f", {failed} failed" if failed else ""
            )
            yield f"{file.file}: {counts}"
    yield from coverage_lines(run.coverage)
    contradicted = [f"{c.flow}: {e}" for c in run.coverage for e in c.contradicted]
    if contradicted:
        yield f"edges marked unreachable were taken: {'; '.join(contradicted)}"
    low = run.below(minimum)
    if low:
        flows = ", ".join(f"{c.flow} ({c.percent:.1f}%)" for c in low)
        yield f"coverage below {minimum:g}%: {flows}"
    yield summary(run)


def render(
    run: Run, fmt: str = "text", *, minimum: float | None = None, verbose: bool = False
) -> str:
    """The whole report of a run in one of ``FORMATS``."""
    if fmt == "json":
        return json.dumps(as_dict(run, minimum), indent=2, ensure_ascii=False)
    return "\n".join(_text(run, minimum, verbose))


def as_dict(run: Run, minimum: float | None = None) -> dict[str, Any]:
    """The JSON form of a run: summary, diagnostics, scenarios, coverage."""
    results = run.results
    return {
        "ok": run.ok(minimum),
        "summary": {
            "scenarios": len(results),
            "passed": len(results) - len(run.failed),
            "failed": len(run.failed),
            "files_with_errors": sum(1 for f in run.files if f.errors),
            "min_coverage": minimum,
        },
        "diagnostics": [d.as_dict() for d in run.diagnostics],
        "scenarios": [
            {
                "file": r.file,
                "line": r.scenario.location.line,
                "name": r.scenario.name,
                "flow": r.flow,
                "passed": r.passed,
                "failures": [f.as_dict() for f in r.failures],
                **({} if r.passed else {"trace": [t.to_dict() for t in r.trace]}),
            }
            for r in results
        ],
        "coverage": [c.as_dict() for c in run.coverage],
    }
