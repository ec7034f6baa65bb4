"""Property tests: whatever a file holds, the pipeline answers with diagnostics, never a crash.

Arbitrary text and bytes go to the loader and through ``validate_paths``; generated flows that
the schema accepts (random states, kinds and routes) go through every check.
"""

from __future__ import annotations

import copy
import string
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowengine.errors import Diagnostic, Severity
from flowengine.loader import Document, parse_flow_bytes, parse_flow_text
from flowengine.project import validate_paths

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SCHEMA_CODES = {"unknown-key", "missing-key", "wrong-type", "invalid-value", "state-kind"}

# Pieces of YAML, so random text reaches the parser's corners (aliases, tags, merges, flow
# collections, block scalars, tabs, odd line breaks) far more often than random characters do.
TOKENS = [
    "a", "on", "no", "1", "0700", "09:00", "2026-12-25", "true", "~", "1e3", ".inf",
    ": ", ":", "- ", "? ", "[", "]", "{", "}", ", ", "&x ", "*x", "&y ", "*y", "<<: ",
    "!!str ", "!!int ", "!!binary ", "!!python/object:os.system ", "!x ", "|", ">-",
    "'", '"', "\\", "# c", "---", "...", "%YAML 1.1", "\n", "\n  ", "\n    ", "\t",
    "\r\n", "\x85", "\u2028", "\ufeff", "\x00", "é", "😀", "name", "start", "states",
]  # fmt: skip


def yamlish() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(TOKENS), max_size=60).map("".join)


def assert_well_formed(diagnostics: tuple[Diagnostic, ...] | list[Diagnostic]) -> None:
    for d in diagnostics:
        assert d.code
        assert d.message
        assert d.location.line >= 1
        assert d.location.column >= 1
        assert isinstance(d.severity, Severity)
        d.render()
        d.as_dict()


def assert_document(doc: Document) -> None:
    assert_well_formed(doc.diagnostics)
    if doc.data is None and doc.diagnostics:
        assert not doc.ok


@FUZZ
@given(st.text(max_size=300))
def test_any_text_parses_to_data_or_diagnostics(text: str) -> None:
    assert_document(parse_flow_text(text, "flow.yaml"))


@FUZZ
@given(yamlish())
def test_yaml_like_text_parses_to_data_or_diagnostics(text: str) -> None:
    assert_document(parse_flow_text(text, "flow.yaml"))


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_parse_to_data_or_diagnostics(raw: bytes) -> None:
    assert_document(parse_flow_bytes(raw, "flow.yaml"))


def validate_bytes(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "flow.yaml"
        path.write_bytes(raw)
        report = validate_paths([path])
    assert len(report.files) == 1
    assert_well_formed(report.diagnostics)


@FUZZ
@given(st.one_of(st.binary(max_size=200), yamlish().map(str.encode)))
def test_any_file_content_validates_to_diagnostics(raw: bytes) -> None:
    validate_bytes(raw)


SAFE_TEXT = st.text(alphabet=string.ascii_letters + " _-", min_size=1, max_size=12)
JSON_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers() | SAFE_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(SAFE_TEXT, inner, max_size=4),
    max_leaves=20,
)


@FUZZ
@given(st.dictionaries(SAFE_TEXT, JSON_LIKE, max_size=5))
def test_loader_reads_back_what_pyyaml_writes(data: dict[str, Any]) -> None:
    doc = parse_flow_text(yaml.safe_dump(data), "flow.yaml")
    assert (doc.data if data else {}, doc.diagnostics) == (data, ())


# --- flows the schema accepts ---------------------------------------------------------------

