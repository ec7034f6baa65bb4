"""The ``flowengine`` command line: validate flows, test them with scenarios, simulate calls.

Exit codes: 0 clean, 1 errors (or warnings with ``--strict``, or a failing scenario, or
coverage below ``--min-coverage``), 2 usage or unreadable input.
Every expected problem is printed as a message, never as a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from .errors import FlowEngineError, UsageError
from .project import validate_paths
from .report import FORMATS, render
from .scenarios import ScenarioError, run_paths
from .scenarios import report as scenario_report
from .scenarios.coverage import Coverage
from .scenarios.flows import Target, check_names, load_target
from .scenarios.interactive import Console, InputError
from .scenarios.loader import read_scenario_file
from .scenarios.suite import run_model
from .schema import flow_schema

F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Turn flowengine errors into a message and an exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except FlowEngineError as exc:
            click.echo(f"flowengine: error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flowengine")
def cli() -> None:
    """flowengine: declarative call flows for Daily telephony."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text for people, json for programs, github for workflow annotations.",
)
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@friendly
def validate(paths: tuple[str, ...], fmt: str, strict: bool) -> None:
    """Check flow files (folders are searched for *.yaml and *.yml, hidden ones skipped)."""
    report = validate_paths(paths)
    out = render(report.diagnostics, len(report.files), fmt)
    if out:
        click.echo(out)
    failed = bool(report.errors) or (strict and bool(report.warnings))
    sys.exit(1 if failed else 0)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(scenario_report.FORMATS),
    default="text",
    show_default=True,
    help="text for people, json for programs.",
)
@click.option(
    "--min-coverage",
    type=click.FloatRange(0, 100),
    default=None,
    metavar="N",
    help="Fail when a tested flow's edge coverage is below N percent.",
)
@click.option("-v", "--verbose", is_flag=True, help="List passing scenarios; show every event.")
@friendly
def test(paths: tuple[str, ...], fmt: str, min_coverage: float | None, verbose: bool) -> None:
    """Run scenario files (folders are searched for *.test.yaml)."""
    run = run_paths(paths)
    click.echo(scenario_report.render(run, fmt, minimum=min_coverage, verbose=verbose))
    sys.exit(0 if run.ok(min_coverage) else 1)


@cli.command()
@click.argument("flow")
@click.option(
    "--script",
    type=click.Path(),
    help="A scenario file: run its scenarios on FLOW and print each call's trace.",
)
@click.option("--name", help="With --script: only the scenario of this name.")
@click.option(
    "--flows",
    "flows_dir",
    type=click.Path(),
    help="Folder of flows and sub-flows (default: FLOW's folder, or flows/ for a name).",
)
@click.option("--at", help="Interactive: when the call starts (ISO 8601 with a UTC offset).")
@click.option("--from", "caller", help="Interactive: the caller's number or SIP URI.")
@click.option("--to", "dialled", help="Interactive: the number the caller dialled.")
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME=VALUE",
    help="Interactive: a variable (the value is read as JSON, else as text).",
)
@click.option("--auto", is_flag=True, help="Interactive: Daily answers every request at once.")
@click.option(
    "-v", "--verbose", is_flag=True, help="Show every event, even those that did nothing."
)
@friendly
def simulate(
    flow: str,
    script: str | None,
    name: str | None,
    flows_dir: str | None,
    at: str | None,
    caller: str | None,
    dialled: str | None,
    variables: tuple[str, ...],
    auto: bool,
    verbose: bool,
) -> None:
    """Run FLOW on a scripted call (--script), or interactively, one line at a time."""
    target = load_target(flow, flows_dir)
    if script is not None:
        sys.exit(_simulate_script(target, Path(script), name, verbose))
    call: dict[str, Any] = {}
    if caller is not None:
        call["from"] = caller
    if dialled is not None:
        call["to"] = dialled
    console = Console(
        target, at=_moment(at), call=call, variables=_assignments(variables), auto=auto
    )
    _interact(console)


def _simulate_script(target: Target, script: Path, name: str | None, verbose: bool) -> int:
    model, diagnostics = read_scenario_file(script)
    if model is None:
        for diagnostic in diagnostics:
            click.echo(diagnostic.render())
        return 1
    found = check_names(model, target)
    done = run_model(model, target, found, Coverage(), only=name)
    if name is not None and not done.results and not done.errors:
        known = ", ".join(s.name for s in model.scenarios)
        raise ScenarioError(f"no scenario named {name!r} in {script} ({known})")
    for diagnostic in done.diagnostics:
        click.echo(diagnostic.render())
    for result in done.results:
        click.echo("\n".join(scenario_report.scenario_lines(result, verbose=verbose)))
    failed = sum(1 for r in done.results if not r.passed)
    total = len(done.results)
    click.echo(
        f"{total} scenario{'s' if total != 1 else ''}: {total - failed} passed, {failed} failed"
    )
    return 1 if failed or done.errors or not done.results else 0


def _interact(console: Console) -> None:
    click.echo(f"Simulating {console.root}. Type help for the commands; quit or end of input ends.")
    for line in console.news():
        click.echo(line)
    try:
        while True:
            try:
                line = input(console.prompt)
            except EOFError:
                click.echo()
                return
            if line.strip().lower() in ("quit", "exit", "q"):
                return
            try:
                for out in console.handle(line):
                    click.echo(out)
            except InputError as exc:
                click.echo(f"error: {exc}")
    finally:
        console.close()


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"--at {text!r} is not an ISO 8601 date and time") from exc
    if moment.tzinfo is None:
        raise UsageError(f"--at {text!r} needs a UTC offset, e.g. {text}-08:00")
    return moment


def _assignments(items: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--var {item!r}: write NAME=VALUE")
        try:
            values[key] = json.loads(text)
        except ValueError:
            values[key] = text  # plain text needs no JSON quotes
    return values


@cli.command()
def schema() -> None:
    """Print the flow JSON Schema (for editors and other tools)."""
    click.echo(json.dumps(flow_schema(), indent=2))


def main() -> None:
    """Entry point of the ``flowengine`` script."""
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)


from .daemon.serve import serve as _serve  # noqa: E402 - registered last, kept in its own module

cli.add_command(_serve)


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def emulator(args: tuple[str, ...]) -> None:
    """Serve the local Daily emulator (see flowengine emulator --help)."""
    from .emulator import main as emulator_main

    sys.exit(emulator_main(args))


from .demo import demo as _demo  # noqa: E402 - registered last, kept in its own module

cli.add_command(_demo)
