"""The package's boundaries: what it imports, and what it exports."""

from __future__ import annotations

import ast
from pathlib import Path

import flowengine.daily as daily

PACKAGE = Path(daily.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


RUNTIME_PORT = {f"flowengine.runtime.{m}" for m in ("commands", "events", "ports")}


def test_depends_on_nothing_of_flowengine_but_the_exception_root():
    """The REST client and webhooks stand alone; the in-room participant, a Telephony adapter,
    may also speak the runtime's port (its commands, events and protocols), nothing more."""
    for path in PACKAGE.glob("*.py"):
        allowed = {"flowengine.errors"}
        if path.stem.startswith("participant"):
            allowed |= RUNTIME_PORT
        ours = {m for m in imported_modules(path) if m.startswith("flowengine")}
        outside = {m for m in ours if not m.startswith("flowengine.daily")}
        assert outside <= allowed, f"{path.name} imports {sorted(outside)}"


def test_every_public_name_is_exported_and_importable():
    public = {name for name in vars(daily) if not name.startswith("_")}
    submodules = {path.stem for path in PACKAGE.glob("*.py")}
    assert set(daily.__all__) == public - submodules - {"annotations"}
    for name in daily.__all__:
        assert getattr(daily, name) is not None


def test_every_exception_derives_from_the_project_root():
    from flowengine.errors import FlowEngineError

    errors = [getattr(daily, n) for n in daily.__all__ if n.endswith("Error")]
    assert errors
    for error in errors:
        assert issubclass(error, FlowEngineError)
        assert (error.__doc__ or "").startswith(("Raised ", "The root")), error.__name__
