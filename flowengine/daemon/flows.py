"""The flows a daemon runs: loaded from ``--flows``, routed by ``match``, reloaded on change.

Where it sits: between the project loader (``project.validate_paths``) and the runtime's
``FlowSet``. At startup every file must validate, or the daemon refuses to start
(``FlowValidationError`` with every diagnostic). Afterwards a poller looks at the files'
modification times; on a change the folder is validated again and each flow that validates
is added to the ``FlowSet``: new calls get the new version, while every version ever loaded
stays in the set by content hash, so live calls finish on the version they started on. A flow
whose new text has errors keeps its old version, and the diagnostics are logged.

Routing an inbound call (``route``): a flow matches when the dialled address is one of its
``match.dialin`` numbers or ``match.sip_uri`` URIs (compared without parameters, in any case),
and every header of its ``match.sip_headers`` has the listed value; a flow with only
``sip_headers`` matches on them alone. Of several matches the one with more header conditions
wins, then the first by name, so the choice never depends on file order.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from .. import model as m
from ..addresses import is_sip, normalise_phone
from ..errors import FlowEngineError, FlowValidationError
from ..project import Report, collect_files, validate_paths
from ..runtime.compiler import FlowSet

log = structlog.get_logger("flowengine.daemon.flows")

WATCHED_SUFFIXES = (".yaml", ".yml")


def _bare_uri(uri: str) -> str:
    return uri.strip().split(";", 1)[0].split("?", 1)[0].lower()


def _number(value: str) -> str:
    value = value.strip()
    return normalise_phone(value) or value


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What one reload did: flows added or updated (name -> version), and the errors seen."""

    changed: Mapping[str, str]
    errors: tuple[str, ...]


class FlowCatalog:
    """The loaded flows, the routing table, and hot reload."""

    def __init__(self, folder: Path, flows: FlowSet | None = None) -> None:
        self.folder = folder
        self.flows = flows if flows is not None else FlowSet()
        self._mtimes: dict[str, float] = {}

    @classmethod
    def load(cls, folder: Path) -> FlowCatalog:
        """Load every flow of ``folder``; all must validate.

        Raises:
            FlowValidationError: some file has errors (every diagnostic attached).
            FlowEngineError: the folder cannot be read.
        """
        catalog = cls(folder)
        report = validate_paths([folder])
        if report.errors:
            raise FlowValidationError(report.diagnostics)
        for flow in report.flows.values():
            catalog.flows.add(flow)
        catalog._mtimes = catalog._scan()
        return catalog

    # -- routing ---------------------------------------------------------------------------

    def current(self) -> list[m.Flow]:
        """The current version of every flow, by name."""
        return [f for name in self.flows.names if (f := self.flows.get(name)) is not None]

    def route(self, to: str, sip_headers: Mapping[str, str] | None = None) -> m.Flow | None:
        """The flow an inbound call to ``to`` starts, or None."""
        headers = {k.lower(): v for k, v in (sip_headers or {}).items()}
        dialled_uri = _bare_uri(to) if is_sip(to) else None
        dialled_number = None if dialled_uri else _number(to)
        best: tuple[int, str, m.Flow] | None = None
        for flow in self.current():
            match = flow.match
            wanted = {k.lower(): v for k, v in match.sip_headers.items()}
            if any(headers.get(k) != v for k, v in wanted.items()):
                continue
            if match.dialin or match.sip_uri:
                hit = (
                    dialled_uri in {_bare_uri(u) for u in match.sip_uri}
                    if dialled_uri
                    else dialled_number in {_number(n) for n in match.dialin}
                )
                if not hit:
                    continue
            elif not wanted:
                continue  # no match at all: an outbound or sub-flow, never routed to
            rank = (-len(wanted), flow.name, flow)
            if best is None or rank[:2] < best[:2]:
                best = rank
        return best[2] if best else None

    # -- hot reload ------------------------------------------------------------------------

    def _scan(self) -> dict[str, float]:
        found: dict[str, float] = {}
        try:
            entries = list(self.folder.rglob("*"))
        except OSError:
            return found
        for path in entries:
            if path.name.endswith(WATCHED_SUFFIXES):
                try:
                    found[str(path)] = path.stat().st_mtime_ns / 1e9
                except OSError:
                    continue
        return found

    def changed(self) -> bool:
        """Whether a flow file was added, removed or modified since the last look."""
        return self._scan() != self._mtimes

    def _validate(self) -> Report | str:
        self._mtimes = self._scan()
        try:
            if not collect_files([self.folder]):
                return "no flow files found"
            return validate_paths([self.folder])
        except FlowEngineError as exc:
            return str(exc)

    def _apply(self, report: Report | str) -> ReloadResult:
        if isinstance(report, str):
            return ReloadResult({}, (report,))
        changed: dict[str, str] = {}
        for flow in report.flows.values():
            current = self.flows.get(flow.name)
            if current is None or current.content_hash != flow.content_hash:
                self.flows.add(flow)  # one assignment per name: atomic for the event loop
                changed[flow.name] = flow.content_hash[:12]
        return ReloadResult(changed, tuple(d.render() for d in report.errors))

    def reload(self) -> ReloadResult:
        """Validate the folder again and take every flow that validates.

        A flow with errors keeps its current version; a removed file's flow stays loaded
        (live calls may use it) and keeps its routes until the daemon restarts.
        """
        return self._apply(self._validate())

    async def watch(
        self, interval: float, on_reload: Callable[[ReloadResult], None] | None = None
    ) -> None:
        """Poll the folder every ``interval`` seconds and reload on change (runs until
        cancelled)."""
        while True:
            await asyncio.sleep(interval)
            if self.changed():
                await self.reload_async(on_reload)

    async def reload_async(
        self, on_reload: Callable[[ReloadResult], None] | None = None
    ) -> ReloadResult:
        """``reload``, validating in a thread (it reads files) and swapping on the loop."""
        result = self._apply(await asyncio.to_thread(self._validate))
        for error in result.errors:
            log.warning("flow reload refused an edit", diagnostic=error)
        for name, version in result.changed.items():
            log.info("flow reloaded", flow=name, version=version)
        if on_reload is not None:
            on_reload(result)
        return result


def flow_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The flow files of a folder (for messages)."""
    return collect_files([Path(folder)])
