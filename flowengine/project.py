"""A set of flow files, validated together: the pipeline end to end.

``validate_paths`` reads files and folders, runs loader -> schema -> build -> checks on each
flow, resolves sub-flow calls and prompt catalogues across files, and returns every diagnostic
at once. ``load_flow`` and ``load_flows`` are the strict entry points the runtime uses: they
raise ``FlowValidationError`` with all errors instead of returning a flow that is not sound.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import checks
from .build import build_flow
from .errors import (
    Diagnostic,
    FlowLoadError,
    FlowValidationError,
    Severity,
    UsageError,
    sort_diagnostics,
)
from .loader import Document, read_flow_file
from .model import Flow
from .schema import prompt_diagnostics, schema_diagnostics

FLOW_SUFFIXES = (".yaml", ".yml")
SKIPPED_SUFFIXES = (".test.yaml", ".test.yml", ".prompts.yaml", ".prompts.yml")
"""Scenario files and prompt catalogues live beside flows but are not flows themselves."""


@dataclass
class Report:
    """The outcome of validating a set of files."""

    files: list[str] = field(default_factory=list)
    flows: dict[str, Flow] = field(default_factory=dict)
    """Flows without errors, by name."""
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        """The error diagnostics."""
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        """The warning diagnostics."""
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]


def display_name(path: Path) -> str:
    """A path as a user should read it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def collect_files(paths: Iterable[str | Path]) -> list[Path]:
    """Flow files named, or found recursively in folders named.

    Raises:
        UsageError: a path does not exist.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(_walk(path)))
        elif path.exists():
            found.append(path)
        else:
            raise UsageError(f"{raw}: no such file or directory")
    unique: dict[Path, None] = {}
    for p in found:
        unique.setdefault(p.resolve(), None)
    return list(unique)


SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__", "venv", "site-packages"})
"""Folders a search never enters, besides hidden ones (``.git``, ``.venv``...)."""


def _walk(folder: Path) -> Iterator[Path]:
    """Flow files below ``folder``, leaving out hidden and vendored folders (as linters do)."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIPPED_FOLDERS]
        for name in files:
            if name.endswith(FLOW_SUFFIXES) and not name.endswith(SKIPPED_SUFFIXES):
                yield Path(root) / name


@dataclass
class _Loaded:
    doc: Document
    flow: Flow | None
    diagnostics: list[Diagnostic]


def _load_one(path: Path) -> _Loaded:
    doc = read_flow_file(path, display=display_name(path))
    found = list(doc.diagnostics)
    _rename_menu_duplicates(found)
    if not doc.ok:
        return _Loaded(doc, None, found)
    schema_errors = schema_diagnostics(doc)
    if schema_errors:
        return _Loaded(doc, None, found + schema_errors)
    extra, catalogue_diags, catalogue_text = _catalogue(doc, path)
    flow, build_diags = build_flow(doc, extra_prompts=extra, catalogue_text=catalogue_text)
    return _Loaded(doc, flow, found + catalogue_diags + build_diags)


def _rename_menu_duplicates(found: list[Diagnostic]) -> None:
    for i, diag in enumerate(found):
        p = diag.location.path
        if (
            diag.code == "duplicate-key"
            and len(p) == 5
            and p[0] == "states"
            and p[2:4] == ("menu", "options")
        ):
            found[i] = Diagnostic(
                "menu-duplicate-key",
                Severity.ERROR,
                f"menu {p[1]!r} offers key {p[4]!r} twice",
                diag.location,
                'Keys like 1 and "1" are the same key: keep one.',
            )


def _catalogue(doc: Document, path: Path) -> tuple[dict[str, Any], list[Diagnostic], str | None]:
    """The flow's catalogue: its prompts, its problems, and its text (for the version hash)."""
    name = doc.data.get("catalogue")
    if not name:
        return {}, [], None
    target = path.parent / name
    try:
        cat = read_flow_file(target, display=display_name(target))
    except FlowLoadError as exc:
        unreadable = Diagnostic(
            "unknown-catalogue",
            Severity.ERROR,
            f"the prompt catalogue {name!r} cannot be read: {exc.reason}",
            doc.locate(("catalogue",)),
            "The path is relative to the flow file.",
        )
        return {}, [unreadable], None
    problems = list(cat.diagnostics) + (prompt_diagnostics(cat) if cat.ok else [])
    data = cat.data if isinstance(cat.data, dict) and not problems else {}
    return dict(data), problems, cat.text


def validate_paths(paths: Sequence[str | Path]) -> Report:
    """Validate flow files and folders; every problem comes back as a diagnostic.

    Raises:
        UsageError: a path does not exist.
        FlowLoadError: a file cannot be read at all.
    """
    files = collect_files(paths)
    loaded = {p: _load_one(p) for p in files}
    # Sub-flows may live beside the files named: index the neighbours' flows too.
    universe: dict[str, Flow] = {}
    for folder in sorted({p.parent for p in files}):
        for sibling in collect_files([folder]):
            if sibling not in loaded:
                try:
                    other = _load_one(sibling)
                except FlowLoadError:
                    continue
                if other.flow is not None:
                    universe.setdefault(other.flow.name, other.flow)
    report = Report(files=[loaded[p].doc.file for p in files])
    diagnostics: list[Diagnostic] = []
    named: dict[str, Flow] = {}
    for item in loaded.values():
        diagnostics.extend(item.diagnostics)
        if item.flow is None:
            continue
        first = named.get(item.flow.name) or universe.get(item.flow.name)
        if first is not None:
            diagnostics.append(
                Diagnostic(
                    "duplicate-flow-name",
                    Severity.ERROR,
                    f"flow name {item.flow.name!r} is already used by {first.file}",
                    item.doc.locate(("name",)),
                    "Flow names are unique: rename one of them.",
                )
            )
            continue
        named[item.flow.name] = item.flow
    universe.update(named)
    for item in loaded.values():
        if item.flow is None or named.get(item.flow.name) is not item.flow:
            continue
        found = checks.run_checks(item.flow, item.doc, universe)
        diagnostics.extend(found)
        item.diagnostics.extend(found)
    for item in loaded.values():
        if item.flow is not None and not any(
            d.severity is Severity.ERROR for d in item.diagnostics
        ):
            report.flows.setdefault(item.flow.name, item.flow)
    report.diagnostics = sort_diagnostics(diagnostics)
    return report


def load_flows(paths: Sequence[str | Path]) -> dict[str, Flow]:
    """Load and check flows; all of them must be free of errors.

    Raises:
        FlowValidationError: any file has errors (all of them are attached).
    """
    report = validate_paths(paths)
    if report.errors:
        raise FlowValidationError(report.diagnostics)
    return report.flows


def load_flow(path: str | Path) -> Flow:
    """Load and check one flow file (sub-flows are looked up beside it).

    Raises:
        FlowValidationError: the flow has errors.
    """
    report = validate_paths([path])
    if report.errors:
        raise FlowValidationError(report.diagnostics)
    (flow,) = report.flows.values()
    return flow
