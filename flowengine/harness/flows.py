"""A working copy of a flows folder, with the few changes a local run needs.

The demo and the end-to-end tests serve the example flows unchanged but for what a machine
without the outside world must change, done on a copy so ``flows/`` stays as designers wrote
it:

- a variable's default (``set_var_default``): support-line's ``hours_override`` set to
  ``open`` keeps the line open whatever the time of day the demo runs at, which is what the
  flow's own emergency switch is for;
- literal text (``replace``): account-lookup's business systems moved to a local fake on
  loopback, with ``allowed_hosts`` to match.

Only the flows at the top of the folder are copied (with the prompt catalogues beside them),
not their scenario files. Every change must apply: a pattern that no longer matches raises
``ValueError`` rather than leaving a copy that silently differs from what was asked.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

_KEY = re.compile(r"^(?P<indent>\s*)(?P<name>[A-Za-z_][\w-]*):(?P<rest>.*)$")


def _top_level_block(lines: list[str], key: str) -> tuple[int, int]:
    """The line range (start, end) of the top-level mapping ``key:``'s body."""
    start = next((i for i, line in enumerate(lines) if line.rstrip() == f"{key}:"), None)
    if start is None:
        raise ValueError(f"no top-level {key!r} mapping")
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end][:1] in " \t#"):
        end += 1
    return start + 1, end


def set_var_default(text: str, name: str, value: str) -> str:
    """``text`` (a flow's YAML) with the default of ``vars.<name>`` set to the string ``value``.

    Handles both spellings of a variable: ``name: value`` and a mapping with ``default:``.

    Raises:
        ValueError: the flow has no such variable written in either way.
    """
    lines = text.splitlines(keepends=True)
    start, end = _top_level_block(lines, "vars")
    quoted = json.dumps(value)
    for i in range(start, end):
        match = _KEY.match(lines[i].rstrip("\n"))
        if not match or match["name"] != name:
            continue
        rest = match["rest"].split(" #", 1)[0].strip()
        if rest:
            lines[i] = f"{match['indent']}{name}: {quoted}\n"
            return "".join(lines)
        width = len(match["indent"])
        for j in range(i + 1, end):
            inner = _KEY.match(lines[j].rstrip("\n"))
            if inner and len(inner["indent"]) <= width:
                break
            if inner and inner["name"] == "default":
                lines[j] = f"{inner['indent']}default: {quoted}\n"
                return "".join(lines)
    raise ValueError(f"no variable {name!r} with a default under vars")


def copy_flows(
    source: Path,
    target: Path,
    *,
    var_defaults: Mapping[str, Mapping[str, str]] | None = None,
    replace: Mapping[str, Mapping[str, str]] | None = None,
) -> Path:
    """Copy the flows of ``source`` into ``target`` (created), applying the changes asked.

    ``var_defaults`` maps a file's stem (``support-line``) to ``{variable: default}``;
    ``replace`` maps a file's stem to ``{old text: new text}``.

    Raises:
        ValueError: a change names a file that is not there, or does not apply.
    """
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.y*ml")):
        shutil.copy2(path, target / path.name)
    changed = {**dict.fromkeys(var_defaults or {}), **dict.fromkeys(replace or {})}
    for stem in changed:
        path = target / f"{stem}.yaml"
        if not path.is_file():
            raise ValueError(f"no flow file {stem}.yaml in {source}")
        text = path.read_text(encoding="utf-8")
        for old, new in (replace or {}).get(stem, {}).items():
            if old not in text:
                raise ValueError(f"{stem}.yaml: {old!r} does not occur")
            text = text.replace(old, new)
        for name, value in (var_defaults or {}).get(stem, {}).items():
            text = set_var_default(text, name, value)
        path.write_text(text, encoding="utf-8")
    return target
