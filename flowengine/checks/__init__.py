"""Semantic checks: what the JSON Schema cannot say; the fourth step of the pipeline.

Each rule is a function ``(ctx) -> Iterator[Diagnostic]`` registered with ``@rule``; each
diagnostic code is documented in ``docs/diagnostics.md`` and pinned by a fixture under
``tests/fixtures/flows/invalid/<code>/``. Rules read the model only, plus the other flows of
the same validation run (for sub-flow calls).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from ..errors import Diagnostic, Location, Severity
from ..loader import Document, PathKey
from ..model import Flow, State

Rule = Callable[["CheckContext"], Iterator[Diagnostic]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    """Register a check."""
    RULES.append(fn)
    return fn


@dataclass
class CheckContext:
    """What a rule may read: the flow, its document, and the other flows by name."""

    flow: Flow
    doc: Document
    flows: Mapping[str, Flow] = field(default_factory=dict)

    def locate(self, path: PathKey, *, key: bool = False) -> Location:
        """The location of a value (or key) of this flow's file."""
        return self.doc.locate(path, key=key)

    def error(self, code: str, loc: Location, message: str, hint: str | None = None) -> Diagnostic:
        """An error diagnostic."""
        return Diagnostic(code, Severity.ERROR, message, loc, hint)

    def warning(
        self, code: str, loc: Location, message: str, hint: str | None = None
    ) -> Diagnostic:
        """A warning diagnostic."""
        return Diagnostic(code, Severity.WARNING, message, loc, hint)

    def state_path(self, state: State, *rest: str | int) -> PathKey:
        """The document path of a state's action field."""
        return ("states", state.name, state.kind, *rest)

    @cached_property
    def graph(self) -> FlowGraph:
        """The flow's state graph (computed once per flow)."""
        from .graph import FlowGraph

        return FlowGraph.of(self.flow, self.flows)


def did_you_mean(word: str, options: Iterable[str]) -> str | None:
    """A hint naming the closest option, if one is close."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"Did you mean {close[0]!r}?" if close else None


def run_checks(
    flow: Flow, doc: Document, flows: Mapping[str, Flow] | None = None
) -> list[Diagnostic]:
    """Run every registered rule on one flow."""
    ctx = CheckContext(flow, doc, flows or {})
    found: list[Diagnostic] = []
    for check in RULES:
        found.extend(check(ctx))
    return found


from . import graph as graph  # noqa: E402 - rules register themselves on import
from . import prompts as prompts  # noqa: E402
from . import routing as routing  # noqa: E402
from . import subflows as subflows  # noqa: E402
from . import telephony as telephony  # noqa: E402
from . import variables as variables  # noqa: E402
from .graph import FlowGraph  # noqa: E402

__all__ = ["RULES", "CheckContext", "FlowGraph", "did_you_mean", "rule", "run_checks"]
