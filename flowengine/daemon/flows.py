"""The flows a daemon runs: loaded from ``--flows``, routed by ``match``, reloaded on change.

Where it sits: between the project loader (``project.validate_paths``) and the runtime's
``FlowSet``. At startup every file must validate, or the daemon refuses to start
(``FlowValidationError`` with every diagnostic). Afterwards a poller looks at the files'
modification times; on a change the folder is validated again and each flow that validates
is added to the ``FlowSet``: new calls get the new version, while every version ever loaded
stays in the set by content hash, so live calls finish on the version they started on. A flow
whose new text has errors keeps its old version, and the diagnostics are logged.

Versions in the store (``versions.py`` bundles and rebuilds them): a starting daemon saves every
version it loaded and fetches back each version a call to restore is pinned to but the folder
no longer holds (``prepare``), so a call survives an edit of its flow while no daemon ran, or
is taken over by a daemon that never loaded its version (``ensure``). From then on a reload
saves its new versions *before* they become current: no call starts on a version the store
lacks. A fetched version is added by hash only; new calls keep getting the folder's version.

Routing an inbound call (``route``): a flow matches when the dialled address is one of its
``match.dialin`` numbers or ``match.sip_uri`` URIs (compared without parameters, in any case),
and every header of its ``match.sip_headers`` has the listed value; a flow with only
``sip_headers`` matches on them alone. Of several matches the one with more header conditions
wins, then the first by name, so the choice never depends on file order.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import structlog

from .. import model as m
from ..addresses import is_sip, normalise_phone
from ..errors import FlowEngineError, FlowValidationError
from ..project import Report, collect_files, validate_paths
from ..runtime.compiler import FlowSet
from ..store import Store, StoreError
from ..store.flow_versions import FlowVersions
from .versions import VersionError, bundle, rebuild

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
        self._store: FlowVersions | None = None
        self._saved: set[str] = set()
        """Hashes of the versions known to be in ``_store``."""

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
        (live calls may use it) and keeps its routes until the daemon restarts. This saves
        nothing in the store: the daemon reloads with ``reload_async``.
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
        """``reload``, validating in a thread (it reads files) and swapping on the loop.

        Once a store is bound (``save_versions``), the new versions are saved in it first; a
        flow whose version cannot be bundled keeps its current version, and when the store
        fails nothing is taken (the next poll tries again).
        """
        report = await asyncio.to_thread(self._validate)
        if self._store is not None and not isinstance(report, str):
            report = await self._save_first(self._store, report)
        result = self._apply(report)
        for error in result.errors:
            log.warning("flow reload refused an edit", diagnostic=error)
        for name, version in result.changed.items():
            log.info("flow reloaded", flow=name, version=version)
        if on_reload is not None:
            on_reload(result)
        return result

    # -- versions in the store --------------------------------------------------------------

    async def prepare(self, store: Store) -> list[str]:
        """Before restoring calls: save every loaded version, fetch every pinned one.

        Binds ``store`` (later reloads save their versions there), then makes available each
        version a call of the store that will be restored (live, or ended with commands
        open) is pinned to: its flow and the flows of its sub-flow stack. Returns the hashes
        still missing (logged: those calls stay in the store, not restored).

        Raises:
            StoreError: the store failed.
        """
        await self.save_versions(store)
        records = await store.live_calls()
        seen = {r.call_id for r in records}
        for call_id in dict.fromkeys(e.call_id for e in await store.pending_commands()):
            record = None if call_id in seen else await store.load_call(call_id)
            if record is not None:
                records.append(record)
        hashes = [h for r in records for h in pinned_versions(r.flow_hash, r.snapshot)]
        return await self.ensure_all(store, hashes)

    async def save_versions(self, store: FlowVersions) -> int:
        """Save every loaded version not saved yet (each once); how many were new to the store.

        Binds ``store``: from now on ``reload_async`` saves a reload's versions there before
        taking them. A version whose files changed since it was loaded cannot be bundled: it
        is logged and left out.

        Raises:
            StoreError: the store failed.
        """
        if store is not self._store:
            self._store, self._saved = store, set()
        pending = [f for f in self.flows.versions if f.content_hash not in self._saved]
        return await self._save(store, pending, self.flows.get)

    async def ensure(self, store: FlowVersions, flow_hash: str) -> bool:
        """Whether version ``flow_hash`` can run: loaded, or fetched from ``store`` now.

        A fetched version is rebuilt from its bundle, checked against its hash, and added by
        hash only (not current: new calls keep the folder's version of its name). A version
        the store lacks or that does not rebuild is logged.

        Raises:
            StoreError: the store failed.
        """
        if self.flows.version(flow_hash) is not None:
            return True
        stored = await store.flow_version(flow_hash)
        if stored is None:
            log.error("flow version not found in the store", version=flow_hash[:12])
            return False
        try:
            flow = await asyncio.to_thread(rebuild, stored.source, flow_hash)
            if flow.name != stored.name:
                raise VersionError(f"the bundle holds flow {flow.name!r}, not {stored.name!r}")
            self.flows.add(flow, current=False)
        except FlowEngineError as exc:
            log.error(
                "flow version refused", flow=stored.name, version=flow_hash[:12], reason=str(exc)
            )
            return False
        if store is self._store:
            self._saved.add(flow_hash)
        log.info("flow version fetched from the store", flow=flow.name, version=flow_hash[:12])
        return True

    async def ensure_all(self, store: FlowVersions, hashes: Iterable[str]) -> list[str]:
        """``ensure`` each version (once each); the hashes still missing."""
        return [h for h in dict.fromkeys(hashes) if not await self.ensure(store, h)]

    async def _save(
        self,
        store: FlowVersions,
        flows: Iterable[m.Flow],
        lookup: Callable[[str], m.Flow | None],
    ) -> int:
        new = 0
        for flow in flows:
            if flow.content_hash in self._saved:
                continue
            version = flow.content_hash[:12]
            try:
                source = await asyncio.to_thread(bundle, flow, lookup)
            except VersionError as exc:
                log.warning(
                    "flow version not saved", flow=flow.name, version=version, reason=str(exc)
                )
                continue
            if await store.save_flow_version(flow.content_hash, name=flow.name, source=source):
                new += 1
                log.info("flow version saved", flow=flow.name, version=version)
            self._saved.add(flow.content_hash)
        return new

    async def _save_first(self, store: FlowVersions, report: Report) -> Report | str:
        """Save the versions a reload would take; keep only the flows that are saved."""
        new = [f for f in report.flows.values() if self._changes(f)]

        def lookup(name: str) -> m.Flow | None:
            return report.flows.get(name) or self.flows.get(name)

        try:
            await self._save(store, new, lookup)
        except StoreError as exc:
            self._mtimes = {}  # not taken: the next poll tries again
            return f"the store cannot save the new flow versions; reload postponed: {exc}"
        unsaved = {f.name for f in new if f.content_hash not in self._saved}
        return replace(report, flows={n: f for n, f in report.flows.items() if n not in unsaved})

    def _changes(self, flow: m.Flow) -> bool:
        current = self.flows.get(flow.name)
        return current is None or current.content_hash != flow.content_hash


def pinned_versions(flow_hash: str, snapshot: str) -> list[str]:
    """The versions a stored call needs to be restored, each once.

    Its own (``flow_hash``), and those its snapshot names: the flow it is in (a sub-flow's
    while it runs one) and the flow of each frame of its sub-flow stack.
    """
    found = [flow_hash]
    try:
        data = json.loads(snapshot)
        found.append(data["flow_hash"])
        found += [frame["flow_hash"] for frame in data["frames"]]
    except (ValueError, KeyError, TypeError):
        pass  # not a session: the restore will say so
    return [h for h in dict.fromkeys(found) if isinstance(h, str) and h]


def flow_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The flow files of a folder (for messages)."""
    return collect_files([Path(folder)])
