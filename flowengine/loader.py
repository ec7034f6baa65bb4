"""Flow text -> plain data plus a source map; the first step of the pipeline.

YAML is parsed safely (libyaml when available) with a resolver that neutralises the YAML 1.1
traps a flow designer would otherwise fall into: only ``true``/``false`` are booleans (``on``,
``off``, ``yes`` and ``no`` stay strings), only plain decimals are integers (``0700`` stays a
string), ``09:00`` and dates stay strings, and every mapping key is kept as the text written
(an unquoted DTMF key ``1:`` becomes ``"1"``). Duplicate keys, alias bombs, huge files and
non-UTF-8 input become diagnostics; nothing here raises for bad content.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import Diagnostic, FlowLoadError, Location, Severity

MAX_BYTES = 1024 * 1024
"""A flow file larger than this is refused (a generated 1,000-state flow is ~100 KB)."""

MAX_NODES = 200_000
"""Most YAML nodes a document may expand to, counting every use of an alias."""

MAX_DEPTH = 100
"""Deepest nesting of mappings and lists (a real flow needs fewer than 10 levels)."""

_SAFE_NESTING = 5_000
"""libyaml composes nested nodes by C recursion: far deeper input would overflow the C stack
(a crash, not an exception), so text that might nest deeper than this is measured first."""

PathKey = tuple[str | int, ...]

_Base: type[yaml.SafeLoader]
try:  # libyaml parses ~10x faster; the pure-Python loader gives the same nodes and marks.
    _Base = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Base = yaml.SafeLoader

_STR, _INT, _FLOAT = "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_BOOL, _NULL = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"
_MAP, _SEQ, _MERGE = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:merge"
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL}


class _FlowLoader(_Base):  # type: ignore[valid-type,misc]
    """A safe loader whose implicit types are YAML 1.2 core, not YAML 1.1."""

    yaml_implicit_resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}


for _tag, _pattern, _first in [
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    (_INT, r"^[-+]?(?:0|[1-9][0-9]*)$", "-+0123456789"),
    (
        _FLOAT,
        r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
    (_NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (_MERGE, r"^<<$", "<"),
]:
    _FlowLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed flow file: its data, where each value and key stands, and its diagnostics."""

    file: str
    data: Any
    values: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    keys: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    diagnostics: tuple[Diagnostic, ...] = ()
    text: str = ""

    @property
    def ok(self) -> bool:
        """True when the text parsed (there may still be schema and semantic problems)."""
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)

    def locate(self, path: PathKey, *, key: bool = False) -> Location:
        """The location of the value (or with ``key=True`` the key) at ``path``.

        Falls back to the nearest enclosing node that has a position.
        """
        probe = tuple(path)
        table = self.keys if key else self.values
        while probe:
            if probe in table:
                line, col = table[probe]
                return Location(self.file, line, col, tuple(path))
            if key:
                table = self.values
                key = False
                continue
            probe = probe[:-1]
        line, col = self.values.get((), (1, 1))
        return Location(self.file, line, col, tuple(path))


def read_flow_file(path: str | Path, *, display: str | None = None) -> Document:
    """Read and parse one flow file.

    Raises:
        FlowLoadError: the file cannot be read at all (content problems are diagnostics).
    """
    path = Path(path)
    name = display if display is not None else str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except IsADirectoryError as exc:
        raise FlowLoadError(name, "it is a directory") from exc
    except FileNotFoundError as exc:
        raise FlowLoadError(name, "no such file") from exc
    except PermissionError as exc:
        raise FlowLoadError(name, "permission denied") from exc
    except OSError as exc:
        raise FlowLoadError(name, exc.strerror or str(exc)) from exc
    return parse_flow_bytes(raw, name)


def parse_flow_bytes(raw: bytes, file: str = "<flow>") -> Document:
    """Parse bytes of a flow file; every content problem becomes a diagnostic."""
    if len(raw) > MAX_BYTES:
        return _failed(
            file,
            "file-too-large",
            Location(file),
            f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB ({MAX_BYTES:,} bytes)",
            "Split the flow into sub-flows called with `call`.",
        )
    body = raw[len(codecs.BOM_UTF8) :] if raw.startswith(codecs.BOM_UTF8) else raw
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = body[: exc.start]
        line = before.count(b"\n") + 1
        # Columns count characters: the line up to the bad byte is valid UTF-8.
        column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8")) + 1
        return _failed(
            file,
            "encoding",
            Location(file, line, column),
            f"the file is not valid UTF-8 (byte 0x{body[exc.start]:02x})",
            "The file is UTF-16: save it as UTF-8."
            if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
            else "Save the file as UTF-8.",
        )
    return parse_flow_text(text, file)


