"""The store benchmark runs end to end on a small load (its figures are in docs/benchmarks.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from ..conftest import ROOT


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "store_append", ROOT / "bench" / "store_append.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_store_benchmark_runs_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _bench()
    argv = ["--calls", "1,4", "--appends", "8", "--runs", "1", "--dir", str(tmp_path)]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "| 4 | group commit |" in out
    assert "| 4 | commit per append |" in out
    assert list(tmp_path.iterdir()) == []  # its files are gone
