"""Helpers for the runtime's tests: flows from inline text, and simulators that close."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowengine.model import Flow
from flowengine.project import load_flow, load_flows
from flowengine.runtime import Simulator


def write(folder: Path, text: str, name: str = "flow.yaml") -> Path:
    """Write dedented flow text into ``folder``."""
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def flow(tmp_path: Path) -> Callable[[str], Flow]:
    """Load one clean flow from text (``load_flow`` raises if the checks find errors)."""

    def make(text: str) -> Flow:
        folder = tmp_path / f"f{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        return load_flow(write(folder, text))

    return make


@pytest.fixture
def flows(tmp_path: Path) -> Callable[..., dict[str, Flow]]:
    """Load several flows (e.g. a flow and its sub-flow) from texts, checked together."""

    def make(*texts: str) -> dict[str, Flow]:
        folder = tmp_path / f"f{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        for i, text in enumerate(texts):
            write(folder, text, f"flow{i}.yaml")
        return load_flows([folder])

    return make


@pytest.fixture
def sim() -> Iterator[Callable[..., Simulator]]:
    """Make simulators (strict: a bug raises) and close them after the test."""
    made: list[Simulator] = []

    def make(*args: Any, **kwargs: Any) -> Simulator:
        kwargs.setdefault("strict", True)
        made.append(Simulator(*args, **kwargs))
        return made[-1]

    yield make
    for s in made:
        s.close()


def kinds(commands: list[Any]) -> list[str]:
    """The kinds of a list of commands."""
    return [c.kind for c in commands]


def unchecked(text: str) -> Flow:
    """Build a flow through loader, schema and build only, without the semantic checks.

    For the runtime's defences against what the checks normally keep out.
    """
    from flowengine.build import build_flow
    from flowengine.loader import parse_flow_text
    from flowengine.schema import schema_diagnostics

    doc = parse_flow_text(textwrap.dedent(text).lstrip("\n"), "unchecked.yaml")
    assert doc.ok, doc.diagnostics
    assert not schema_diagnostics(doc)
    built, problems = build_flow(doc)
    assert not problems, problems
    return built
