"""Flow versions in the store: bundles, rebuilt flows, and calls restored across an edit.

A live call is pinned to its flow's version. These tests edit the flow file while no daemon
runs and check the call still finishes on the version it started on (fetched back from the
store), while new calls take the edited version. The daemon test runs on a SQLite file that
each start opens again (a new store object, as a restarted process would).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from flowengine import model as m
from flowengine.build import version_hash
from flowengine.daemon.flows import FlowCatalog, pinned_versions
from flowengine.daemon.versions import VersionError, bundle, rebuild
from flowengine.emulator import Caller
from flowengine.project import validate_paths
from flowengine.runtime.compiler import FlowSet
from flowengine.store import MemoryStore

from .conftest import Rig

REPO_FLOWS = Path(__file__).parents[2] / "flows"


@pytest.fixture
def repo_flows(tmp_path: Path) -> Path:
    """A copy of the repository's example flows (a catalogue, a sub-flow), to edit."""
    folder = tmp_path / "examples"
    shutil.copytree(REPO_FLOWS, folder, ignore=shutil.ignore_patterns("tests"))
    return folder


def loaded(folder: Path) -> dict[str, m.Flow]:
    report = validate_paths([folder])
    assert not report.errors
    return report.flows


def prompt_texts(flow: m.Flow) -> dict[str, dict[str, str | None]]:
    return {
        pid: {loc: text.text for loc, text in p.locales.items()} for pid, p in flow.prompts.items()
    }


# -- bundles ---------------------------------------------------------------------------------


def test_a_flow_with_a_catalogue_and_a_sub_flow_is_bundled_and_rebuilt(repo_flows: Path) -> None:
    flows = loaded(repo_flows)
    flow = flows["account-lookup"]
    source = bundle(flow, flows.get)
    data = json.loads(source)
    assert data["flow"] == "account-lookup.yaml"
    assert data["file"] == flow.file
    assert sorted(data["files"]) == [
        "account-lookup.yaml",
        "common.prompts.yaml",
        "verify-pin.yaml",
    ]
    for path in repo_flows.iterdir():  # the bundle needs nothing on disk
        path.unlink()
    rebuilt = rebuild(source, flow.content_hash)
    assert rebuilt.content_hash == flow.content_hash
    assert rebuilt.name == flow.name
    assert rebuilt.file == flow.file
    assert list(rebuilt.states) == list(flow.states)
    assert prompt_texts(rebuilt) == prompt_texts(flow)


def test_the_catalogue_prompts_come_from_the_bundle(repo_flows: Path) -> None:
    flows = loaded(repo_flows)
    flow = flows["verify-pin"]
    own = {"verify-pin.yaml", "common.prompts.yaml"}
    data = json.loads(bundle(flow, flows.get))
    assert set(data["files"]) == own  # verify-pin calls no sub-flow
    rebuilt = rebuild(json.dumps(data), flow.content_hash)
    assert prompt_texts(rebuilt) == prompt_texts(flow)
    assert prompt_texts(rebuilt)  # every prompt of verify-pin is in the catalogue


def test_a_tampered_bundle_is_refused(repo_flows: Path) -> None:
    flows = loaded(repo_flows)
    flow = flows["account-lookup"]
    data = json.loads(bundle(flow, flows.get))
    entry = data["flow"]
    data["files"][entry] = data["files"][entry].replace("press pound", "press star")
    with pytest.raises(VersionError, match="hashes to .*refused"):
        rebuild(json.dumps(data), flow.content_hash)
    other = bundle(flows["verify-pin"], flows.get)  # the bundle of another version
    with pytest.raises(VersionError, match="hashes to"):
        rebuild(other, flow.content_hash)
    for junk in ("not json", "[]", json.dumps({**data, "format": 99})):
        with pytest.raises(VersionError):
            rebuild(junk, flow.content_hash)


def test_a_bundle_missing_a_file_does_not_rebuild(repo_flows: Path) -> None:
    flows = loaded(repo_flows)
    flow = flows["account-lookup"]
    data = json.loads(bundle(flow, flows.get))
    without_sub = {**data, "files": {k: v for k, v in data["files"].items() if "verify" not in k}}
    with pytest.raises(VersionError, match="verify-pin"):
        rebuild(json.dumps(without_sub), flow.content_hash)
    without_cat = {**data, "files": {k: v for k, v in data["files"].items() if "prompts" not in k}}
    with pytest.raises(VersionError, match="catalogue"):
        rebuild(json.dumps(without_cat), flow.content_hash)


