"""The ``flowengine`` command line: validate (and more as the engine grows).

Exit codes: 0 clean, 1 errors (or warnings with ``--strict``), 2 usage or unreadable input.
Every expected problem is printed as a message, never as a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from .errors import FlowEngineError
from .project import validate_paths
from .report import FORMATS, render
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
    """Check flow files (folders are searched for *.yaml and *.yml)."""
    report = validate_paths(paths)
    out = render(report.diagnostics, len(report.files), fmt)
    if out:
        click.echo(out)
    failed = bool(report.errors) or (strict and bool(report.warnings))
    sys.exit(1 if failed else 0)


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
