"""The benchmark's generated flow is a fair one: valid, clean and of the size it claims.

Timing is measured by ``bench/validate_large.py``, not asserted here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from flowengine.loader import parse_flow_text
from flowengine.project import validate_paths

from .conftest import ROOT


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "validate_large", ROOT / "bench" / "validate_large.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _bench()


def test_generated_1000_state_flow_validates_with_no_diagnostics(tmp_path: Path) -> None:
    path = tmp_path / "large.yaml"
    path.write_text(BENCH.generate_flow(1000), encoding="utf-8")
    report = validate_paths([path])
    assert [d.render() for d in report.diagnostics] == []
    (flow,) = report.flows.values()
    assert len(flow.states) == 1000


def test_generated_flow_uses_every_kind_of_the_mix() -> None:
    data = parse_flow_text(BENCH.generate_flow(28)).data
    kinds = {next(k for k in s if k not in ("on", "description")) for s in data["states"].values()}
    assert kinds == {
        "answer", "say", "hangup", "end", "menu", "collect", "http", "choose", "set",
        "schedule", "play", "transfer", "dial_out", "wait", "stop_dial_out",
    }  # fmt: skip


def test_generated_flow_refuses_a_size_it_cannot_build() -> None:
    with pytest.raises(ValueError, match="^states must be 4 plus a multiple of 12, not 1001$"):
        BENCH.generate_flow(1001)


def test_benchmark_runs_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    assert BENCH.main(["--states", "28", "--runs", "1"]) == 0
    out = capsys.readouterr().out
    assert "flowengine validate_paths" in out
    assert "flowengine / baseline:" in out