def test_a_file_edited_since_it_was_loaded_is_not_bundled(repo_flows: Path) -> None:
    flows = loaded(repo_flows)
    path = repo_flows / "verify-pin.yaml"
    path.write_text(path.read_text() + "\n# edited\n")
    with pytest.raises(VersionError, match="changed since"):
        bundle(flows["verify-pin"], flows.get)
    with pytest.raises(VersionError, match="changed since"):  # its sub-flow changed
        bundle(flows["account-lookup"], flows.get)


def test_the_hash_covers_the_flow_and_its_catalogue(repo_flows: Path) -> None:
    flow = loaded(repo_flows)["verify-pin"]
    text = (repo_flows / "verify-pin.yaml").read_text(encoding="utf-8")
    catalogue = (repo_flows / "common.prompts.yaml").read_text(encoding="utf-8")
    assert version_hash(text, catalogue) == flow.content_hash
    assert version_hash(text) != flow.content_hash


def test_an_edit_of_the_catalogue_is_a_new_version_and_a_reload_takes_it(
    repo_flows: Path,
) -> None:
    catalogue = FlowCatalog.load(repo_flows)
    before = catalogue.flows.get("verify-pin")
    assert before is not None
    path = repo_flows / "common.prompts.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\n# reworded\n", encoding="utf-8")
    with pytest.raises(VersionError, match="or its catalogue changed since"):
        bundle(before, catalogue.flows.get)
    result = catalogue.reload()
    after = catalogue.flows.get("verify-pin")
    assert after is not None
    assert after.content_hash != before.content_hash
    assert result.changed["verify-pin"] == after.content_hash[:12]
    assert catalogue.flows.version(before.content_hash) is before  # live calls keep theirs


def test_a_version_added_as_not_current_runs_but_is_not_routed(repo_flows: Path) -> None:
    first = loaded(repo_flows)["verify-pin"]
    path = repo_flows / "verify-pin.yaml"
    path.write_text(path.read_text() + "\n# edited\n")
    second = loaded(repo_flows)["verify-pin"]
    flows = FlowSet([second])
    flows.add(first, current=False)
    assert flows.get("verify-pin") is second
    assert flows.version(first.content_hash) is first
    assert flows.compiled(first.content_hash).flow is first
    assert [f.content_hash for f in flows.versions] == [second.content_hash, first.content_hash]


def test_a_snapshot_pins_its_flow_and_its_sub_flow_stack() -> None:
    snapshot = json.dumps({"flow_hash": "sub", "frames": [{"flow_hash": "root"}]})
    assert pinned_versions("root", snapshot) == ["root", "sub"]
    assert pinned_versions("root", "not json") == ["root"]


# -- the catalogue and the store --------------------------------------------------------------


async def test_the_catalogue_saves_its_versions_and_fetches_an_old_one(repo_flows: Path) -> None:
    store = MemoryStore()
    first = FlowCatalog.load(repo_flows)
    assert await first.save_versions(store) == len(first.flows.versions)
    assert await first.save_versions(store) == 0  # once each
    old = first.flows.get("account-lookup")
    assert old is not None
    path = repo_flows / "account-lookup.yaml"
    path.write_text(path.read_text().replace("Acme Broadband", "Acme Fibre"))
    second = FlowCatalog.load(repo_flows)
    new = second.flows.get("account-lookup")
    assert new is not None
    assert new.content_hash != old.content_hash
    assert await second.ensure(store, old.content_hash)
    assert second.flows.get("account-lookup") is new  # still the current version
    fetched = second.flows.version(old.content_hash)
    assert fetched is not None
    assert prompt_texts(fetched) == prompt_texts(old)
    assert await second.ensure(store, "0" * 64) is False
    assert await second.ensure_all(store, [old.content_hash, "0" * 64, "0" * 64]) == ["0" * 64]


async def test_a_tampered_version_in_the_store_is_refused(repo_flows: Path) -> None:
    store = MemoryStore()
    flows = loaded(repo_flows)
    flow = flows["verify-pin"]
    data = json.loads(bundle(flow, flows.get))
    data["files"][data["flow"]] += "\n# tampered\n"
    await store.save_flow_version(flow.content_hash, name=flow.name, source=json.dumps(data))
    path = repo_flows / "verify-pin.yaml"
    path.write_text(path.read_text() + "\n# edited\n")
    catalog = FlowCatalog.load(repo_flows)
    assert await catalog.ensure(store, flow.content_hash) is False
    assert catalog.flows.version(flow.content_hash) is None