NAMES = ["welcome", "menu", "pin", "sales", "lookup", "hours", "wait_agent", "bye", "done"]
OUTCOMES = [
    "answered", "failed", "done", "ok", "no_input", "no_match", "max_attempts", "sent",
    "no_answer", "busy", "accepted", "timeout", "error", "open", "closed", "holiday",
    "hangup", "max_visits", "dialout.answered", "calltransfer.answered", "nonsense",
]  # fmt: skip
TARGETS = [*NAMES, "nowhere"]
target = st.sampled_from(TARGETS)
ACTIONS: list[tuple[str, Any]] = [
    ("answer", None), ("answer", {}), ("answer", {"timeout": "10s"}),
    ("play", "hello"), ("play", "missing"), ("play", {"prompt": ["hello", "hello"]}),
    ("say", "Hello."), ("say", "You owe {{ vars.x }}."), ("say", {"text": "Hi", "barge_in": True}),
    ("collect", {"prompt": "hello", "into": "x", "max_digits": 4}),
    ("collect", {"prompt": "hello", "into": "x", "min_digits": 6, "max_digits": 4}),
    ("collect", {"prompt": ["hello", "missing"], "into": "y", "max_digits": 1, "attempts": 1,
                 "terminator": "", "pattern": "([0-9]",
                 "timeouts": {"first_digit": "2s", "inter_digit": "5s", "total": "1s"}}),
    ("menu", {"prompt": "hello", "options": {"1": "sales", "2": "pin"}}),
    ("menu", {"prompt": "hello", "options": {"0": "menu", "A": "bye", "12": "nowhere"},
              "timeout": "3s", "attempts": 2, "no_input_prompt": "missing"}),
    ("send_dtmf", "123#"), ("send_dtmf", "w1"), ("send_dtmf", {"tones": "2", "leg": "agent"}),
    ("dial_out", {"to": "+14155550123", "leg": "agent"}), ("dial_out", {"to": "0207 946"}),
    ("dial_out", {"to": "sip:a@example.com", "timeout": "20s"}),
    ("stop_dial_out", None), ("stop_dial_out", {"leg": "agent"}),
    ("transfer", {"room": "sales"}), ("transfer", {"phone": "+14155550199"}),
    ("transfer", {"sip": "sip:q@pbx.example.com", "leg": "agent"}),
    ("refer", {"to": "sip:q@pbx.example.com"}), ("refer", {"to": "sip:x@a.sip.daily.co"}),
    ("wait", {"for": "2s"}), ("wait", {"events": ["dialout.answered"]}),
    ("wait", {"events": ["calltransfer.answered", "dialout.stopped"], "timeout": "30s"}),
    ("choose", {"when": [{"if": "vars.x > 1", "goto": "sales"}], "otherwise": "menu"}),
    ("choose", {"when": [{"if": "vars.y", "goto": "bye"}, {"if": "{{ oops", "goto": "nowhere"}],
                "otherwise": "welcome"}),
    ("set", {"x": 1}), ("set", {"x": "{{ vars.x + 1 }}"}), ("set", {"z": "{{ call.nope }}"}),
    ("http", {"url": "https://crm.example.com/a", "retries": 2}),
    ("http", {"url": "https://evil.test/", "method": "POST", "save": {"x": "{{ response.json }}"}}),
    ("schedule", {"timezone": "Europe/London", "hours": {"mon-fri": "09:00-17:00"},
                  "holidays": ["2026-12-25"]}),
    ("schedule", {"hours": {"mon-fri": "09:00-17:00", "fri": "closed"}}),
    ("schedule", {"timezone": "Mars/Olympus", "hours": {"sat": ["10:00-12:00", "25:00-26:00"]}}),
    ("call", {"flow": "fuzz-sub", "inputs": {"x": 1}, "outputs": {"x": "x"}}),
    ("call", {"flow": "missing"}),
    ("return", None), ("return", {"outcome": "done"}),
    ("hangup", None), ("hangup", {}), ("hangup", {"reason": "done"}),
    ("end", None), ("end", {}),
]  # fmt: skip


@st.composite
def states(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=len(NAMES), unique=True))
    out: dict[str, Any] = {}
    for name in names:
        kind, body = draw(st.sampled_from(ACTIONS))
        state: dict[str, Any] = {kind: copy.deepcopy(body)}
        routes = draw(st.dictionaries(st.sampled_from(OUTCOMES), target, max_size=4))
        if routes:
            state["on"] = routes
        if draw(st.booleans()) and draw(st.booleans()):
            state["max_visits"] = draw(st.integers(1, 5))
        out[name] = state
    return out


@st.composite
def flows(draw: st.DrawFn) -> dict[str, Any]:
    body = draw(states())
    flow: dict[str, Any] = {
        "name": "fuzz",
        "start": draw(st.sampled_from([*body, "nowhere"])),
        "vars": {"x": 0, "y": False},
        "prompts": {"hello": "Hello."},
        "allowed_hosts": ["crm.example.com"],
        "states": body,
    }
    handlers = draw(st.dictionaries(st.sampled_from(["hangup", "error", "limit"]), target))
    if handlers:
        flow["on"] = handlers
    if draw(st.booleans()):
        flow["match"] = draw(
            st.sampled_from([{"dialin": ["+14155550100"]}, {"sip_uri": ["sip:a@b.example.com"]}])
        )
    return flow


SUB_FLOW = {
    "name": "fuzz-sub",
    "inputs": {"x": 0},
    "outputs": ["x"],
    "start": "work",
    "states": {"work": {"set": {"x": 1}, "on": {"done": "back"}}, "back": {"return": None}},
}


SUB_FLOW_TEXT = yaml.safe_dump(SUB_FLOW, sort_keys=False)


def dump(data: Any) -> str:
    text: str = yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))
    return text


def validate_flow(flow: dict[str, Any]) -> list[Diagnostic]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "flow.yaml"
        path.write_text(dump(flow), encoding="utf-8")
        (Path(folder) / "sub.yaml").write_text(SUB_FLOW_TEXT, encoding="utf-8")
        report = validate_paths([path])
    assert_well_formed(report.diagnostics)
    return report.diagnostics


@settings(FUZZ, max_examples=120)
@given(flows())
def test_flows_the_schema_accepts_go_through_every_check_without_a_crash(
    flow: dict[str, Any],
) -> None:
    found = validate_flow(flow)
    assert not {d.code for d in found} & SCHEMA_CODES, [d.render() for d in found]


def test_the_sub_flow_used_by_generated_flows_is_clean() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sub.yaml"
        path.write_text(SUB_FLOW_TEXT, encoding="utf-8")
        assert validate_paths([path]).diagnostics == []


@settings(FUZZ, max_examples=60)
@given(flows(), st.data())
def test_damaged_flows_give_diagnostics_without_a_crash(flow: dict[str, Any], data: Any) -> None:
    """Replace one value anywhere in a good flow with something of another shape."""
    junk = data.draw(JSON_LIKE | st.floats(allow_nan=False) | st.just("{{ vars.") | st.just({}))
    node: Any = flow
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if not isinstance(child, (dict, list)) or not child or data.draw(st.booleans()):
            node[key] = junk
            break
        node = child
    validate_flow(flow)
