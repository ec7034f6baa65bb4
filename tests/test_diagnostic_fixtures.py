"""Data-driven diagnostics: every fixture's output is pinned, every documented code has one.

``tests/fixtures/flows/invalid/<code>/<case>.yaml`` must report ``<code>``, and the whole text
report (as ``flowengine validate <file>`` prints it, from the repository root) must equal
``<case>.expected``. Set ``FLOWENGINE_UPDATE_FIXTURES=1`` to rewrite the expectations.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from flowengine.project import validate_paths
from flowengine.report import render

from .conftest import FIXTURES, ROOT

INVALID = FIXTURES / "flows" / "invalid"
VALID = FIXTURES / "flows" / "valid"
CASES = sorted(INVALID.glob("*/*.yaml"))
DOCUMENTED = re.findall(
    r"^### `([a-z0-9-]+)`", (ROOT / "docs" / "diagnostics.md").read_text(), re.M
)


def _report(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, set[str]]:
    monkeypatch.chdir(ROOT)
    report = validate_paths([path.relative_to(ROOT)])
    return render(report.diagnostics, len(report.files), "text") + "\n", {
        d.code for d in report.diagnostics
    }


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_invalid_fixture_output_is_pinned(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, codes = _report(case, monkeypatch)
    assert case.parent.name in codes
    expected = case.with_suffix(".expected")
    if os.environ.get("FLOWENGINE_UPDATE_FIXTURES"):
        expected.write_text(text, encoding="utf-8")
    assert text == expected.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", sorted(VALID.glob("*.yaml")), ids=lambda p: p.stem)
def test_valid_fixture_is_clean(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, codes = _report(case, monkeypatch)
    assert codes == set(), text


def test_every_documented_code_has_a_fixture() -> None:
    with_fixture = {p.parent.name for p in CASES}
    assert sorted(set(DOCUMENTED) - with_fixture) == []


def test_every_fixture_code_is_documented() -> None:
    assert sorted({p.parent.name for p in CASES} - set(DOCUMENTED)) == []


def test_documented_codes_are_unique() -> None:
    assert len(DOCUMENTED) == len(set(DOCUMENTED))
