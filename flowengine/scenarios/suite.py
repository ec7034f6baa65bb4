"""A test run: scenario files found, loaded, run on their flows, and edge coverage summed up.

Where it sits: the entry point ``flowengine test`` and ``flowengine simulate --script`` use.
``run_paths`` finds ``*.test.yaml`` files, and for each one: reads it
(``scenarios.loader``), loads its flow (``scenarios.flows``), runs each scenario
(``scenarios.runner``) and checks that every stubbed HTTP reply was used. Problems with a file
are diagnostics (``file:line:col``); problems with the flow's behaviour are scenario failures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Diagnostic, Location, Severity, UsageError, sort_diagnostics
from .coverage import Coverage, FlowCoverage
from .flows import FlowLibrary, Target
from .loader import SCENARIO_SUFFIXES, read_scenario_file
from .model import ScenarioError, ScenarioFile
from .runner import ScenarioResult, run_scenario


@dataclass
class FileRun:
    """One scenario file: its problems, or its scenarios' results."""

    file: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    results: list[ScenarioResult] = field(default_factory=list)
    model: ScenarioFile | None = None

    @property
    def errors(self) -> list[Diagnostic]:
        """The diagnostics that fail the file."""
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]


@dataclass
class Run:
    """Everything a ``flowengine test`` run found."""

    files: list[FileRun] = field(default_factory=list)
    coverage: list[FlowCoverage] = field(default_factory=list)

    @property
    def results(self) -> list[ScenarioResult]:
        """Every scenario run, in file order."""
        return [r for f in self.files for r in f.results]

    @property
    def failed(self) -> list[ScenarioResult]:
        """The scenarios that failed."""
        return [r for r in self.results if not r.passed]

    @property
    def diagnostics(self) -> list[Diagnostic]:
        """Every problem with a scenario file (or its flow), sorted."""
        return sort_diagnostics(d for f in self.files for d in f.diagnostics)

    def below(self, minimum: float | None) -> list[FlowCoverage]:
        """Flows whose edge coverage is under ``minimum`` percent."""
        if minimum is None:
            return []
        return [c for c in self.coverage if c.percent + 1e-9 < minimum]

    def ok(self, minimum: float | None = None) -> bool:
        """True when nothing failed and every flow is covered enough."""
        broken = any(f.errors for f in self.files)
        contradicted = any(c.contradicted for c in self.coverage)
        return not broken and not contradicted and not self.failed and not self.below(minimum)


def find_scenario_files(paths: Iterable[str | Path]) -> list[Path]:
    """Scenario files named, or found below folders named (``*.test.yaml``).

    Raises:
        UsageError: a path does not exist, or no scenario file is found.
    """
    found: dict[Path, Path] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.is_file() and p.name.endswith(SCENARIO_SUFFIXES):
                    found.setdefault(p.resolve(), p)
        elif path.exists():
            found.setdefault(path.resolve(), path)
        else:
            raise UsageError(f"{raw}: no such file or directory")
    if not found:
        shown = " ".join(str(p) for p in paths)
        raise UsageError(f"no scenario files (*.test.yaml) in {shown}")
    return list(found.values())


def run_paths(
    paths: Sequence[str | Path],
    *,
    only: str | None = None,
    library: FlowLibrary | None = None,
) -> Run:
    """Run every scenario of every file found (``only``: just the scenario of that name).

    Raises:
        UsageError: a path does not exist, or holds no scenario file.
        FlowLoadError: a file cannot be read at all.
        ScenarioError: ``only`` names no scenario of the files.
    """
    library = library or FlowLibrary()
    coverage = Coverage()
    run = Run()
    for path in find_scenario_files(paths):
        run.files.append(run_file(path, library, coverage, only=only))
    if only is not None and not run.results and not any(f.diagnostics for f in run.files):
        names = [s.name for f in run.files if f.model for s in f.model.scenarios]
        raise ScenarioError(f"no scenario named {only!r} (there are: {', '.join(names)})")
    run.coverage = coverage.report()
    return run


def run_file(
    path: Path, library: FlowLibrary, coverage: Coverage, *, only: str | None = None
) -> FileRun:
    """Load one scenario file and its flow, and run its scenarios (or the one named ``only``).

    Raises:
        FlowLoadError: the file cannot be read at all.
    """
    model, diagnostics = read_scenario_file(path)
    if model is None:
        file = diagnostics[0].location.file if diagnostics else str(path)
        return FileRun(file, diagnostics)
    target, found = library.target(model)
    return run_model(model, target, found, coverage, only=only)


def run_model(
    model: ScenarioFile,
    target: Target | None,
    diagnostics: list[Diagnostic],
    coverage: Coverage,
    *,
    only: str | None = None,
) -> FileRun:
    """Run a loaded file's scenarios on ``target`` (none when ``diagnostics`` say why)."""
    done = FileRun(model.file, list(diagnostics), model=model)
    if target is None or done.errors:
        return done
    coverage.add_flows(target.family)
    for exclusion in model.unreachable:
        coverage.exclude(exclusion.flow or target.flow.name, exclusion.edge, exclusion.reason)
    for scenario in model.scenarios:
        if only is not None and scenario.name != only:
            continue
        result = run_scenario(model.file, scenario, target)
        coverage.record(result.moves)
        done.results.append(result)
    done.diagnostics.extend(_unused_stubs(model, done.results))
    return done


def _unused_stubs(model: ScenarioFile, results: list[ScenarioResult]) -> list[Diagnostic]:
    """Stubs that answered nothing in every scenario that has them (and that passed).

    A failed scenario may stop before its requests, so its stubs are not held against it.
    """
    holders: dict[Location, list[ScenarioResult]] = {}
    for result in results:
        for stub in result.scenario.stubs:
            holders.setdefault(stub.location, []).append(result)
    found = []
    for location, runs in holders.items():
        if not all(r.passed for r in runs) or any(location in r.answered_stubs for r in runs):
            continue
        made = sorted({q for r in runs for q in r.requests})
        hint = (
            f"Requests made: {', '.join(made[:4])}{' ...' if len(made) > 4 else ''}."
            if made
            else "The flow made no HTTP request in these scenarios: remove the stub."
        )
        found.append(
            Diagnostic(
                "unused-stub",
                Severity.ERROR,
                "this stub answered no request: its scenarios do not test what it stubs",
                location,
                hint,
            )
        )
    return found
