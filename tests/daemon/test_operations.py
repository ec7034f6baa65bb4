"""Operations: settings errors, JSON log lines with call ids, hot reload of flows."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
import structlog

from flowengine.daemon import logs
from flowengine.daemon.flows import FlowCatalog
from flowengine.daemon.settings import SettingsError, load_settings
from flowengine.emulator import Caller
from flowengine.emulator.emulator import DEFAULT_PINLESS_SECRET, DEFAULT_WEBHOOK_SECRET
from flowengine.errors import FlowValidationError

from .conftest import TOKEN, Rig

ENV = {
    "DAILY_API_KEY": "key-that-must-not-leak",
    "DAILY_WEBHOOK_SECRET": DEFAULT_WEBHOOK_SECRET,
    "DAILY_PINLESS_SECRET": DEFAULT_PINLESS_SECRET,
    "FLOWENGINE_API_TOKEN": TOKEN,
}


def test_settings_are_checked_with_clear_errors_that_never_echo_secrets(
    flows_dir: Path,
) -> None:
    good = load_settings(flows=flows_dir, env=ENV)
    assert good.host == "127.0.0.1"
    assert good.store.endswith("calls.db")
    assert "key-that-must-not-leak" not in repr(good) + json.dumps(good.describe())
    cases = [
        ({**ENV, "DAILY_API_KEY": ""}, {}, "DAILY_API_KEY: is not set"),
        ({**ENV, "DAILY_WEBHOOK_SECRET": "not base64!"}, {}, "DAILY_WEBHOOK_SECRET"),
        ({**ENV, "FLOWENGINE_API_TOKEN": "short"}, {}, "FLOWENGINE_API_TOKEN"),
        ({**ENV, "DAILY_API_URL": "http://daily.example.com/v1"}, {}, "DAILY_API_URL"),
        (ENV, {"port": 70000}, "--port"),
        (ENV, {"host": "not a host"}, "--host"),
        (ENV, {"log_format": "xml"}, "--log-format"),
    ]
    for env, flags, text in cases:
        with pytest.raises(SettingsError) as caught:
            load_settings(flows=flows_dir, env=env, **flags)  # type: ignore[arg-type]
        assert text in str(caught.value)
        assert "not base64!" not in str(caught.value)
        assert "short" not in str(caught.value)[-5:]
    with pytest.raises(SettingsError, match="--flows"):
        load_settings(flows=flows_dir / "missing", env=ENV)


def test_a_flows_folder_with_errors_is_refused_with_its_diagnostics(flows_dir: Path) -> None:
    (flows_dir / "broken.yaml").write_text("name: broken\nstart: nowhere\nstates: {}\n")
    with pytest.raises(FlowValidationError) as caught:
        FlowCatalog.load(flows_dir)
    assert any("broken.yaml" in d.render() for d in caught.value.diagnostics)


async def test_log_lines_are_json_with_call_ids_and_one_cdr(rig: Rig) -> None:
    buffer = io.StringIO()
    logs.configure("json", buffer)
    try:
        async with asyncio.timeout(20):
            inbound = await rig.emu.place_call(
                "+14155550100", "+14155550123", caller=Caller(hangup=1)
            )
            await rig.settle()
            await rig.advance(4)
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    call_id = "in-" + inbound.call_id
    about = [line for line in lines if line.get("call_id") == call_id]
    assert any(line["event"] == "call started" for line in about)
    cdrs = [line for line in about if line["event"] == "cdr"]
    assert len(cdrs) == 1
    assert cdrs[0]["from"] == "+14155550123"
    assert cdrs[0]["to"] == "+14155550100"
    assert cdrs[0]["flow"] == "desk"
    assert cdrs[0]["outcome"] == "caller_hangup"
    assert cdrs[0]["path"][0] == "welcome"
    assert len(cdrs[0]["version"]) == 12
    assert "emulator-api-key" not in buffer.getvalue()


async def test_hot_reload_takes_good_edits_keeps_live_versions_and_refuses_broken_ones(
    rig: Rig,
) -> None:
    assert rig.daemon is not None
    catalog = rig.daemon.catalog
    first = await rig.emu.place_call("+14155550100", "+14155550123", caller=Caller())
    await rig.settle()
    old = rig.daemon.engine.get("in-" + first.call_id)
    assert old is not None
    path = rig.flows / "desk.yaml"
    path.write_text(path.read_text().replace("attempts: 2", "attempts: 3"))
    result = await catalog.reload_async()
    assert list(result.changed) == ["desk"]
    assert not result.errors
    second = await rig.emu.place_call("+14155550100", "+14155550124", caller=Caller())
    await rig.settle()
    new = rig.daemon.engine.get("in-" + second.call_id)
    assert new is not None
    assert new.flow_hash != old.flow_hash
    assert catalog.flows.version(old.flow_hash) is not None  # the live call's version stays
    good_hash = new.flow_hash
    path.write_text(path.read_text().replace("start: welcome", "start: nowhere"))
    result = await catalog.reload_async()
    assert not result.changed
    assert any("nowhere" in e for e in result.errors)
    current = catalog.flows.get("desk")
    assert current is not None
    assert current.content_hash == good_hash
    (rig.flows / "other.yaml").write_text(
        "name: other\nmatch: {dialin: ['+14155550199']}\nstart: bye\nstates: {bye: {hangup: {}}}\n"
    )
    result = await catalog.reload_async()
    assert "other" in result.changed
    routed = catalog.route("+14155550199")
    assert routed is not None
    assert routed.name == "other"
