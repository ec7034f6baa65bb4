"""The example flows, the language reference and the schema's own examples stay correct.

- Every flow in ``flows/`` validates with no diagnostic at all, as ``flowengine validate
  --strict flows`` runs it in CI, and starts with the editor modeline.
- The two copies of the JSON Schema (``schemas/`` for editors, the package's for the loader)
  are byte-identical.
- Every ``examples`` entry in the schema is valid against the schema node it documents, and
  every state kind has at least one example, valid as a whole state too.
- ``docs/flow-reference.md`` has a section for every state kind, and its YAML snippets are
  valid: a whole flow validates cleanly, a fragment against the part of the schema it shows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource

from flowengine.loader import parse_flow_text
from flowengine.project import FLOW_SUFFIXES, SKIPPED_SUFFIXES, Report, validate_paths
from flowengine.report import render
from flowengine.schema import flow_schema

from .conftest import ROOT

FLOWS = ROOT / "flows"
SCHEMA = ROOT / "schemas" / "flow.schema.json"
PACKAGED_SCHEMA = ROOT / "flowengine" / "schemas" / "flow.schema.json"
REFERENCE = ROOT / "docs" / "flow-reference.md"
MODELINE = "# yaml-language-server: $schema=../schemas/flow.schema.json"

EXAMPLE_FLOWS = sorted(
    p
    for p in FLOWS.iterdir()
    if p.name.endswith(FLOW_SUFFIXES) and not p.name.endswith(SKIPPED_SUFFIXES)
)

# --- The example flows ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder_report() -> Report:
    """``flows/`` validated as CI validates it (from the repository root)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        return validate_paths([FLOWS.relative_to(ROOT)])


def test_there_are_example_flows() -> None:
    names = {p.name for p in EXAMPLE_FLOWS}
    expected = {
        "support-line.yaml",
        "outbound-ivr.yaml",
        "warm-transfer.yaml",
        "account-lookup.yaml",
        "verify-pin.yaml",
    }
    assert expected <= names
    assert (FLOWS / "common.prompts.yaml").is_file()


@pytest.mark.parametrize("path", EXAMPLE_FLOWS, ids=lambda p: p.stem)
def test_example_flow_is_clean(path: Path, folder_report: Report) -> None:
    assert str(path.relative_to(ROOT)) in folder_report.files
    found = [d for d in folder_report.diagnostics if Path(d.location.file).name == path.name]
    assert found == [], render(found, 1, "text")


@pytest.mark.parametrize("path", EXAMPLE_FLOWS, ids=lambda p: p.stem)
def test_example_flow_has_modeline_and_header(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == MODELINE
    header = [line for line in lines[1:] if line.startswith("#")]
    text = "\n".join(header)
    assert "What it shows" in text
    assert "How to read it" in text


def test_some_example_flow_is_bilingual(folder_report: Report) -> None:
    assert any({"en-US", "es-US"} <= set(f.locales) for f in folder_report.flows.values()), (
        "at least one example flow declares locales: [en-US, es-US]"
    )


# --- The schema -------------------------------------------------------------------------------


def test_schema_copies_are_identical() -> None:
    assert SCHEMA.read_bytes() == PACKAGED_SCHEMA.read_bytes(), (
        "copy schemas/flow.schema.json to flowengine/schemas/flow.schema.json"
    )


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return schema


@cache
def _registry() -> Registry:
    schema = _schema()
    return Registry().with_resource(schema["$id"], Resource.from_contents(schema))


def _validator(pointer: str) -> jsonschema.Draft202012Validator:
    """A validator for the schema node at a JSON pointer (``""`` is the whole flow)."""
    return jsonschema.Draft202012Validator(
        {"$ref": f"{_schema()['$id']}#{pointer}"}, registry=_registry()
    )


def _escape(part: str | int) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _nodes(node: Any, pointer: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema object with its JSON pointer (property names themselves are not nodes)."""
    if isinstance(node, dict):
        yield pointer, node
        for key, value in node.items():
            if key in ("properties", "$defs", "patternProperties"):
                for name, sub in value.items():
                    yield from _nodes(sub, f"{pointer}/{key}/{_escape(name)}")
            elif key in ("examples", "default", "enum", "const"):
                continue
            else:
                yield from _nodes(value, f"{pointer}/{_escape(key)}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _nodes(item, f"{pointer}/{i}")


def _examples() -> list[tuple[str, int, Any]]:
    return [
        (pointer, i, example)
        for pointer, node in _nodes(_schema())
        for i, example in enumerate(node.get("examples", []))
    ]


@pytest.mark.parametrize(
    ("pointer", "index", "example"), _examples(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_schema_example_is_valid_where_it_stands(pointer: str, index: int, example: Any) -> None:
    errors = [e.message for e in _validator(pointer).iter_errors(example)]
    assert errors == [], f"{pointer} examples[{index}]"


STATE_KINDS = [
    k
    for k in _schema()["$defs"]["state"]["properties"]
    if k not in ("on", "description", "max_visits")
]


def _kind_examples(kind: str) -> list[Any]:
    node = _schema()["$defs"]["state"]["properties"][kind]
    found = list(node.get("examples", []))
    for branch in node.get("anyOf", []) + node.get("oneOf", []):
        found += branch.get("examples", [])
    return found


@pytest.mark.parametrize("kind", STATE_KINDS)
def test_state_kind_examples_are_valid(kind: str) -> None:
    examples = _kind_examples(kind)
    assert examples, f"state kind {kind!r} has no examples in the schema"
    own = _validator(f"/$defs/state/properties/{kind}")
    state = _validator("/$defs/state")
    for example in examples:
        assert [e.message for e in own.iter_errors(example)] == [], (kind, example)
        assert [e.message for e in state.iter_errors({kind: example})] == [], (kind, example)


def test_schema_is_the_one_the_package_loads() -> None:
    assert flow_schema() == _schema()


# --- The language reference -------------------------------------------------------------------


@cache
def _reference() -> str:
    return REFERENCE.read_text(encoding="utf-8")


@pytest.mark.parametrize("kind", STATE_KINDS)
def test_reference_documents_every_state_kind(kind: str) -> None:
    assert re.search(rf"^### {re.escape(kind)}$", _reference(), re.M), kind


def _snippets() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", _reference(), re.S)


@pytest.mark.parametrize("index", range(len(_snippets())))
def test_reference_snippet_is_valid(index: int, tmp_path: Path) -> None:
    text = _snippets()[index]
    doc = parse_flow_text(text)
    assert doc.diagnostics == ()
    data = doc.data
    if data is None:  # a comment only (the modeline)
        return
    assert isinstance(data, dict)
    if "states" in data:
        path = tmp_path / "snippet.yaml"
        path.write_text(text, encoding="utf-8")
        report = validate_paths([path])
        assert report.diagnostics == [], render(report.diagnostics, 1, "text")
        return
    kinds = set(STATE_KINDS)
    for key, value in data.items():
        if key in _schema()["properties"]:
            pointer = f"/properties/{key}"
        elif isinstance(value, dict) and kinds & set(value):
            pointer = "/$defs/state"  # a state, by name
        elif key in kinds:
            pointer = f"/$defs/state/properties/{key}"  # an action key on its own
        elif key in ("timeout", "digit_duration", "backoff", "max_duration"):
            pointer = "/$defs/duration"
        else:
            pytest.fail(f"snippet {index}: nothing to check {key!r} against")
        errors = [e.message for e in _validator(pointer).iter_errors(value)]
        assert errors == [], f"snippet {index}, {key!r}"
