"""Flow versions as the store keeps them: the files that make a version, and the flow rebuilt.

Where it sits: between the daemon's flow catalogue (``flows.FlowCatalog``, which saves and
fetches versions through the store's ``save_flow_version`` and ``flow_version``) and the
project's loader. A version is named by its content hash (``Flow.content_hash``: the SHA-256 of
the flow file's text and of its prompt catalogue's, ``build.version_hash``). Rebuilding it needs
those texts and the sub-flows it calls (the checks look their inputs and outputs up). So a
version is stored as a *bundle*, JSON::

    {"format": 1, "flow": "support.yaml", "file": "flows/support.yaml",
     "files": {"support.yaml": "...", "common.prompts.yaml": "...", "verify-pin.yaml": "..."}}

``files`` maps paths relative to the folder that holds them all (``/`` separated) to their
text; ``flow`` is the flow's own entry and ``file`` the name the flow had when it was loaded
(its diagnostics and logs keep it). The sub-flows' catalogues and their own sub-flows are in
too. The hash covers the flow's text and its catalogue's; the sub-flows are versions of their
own, kept here as they were when the version was bundled (when it was loaded) for the checks.

``rebuild`` runs the loader's steps on the bundle's text, in memory (parse, schema, catalogue,
build, checks), and refuses a bundle whose flow does not hash to the version asked for, or that
has errors: ``VersionError``. A call only ever restores on the exact version it started on.
"""

from __future__ import annotations

import codecs
import json
import os
import posixpath
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import model as m
from ..build import build_flow, version_hash
from ..checks import run_checks
from ..errors import Diagnostic, FlowEngineError, Severity
from ..loader import Document, parse_flow_text
from ..project import SKIPPED_SUFFIXES
from ..schema import prompt_diagnostics, schema_diagnostics

FORMAT = 1
"""Version of the bundle's JSON form."""


class VersionError(FlowEngineError):
    """Raised when a flow version cannot be bundled from its files, or rebuilt from a bundle."""


# -- bundling ---------------------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise VersionError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if raw.startswith(codecs.BOM_UTF8):  # the loader drops it before hashing: so does this
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VersionError(f"{path}: not UTF-8") from exc


def _catalogue_name(text: str) -> str | None:
    data = parse_flow_text(text).data
    name = data.get("catalogue") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else None


def bundle(flow: m.Flow, lookup: Callable[[str], m.Flow | None]) -> str:
    """The bundle of ``flow``'s version, read from its files (``Flow.file``) now.

    ``lookup`` finds a sub-flow by name (the versions loaded with ``flow``). Call it right after
    loading: the flow's file must still hold the text of this version.

    Raises:
        VersionError: a file cannot be read, or the flow's file has changed since it was
            loaded (its text no longer has the version's hash), or a sub-flow is unknown.
    """
    texts: dict[str, str] = {}

    def add(path: Path) -> str:
        key = os.path.normpath(os.path.abspath(path))
        if key not in texts:
            texts[key] = _read(path)
        return texts[key]

    main = os.path.normpath(os.path.abspath(flow.file))
    todo, seen = [flow], {flow.name}
    while todo:
        current = todo.pop()
        path = Path(current.file)
        text = add(path)
        catalogue = _catalogue_name(text)
        catalogue_text = None if catalogue is None else add(path.parent / catalogue)
        if version_hash(text, catalogue_text) != current.content_hash:
            raise VersionError(
                f"{current.file} or its catalogue changed since flow {current.name!r} version "
                f"{current.content_hash[:12]} was loaded"
            )
        for state in current.states.values():
            action = state.action
            if isinstance(action, m.CallFlow) and action.flow not in seen:
                sub = lookup(action.flow)
                if sub is None:
                    raise VersionError(f"flow {current.name!r} calls unknown {action.flow!r}")
                seen.add(sub.name)
                todo.append(sub)
    root = os.path.commonpath([os.path.dirname(k) for k in texts])
    files = {Path(os.path.relpath(k, root)).as_posix(): t for k, t in sorted(texts.items())}
    entry = Path(os.path.relpath(main, root)).as_posix()
    data = {"format": FORMAT, "flow": entry, "file": flow.file, "files": files}
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# -- rebuilding -------------------------------------------------------------------------------