def parse_flow_text(text: str, file: str = "<flow>") -> Document:
    """Parse the text of a flow file; every content problem becomes a diagnostic."""
    if "\x00" in text:
        index = text.index("\x00")
        line = text.count("\n", 0, index) + 1
        column = index - (text.rfind("\n", 0, index) + 1) + 1
        return _failed(
            file,
            "encoding",
            Location(file, line, column),
            "the file contains a NUL character",
            "Save the file as UTF-8 text.",
        )
    try:
        deep = _too_deep(text)
        if deep is not None:
            return _failed(
                file,
                "yaml-syntax",
                Location(file, *deep),
                f"values are nested more than {MAX_DEPTH} levels deep",
                None,
            )
        loader = _FlowLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        message, hint = _explain(f"{problem}{context}", _char_at(text, mark))
        return _failed(file, "yaml-syntax", loc, message, hint)
    except yaml.YAMLError as exc:
        return _failed(file, "yaml-syntax", Location(file), str(exc).splitlines()[0], None)
    except RecursionError:  # pragma: no cover - the pure-Python composer only
        return _failed(
            file, "yaml-syntax", Location(file), "the document is nested too deeply", None
        )
    if node is None:
        return Document(file, None, {(): (1, 1)}, {}, (), text)
    walker = _Walker(file)
    try:
        data = walker.build(node, ())
    except _TooBigError as exc:
        top = exc.path[:1]
        line, column = walker.keys.get(top, (node.start_mark.line + 1, node.start_mark.column + 1))
        return _failed(
            file,
            "alias-limit",
            Location(file, line, column, top),
            f"the document expands to more than {MAX_NODES:,} values through aliases "
            "(an alias bomb?)",
            "Use fewer nested aliases (*name); repeat small values instead.",
        )
    return Document(file, data, walker.values, walker.keys, tuple(walker.diagnostics), text)


