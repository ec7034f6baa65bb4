"""Scenario tests: scripted calls on a flow, checked offline, with edge coverage.

Where it sits: on top of the runtime (``Simulator``) and the project loader, beside the CLI,
which uses it for ``flowengine test`` and ``flowengine simulate``. A scenario file
(``*.test.yaml``, docs/scenarios.md) names a flow and scripts calls on it.

- ``model``: the parsed file (``ScenarioFile``, ``Scenario``, ``Step``, ``Expectation``);
- ``loader``: file -> model, every problem a diagnostic with its position;
- ``flows``: the flow under test loaded, and the names the file uses checked against it;
- ``runner``: one scenario on the simulator (``ScenarioTelephony``, ``run_scenario``);
- ``expect``: an expectation against the call, mismatches said plainly;
- ``coverage``: the edges of each flow, and which ones the scenarios took;
- ``suite``: a whole run over files and folders (``run_paths``);
- ``report``: runs and traces as text and JSON;
- ``interactive``: ``flowengine simulate FLOW`` without a script, one line at a time.
"""

from __future__ import annotations

from .coverage import Coverage, Edge, FlowCoverage, flow_edges
from .model import ScenarioError
from .report import render
from .runner import ScenarioResult, run_scenario
from .suite import Run, find_scenario_files, run_paths

__all__ = [
    "Coverage",
    "Edge",
    "FlowCoverage",
    "Run",
    "ScenarioError",
    "ScenarioResult",
    "find_scenario_files",
    "flow_edges",
    "render",
    "run_paths",
    "run_scenario",
]