def _errors(diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]) -> list[str]:
    return [d.render() for d in diagnostics if d.severity is Severity.ERROR]


def _catalogue_key(files: dict[str, str], key: str) -> str | None:
    """The bundle's key of the catalogue the flow under ``key`` names, if it names one.

    Raises:
        VersionError: the catalogue is not in the bundle.
    """
    name = _catalogue_name(files[key])
    if name is None:
        return None
    cat_key = posixpath.normpath(posixpath.join(posixpath.dirname(key), name))
    if cat_key not in files:
        raise VersionError(f"{key}: its prompt catalogue {name!r} is not in the bundle")
    return cat_key


def _build(files: dict[str, str], key: str, display: str) -> tuple[m.Flow, Document]:
    """One flow of the bundle, as ``project.validate_paths`` builds a file (checks aside)."""
    doc = parse_flow_text(files[key], display)
    problems = _errors(doc.diagnostics)
    if doc.ok and not problems:
        problems = _errors(schema_diagnostics(doc))
    if problems:
        raise VersionError(f"{key}: " + "; ".join(problems))
    extra: dict[str, Any] = {}
    cat_key = _catalogue_key(files, key)
    if cat_key is not None:
        cat = parse_flow_text(files[cat_key], cat_key)
        found = list(cat.diagnostics) + (prompt_diagnostics(cat) if cat.ok else [])
        if found:
            raise VersionError(f"{cat_key}: " + "; ".join(d.render() for d in found))
        extra = dict(cat.data) if isinstance(cat.data, dict) else {}
    catalogue_text = None if cat_key is None else files[cat_key]
    flow, diagnostics = build_flow(doc, extra_prompts=extra, catalogue_text=catalogue_text)
    problems = _errors(diagnostics)
    if problems:
        raise VersionError(f"{key}: " + "; ".join(problems))
    return flow, doc


def rebuild(source: str, flow_hash: str) -> m.Flow:
    """The flow version ``flow_hash`` from its bundle, loaded and checked as a file would be.

    Raises:
        VersionError: the bundle is malformed, its flow's text does not have ``flow_hash``
            (tampered with, or the bundle of another version), or the flow has errors.
    """
    try:
        data = json.loads(source)
        files, entry, display = data["files"], data["flow"], data["file"]
        fmt = data["format"]
    except (ValueError, KeyError, TypeError) as exc:
        raise VersionError(f"version {flow_hash[:12]}: not a flow bundle ({exc!r})") from exc
    if fmt != FORMAT:
        raise VersionError(f"version {flow_hash[:12]}: bundle format {fmt!r} is not {FORMAT}")
    valid = isinstance(files, dict) and all(isinstance(t, str) for t in files.values())
    if not valid or entry not in files or not isinstance(display, str):
        raise VersionError(f"version {flow_hash[:12]}: the bundle has no flow file {entry!r}")
    cat_key = _catalogue_key(files, entry)
    actual = version_hash(files[entry], None if cat_key is None else files[cat_key])
    if actual != flow_hash:
        raise VersionError(
            f"version {flow_hash[:12]}: the bundle's flow hashes to {actual[:12]}; refused"
        )
    flow, doc = _build(files, entry, display)
    universe: dict[str, m.Flow] = {}
    for key in sorted(files):
        if key != entry and not key.endswith(SKIPPED_SUFFIXES):
            other, _ = _build(files, key, key)
            universe.setdefault(other.name, other)
    universe.pop(flow.name, None)
    problems = _errors(run_checks(flow, doc, universe))
    if problems:
        raise VersionError(f"version {flow_hash[:12]} of {flow.name!r}: " + "; ".join(problems))
    if flow.content_hash != flow_hash:  # pragma: no cover - the builder hashes the same text
        raise VersionError(f"version {flow_hash[:12]}: rebuilt as {flow.content_hash[:12]}")
    return flow