def _too_deep(text: str) -> tuple[int, int] | None:
    """Where (line, column) nesting first exceeds ``MAX_DEPTH``, if the text could nest deeply.

    The parser's event stream is produced without recursion, so this is safe on any input.
    Each nesting level needs a ``[``, a ``{`` or one more column of indentation (a block
    collection in a list item is indented at least one column more than the item's dash, and
    a list in a mapping at least as much as its key), so most files are cleared by counting.
    """
    # Splitting on "\n" alone can only overstate a line's width: the safe side.
    widest = max(len(line) for line in text.split("\n"))
    if text.count("[") + text.count("{") + 2 * widest + 2 <= _SAFE_NESTING:
        return None
    loader = _FlowLoader(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                mark = event.start_mark
                if depth > MAX_DEPTH and mark is not None:
                    return mark.line + 1, mark.column + 1
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()
    return None


def _char_at(text: str, mark: yaml.Mark | None) -> str:
    index = -1 if mark is None else mark.index
    return text[index] if 0 <= index < len(text) else ""


def _explain(problem: str, char: str) -> tuple[str, str | None]:
    """A parser message (libyaml's or PyYAML's, which word some differently) and a hint."""
    if char == "\t" or "tab character" in problem:
        return (
            "found a tab character where YAML expects spaces",
            "YAML indentation must use spaces, not tabs.",
        )
    if "expected a single document" in problem:
        return (
            "the file holds more than one YAML document",
            "A flow file is one document: remove the '---' line (or split the file).",
        )
    return problem, _syntax_hint(problem)


def _syntax_hint(problem: str) -> str | None:
    if "mapping values are not allowed" in problem:
        return "Quote values that contain ': ' (a colon followed by a space)."
    if "found undefined alias" in problem:
        return "Define the anchor (&name) before using the alias (*name)."
    return None


def _short(tag: str) -> str:
    return "!!" + tag[18:] if tag.startswith("tag:yaml.org,2002:") else tag


def _failed(file: str, code: str, loc: Location, message: str, hint: str | None) -> Document:
    diag = Diagnostic(code, Severity.ERROR, message, loc, hint)
    return Document(file, None, {(): (loc.line, loc.column)}, {}, (diag,))


class _TooBigError(Exception):
    def __init__(self, path: PathKey) -> None:
        super().__init__(path)
        self.path = path


class _Walker:
    """Turns a composed node tree into plain data, recording positions as it goes."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.values: dict[PathKey, tuple[int, int]] = {}
        self.keys: dict[PathKey, tuple[int, int]] = {}
        self.diagnostics: list[Diagnostic] = []
        self.count = 0
        self.active: set[int] = set()
        self.too_deep = False

    def error(
        self,
        code: str,
        node: yaml.Node,
        message: str,
        hint: str | None = None,
        path: PathKey = (),
    ) -> None:
        loc = Location(self.file, node.start_mark.line + 1, node.start_mark.column + 1, path)
        self.diagnostics.append(Diagnostic(code, Severity.ERROR, message, loc, hint))

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooBigError(path)
        self.values.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if len(path) > MAX_DEPTH:
            if not self.too_deep:
                self.too_deep = True
                self.error(
                    "yaml-syntax", node, f"values are nested more than {MAX_DEPTH} levels deep"
                )
            return None
        if id(node) in self.active:
            self.error("yaml-syntax", node, "an alias refers to the node that contains it")
            return None
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                self.check_tag(node, _SEQ)
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            self.check_tag(node, _MAP)
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def check_tag(self, node: yaml.Node, expected: str) -> None:
        if node.tag != expected:
            self.tag_error(node)

    def tag_error(self, node: yaml.Node) -> None:
        self.error(
            "yaml-syntax",
            node,
            f"the tag {_short(node.tag)} is not allowed in a flow",
            "A flow holds plain text, numbers, true/false, lists and mappings: remove the tag.",
        )

    def scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag not in _SCALAR_TAGS:
            self.tag_error(node)
            return node.value
        if node.tag == _STR:
            return node.value
        try:
            value = _FlowLoader.construct_scalar_value(node)
        except (ValueError, yaml.YAMLError):
            self.error("yaml-syntax", node, f"{node.value!r} is not a valid {_short(node.tag)}")
            return node.value
        return value

    def mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, yaml.Node] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.update(self.merge(value_node, path))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.error("yaml-syntax", key_node, "a mapping key must be a plain value")
                continue
            # The key is kept exactly as written: `1:`, `on:`, `0700:` and `no:` stay text.
            key = key_node.value
            if key in first_seen:
                line = first_seen[key].start_mark.line + 1
                self.error(
                    "duplicate-key",
                    key_node,
                    f"key {key!r} is repeated (first at line {line})",
                    "Remove one of them: YAML would silently keep only the last.",
                    (*path, key),
                )
                continue
            first_seen[key] = key_node
            child = (*path, key)
            self.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = self.build(value_node, child)
        for key, value in merged.items():
            result.setdefault(key, value)
        return result

    def merge(self, node: yaml.Node, path: PathKey) -> dict[str, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            if not isinstance(source, yaml.MappingNode):
                self.error(
                    "yaml-syntax", source, "a merge key (<<) takes a mapping or a list of them"
                )
                continue
            merged.update(self.mapping(source, path))
        return merged


def _construct_scalar_value(node: yaml.ScalarNode) -> Any:
    constructor = yaml.constructor.SafeConstructor
    value = node.value
    if node.tag == _NULL:
        return None
    if node.tag == _BOOL:
        if value.lower() not in ("true", "false"):
            raise ValueError(value)
        return value.lower() == "true"
    if node.tag == _INT:
        return int(value.replace("_", ""), 10)
    if node.tag == _FLOAT:
        return constructor.construct_yaml_float(constructor(), node)
    raise ValueError(value)  # pragma: no cover - tags are checked before


_FlowLoader.construct_scalar_value = staticmethod(_construct_scalar_value)


def iter_paths(data: Any, prefix: PathKey = ()) -> Iterator[tuple[PathKey, Any]]:
    """Every (path, value) in plain data, depth first."""
    yield prefix, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from iter_paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from iter_paths(value, (*prefix, index))