async def test_prepare_fetches_every_version_a_stored_call_is_pinned_to(
    repo_flows: Path,
) -> None:
    store = MemoryStore()
    first = FlowCatalog.load(repo_flows)
    root, sub = first.flows.get("account-lookup"), first.flows.get("verify-pin")
    assert root is not None
    assert sub is not None
    await first.save_versions(store)
    inside_sub = {"flow_hash": sub.content_hash, "frames": [{"flow_hash": root.content_hash}]}
    await store.create_call(
        "c1", flow=root.name, flow_hash=root.content_hash, snapshot=json.dumps(inside_sub)
    )
    await store.create_call("c2", flow=root.name, flow_hash="0" * 64, snapshot="{}")
    for name in ("account-lookup.yaml", "verify-pin.yaml"):
        path = repo_flows / name
        path.write_text(path.read_text() + "\n# edited\n")
    second = FlowCatalog.load(repo_flows)
    assert await second.prepare(store) == ["0" * 64]  # c2's version was never saved
    assert second.flows.version(root.content_hash) is not None
    assert second.flows.version(sub.content_hash) is not None
    for name in ("account-lookup", "verify-pin"):
        current = second.flows.get(name)
        assert current is not None
        assert current.content_hash not in (root.content_hash, sub.content_hash)
        assert await store.flow_version(current.content_hash) is not None  # saved at start


async def test_a_reload_saves_its_versions_before_taking_them(repo_flows: Path) -> None:
    store = MemoryStore()
    catalog = FlowCatalog.load(repo_flows)
    await catalog.save_versions(store)
    path = repo_flows / "verify-pin.yaml"
    path.write_text(path.read_text() + "\n# edited\n")
    result = await catalog.reload_async()
    assert list(result.changed) == ["verify-pin"]
    current = catalog.flows.get("verify-pin")
    assert current is not None
    assert await store.flow_version(current.content_hash) is not None
    await store.close()  # the store fails: the reload waits for it
    path.write_text(path.read_text() + "\n# edited again\n")
    result = await catalog.reload_async()
    assert not result.changed
    assert any("reload postponed" in e for e in result.errors)
    assert catalog.flows.get("verify-pin") is current
    assert catalog.changed()  # the next poll tries again


# -- a daemon restarted after an edit ---------------------------------------------------------


def edit_desk(flows: Path) -> None:
    """A new version of desk: a silent caller now ends in ``farewell``, not ``bye``."""
    path = flows / "desk.yaml"
    text = path.read_text()
    assert "on: {no_input: bye, max_attempts: bye}" in text
    text = text.replace(
        "on: {no_input: bye, max_attempts: bye}", "on: {no_input: farewell, max_attempts: bye}"
    )
    path.write_text(text + "  farewell:\n    hangup: {reason: edited}\n")


async def silent_call(rig: Rig, caller: str) -> str:
    """A caller who says nothing: the call waits at the menu."""
    inbound = await rig.emu.place_call("+14155550100", caller, caller=Caller())
    await rig.settle()
    await rig.advance(2)
    call_id = "in-" + inbound.call_id
    assert rig.daemon is not None
    session = rig.daemon.engine.get(call_id)
    assert session is not None
    assert session.state == "menu"
    return call_id


async def final_state(rig: Rig, call_id: str) -> tuple[str, str, bool]:
    assert rig.store is not None
    record = await rig.store.load_call(call_id)
    assert record is not None
    snapshot = json.loads(record.snapshot)
    return snapshot["flow_hash"], snapshot["state"], record.live


async def test_a_live_call_survives_an_edit_of_its_flow_while_the_daemon_is_down(
    rig: Rig,
) -> None:
    async with asyncio.timeout(30):
        old_call = await silent_call(rig, "+14155550123")
        assert rig.daemon is not None
        old = rig.daemon.catalog.flows.get("desk")
        assert old is not None
        await rig.stop_daemon()  # the store is closed: the next start opens the file again
        edit_desk(rig.flows)
        daemon = await rig.start_daemon()
        new = daemon.catalog.flows.get("desk")
        assert new is not None
        assert new.content_hash != old.content_hash  # the folder has the edited version only
        session = daemon.engine.get(old_call)
        assert session is not None  # restored, on the version it started on
        assert session.flow_hash == old.content_hash
        assert session.state == "menu"
        new_call = await silent_call(rig, "+14155550124")
        await rig.advance(15)  # both callers stay silent: the menu gives up
    assert await final_state(rig, old_call) == (old.content_hash, "bye", False)
    assert await final_state(rig, new_call) == (new.content_hash, "farewell", False)
    assert rig.store is not None
    assert await rig.store.flow_version(new.content_hash) is not None
