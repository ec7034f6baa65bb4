"""Room agents: the daemon runs an in-room participant per call (a fake daily-python client).

The daemon and the emulator run in-process as in ``conftest.py``; the participants are built
with the fake ``CallClient`` of ``tests/daily/test_participant.py`` (daily-python's method
names and completion shapes, answering on a thread of its own). The last test runs the
participants on ``flowengine.harness.room_client`` instead: the emulator's room events and
REST API, with the emulator served on loopback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from flowengine.daemon.app import Daemon
from flowengine.daemon.rooms import RoomAgents
from flowengine.daemon.settings import SettingsError, load_settings
from flowengine.emulator import Callee, Caller
from flowengine.emulator.farends import Press
from flowengine.emulator.server import EmulatorServer
from flowengine.harness.room_client import NullAudio, emulator_client_factory
from flowengine.runtime.events import Event
from flowengine.runtime.ports import VirtualClock
from tests.daily.test_participant import FakeAudio, FakeCallClient

from . import conftest
from .conftest import Rig
from .test_call import EXPECTED, call_to_menu, press
from .test_operations import ENV


class Clients:
    """The participants' client factory: a fake CallClient per join, all kept."""

    def __init__(self) -> None:
        self.made: list[FakeCallClient] = []
        self.join_error: str | None = None

    def __call__(self, handler: object) -> FakeCallClient:
        client = FakeCallClient(event_handler=handler)
        if self.join_error is not None:
            client.errors["join"] = self.join_error
        self.made.append(client)
        return client

    @property
    def last(self) -> FakeCallClient:
        return self.made[-1]


@pytest.fixture
def clients() -> Clients:
    return Clients()


@pytest.fixture
async def agent_rig(
    tmp_path: Path, flows_dir: Path, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Rig]:
    """A daemon with room agents on, their participants on fake clients."""
    daemon = partial(
        Daemon, client_factory=clients, audio_factory=lambda rate, channels: FakeAudio()
    )
    monkeypatch.setattr(conftest, "Daemon", daemon)
    rig = Rig(flows_dir, tmp_path / "calls.db", VirtualClock())
    await rig.start_daemon(room_agent="daily")
    yield rig
    if rig.daemon is not None:
        await rig.stop_daemon()
    await rig.emu.aclose()


def agents(rig: Rig) -> RoomAgents:
    assert rig.daemon is not None
    assert rig.daemon.rooms is not None
    return rig.daemon.rooms


async def until(rig: Rig, condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Let the daemon, the emulator and the fake client's thread work until ``condition``."""
    async with asyncio.timeout(seconds):
        while not condition():
            await agents(rig).settled()
            await rig.settle()
            if not condition():
                await asyncio.sleep(0.005)


def state(rig: Rig, call_id: str) -> str:
    assert rig.daemon is not None
    session = rig.daemon.engine.get(call_id)
    assert session is not None
    return session.state


def caller_session(rig: Rig, call_id: str) -> str:
    assert rig.daemon is not None
    session = rig.daemon.engine.get(call_id)
    assert session is not None
    sid = session.legs.get("caller") or session.call.get("session_id")
    assert isinstance(sid, str)
    return sid


def dtmf(client: FakeCallClient, session_id: str, tone: str) -> None:
    """The caller presses a key: daily-python's ``dtmf-event``, on its own thread."""
    data = {"sessionId": session_id, "tone": tone, "volume": 100, "method": "telephone-event"}
    client.emit("on_dtmf_event", data)


async def joined_call(rig: Rig) -> str:
    call_id = await call_to_menu(rig)
    await until(rig, lambda: call_id in agents(rig).router.participants)
    return call_id


async def test_a_key_heard_in_the_room_is_journaled_then_takes_the_menu_option(
    agent_rig: Rig, clients: Clients, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = agent_rig
    assert rig.daemon is not None
    order: list[str] = []
    store, engine = rig.daemon.store, rig.daemon.engine
    accept, post = store.accept, engine.post

    async def accept_spy(call_id: str, payload: str, **kw: Any) -> Any:
        entry = await accept(call_id, payload, **kw)
        order.append(f"stored {payload}")
        return entry

    def post_spy(call_id: str, event: Event) -> bool:
        order.append(f"posted {event.name}")
        return post(call_id, event)

    monkeypatch.setattr(store, "accept", accept_spy)
    monkeypatch.setattr(engine, "post", post_spy)

    with capture_logs() as logs:
        call_id = await joined_call(rig)
    assert rig.emu.log.count("meeting-tokens/create") == 1
    client = clients.last
    [(url, token, _)] = client.called("join")
    assert url.endswith(f".daily.co/{call_id}")
    assert token  # the owner token Daily made for the room
    assert token not in repr(logs)
    assert any(e["event"] == "room agent joined" and e["call_id"] == call_id for e in logs)

    dtmf(client, caller_session(rig, call_id), "1")
    await until(rig, lambda: state(rig, call_id) == "desk")

    stored = next(i for i, line in enumerate(order) if '"dtmf"' in line)
    assert '"tone":"1"' in order[stored]
    assert order.index("posted dtmf") > stored  # journaled before the engine saw it
    journal = await store.journal(call_id)
    assert any('"name":"dtmf"' in e.payload for e in journal)
    # The dial-out of the desk state went in-room, not over REST.
    await until(rig, lambda: bool(client.called("start_dialout")))
    assert client.called("start_dialout")[0][0]["phoneNumber"] == "+14155550111"
    assert rig.emu.log.count("dialOut/start") == 0


async def test_a_failed_join_leaves_the_call_on_rest(agent_rig: Rig, clients: Clients) -> None:
    rig = agent_rig
    clients.join_error = "room not found"
    with capture_logs() as logs:
        async with asyncio.timeout(20):
            call_id = await call_to_menu(rig)
            await agents(rig).settled()
            assert agents(rig).router.participants == {}
            await press(rig, call_id, "1")
            await rig.advance(4)
    failed = [e for e in logs if e["event"].startswith("room agent not joined")]
    assert [e["call_id"] for e in failed] == [call_id]
    assert "room not found" in failed[0]["reason"]
    assert rig.daemon is not None
    session = rig.daemon.engine.get(call_id)
    assert session is not None
    assert session.ended
    assert session.outcome == "hangup"
    effects = [e.endpoint for e in rig.emu.log.side_effects()]
    assert [e for e in effects if e != "meeting-tokens/create"] == EXPECTED
    assert clients.last.released


async def test_the_participant_leaves_when_the_call_ends(agent_rig: Rig, clients: Clients) -> None:
    rig = agent_rig
    call_id = await joined_call(rig)
    client = clients.last
    await rig.advance(12)  # no key: the menu gives up and the call hangs up
    await until(rig, lambda: client.released)
    assert rig.daemon is not None
    session = rig.daemon.engine.get(call_id)
    assert session is not None
    assert session.ended
    assert client.called("leave")
    assert call_id not in agents(rig).router.participants


async def test_every_participant_leaves_when_the_daemon_stops(
    agent_rig: Rig, clients: Clients
) -> None:
    rig = agent_rig
    await joined_call(rig)
    client = clients.last
    await rig.stop_daemon()
    assert client.called("leave")
    assert client.released


async def test_a_restored_call_gets_a_new_participant(agent_rig: Rig, clients: Clients) -> None:
    rig = agent_rig
    call_id = await joined_call(rig)
    first = clients.last
    await rig.stop_daemon()
    await rig.start_daemon(room_agent="daily")
    await until(rig, lambda: call_id in agents(rig).router.participants)
    second = clients.last
    assert second is not first
    assert rig.emu.log.count("meeting-tokens/create") == 2
    assert second.called("join")[0][0] == first.called("join")[0][0]  # the room's URL, looked up
    dtmf(second, caller_session(rig, call_id), "1")
    await until(rig, lambda: state(rig, call_id) == "desk")


async def test_events_daily_also_sends_as_webhooks_are_not_taken_from_the_room(
    agent_rig: Rig, clients: Clients
) -> None:
    rig = agent_rig
    call_id = await joined_call(rig)
    assert rig.daemon is not None
    before = len(await rig.daemon.store.journal(call_id))
    clients.last.emit("on_participant_joined", {"id": "someone", "info": {}})
    clients.last.emit("on_app_message", {"hello": 1}, "someone")
    heard: list[str] = []
    async with asyncio.timeout(5):
        # Both are raised on the client's thread in order: once the message is journaled,
        # the participant's arrival has been heard too.
        while not any('"app-message"' in p for p in heard):
            await asyncio.sleep(0.005)
            await agents(rig).settled()
            await rig.settle()
            heard = [e.payload for e in (await rig.daemon.store.journal(call_id))[before:]]
    assert not any("participant.joined" in p for p in heard)


# -- settings ------------------------------------------------------------------------------------


def test_room_agent_daily_without_daily_python_is_a_clear_error(
    flows_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "daily", None)  # `import daily` raises ImportError
    with pytest.raises(SettingsError) as caught:
        load_settings(flows=flows_dir, env=ENV, room_agent="daily")
    assert caught.value.setting == "--room-agent"
    assert "install flowengine[daily]" in str(caught.value)
    with pytest.raises(SettingsError):
        load_settings(flows=flows_dir, env={**ENV, "FLOWENGINE_ROOM_AGENT": "daily"})
    with pytest.raises(SettingsError, match="choose one of"):
        load_settings(flows=flows_dir, env=ENV, room_agent="sometimes")


def test_room_agent_auto_resolves_to_off_without_daily_python(
    flows_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "daily", None)
    assert load_settings(flows=flows_dir, env=ENV).room_agent == "off"
    assert load_settings(flows=flows_dir, env=ENV, room_agent="off").room_agent == "off"


async def test_without_room_agents_a_flow_waiting_for_keys_is_named_at_startup(
    tmp_path: Path, flows_dir: Path
) -> None:
    rig = Rig(flows_dir, tmp_path / "calls.db", VirtualClock())
    with capture_logs() as logs:
        daemon = await rig.start_daemon()
    try:
        assert daemon.rooms is None
        assert daemon.telephony.inner is daemon.rest
        warned = [e for e in logs if e["event"].startswith("room agents are off")]
        assert len(warned) == 1
        assert warned[0]["flows"] == ["desk"]
        assert warned[0]["log_level"] == "warning"
    finally:
        await rig.stop_daemon()
        await rig.emu.aclose()


# -- the emulator-backed call client -------------------------------------------------------------


async def test_a_whole_call_with_participants_on_the_emulator_instead_of_the_bridge(
    tmp_path: Path, flows_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = Rig(flows_dir, tmp_path / "calls.db", VirtualClock())
    async with EmulatorServer(rig.emu, "127.0.0.1", 0) as server:
        factory = emulator_client_factory(server.base_url, rig.emu.api_key, poll_wait=0.2)
        daemon = partial(Daemon, client_factory=factory, audio_factory=NullAudio)
        monkeypatch.setattr(conftest, "Daemon", daemon)
        await rig.start_daemon(room_agent="daily")
        try:
            async with asyncio.timeout(30):
                rig.emu.callee("+14155550111", Callee.answers(after=1))
                inbound = await rig.emu.place_call(
                    "+14155550100", "+14155550123", caller=Caller(keys=(Press(3.0, "1"),))
                )
                call_id = "in-" + inbound.call_id
                await rig.settle()
                await until(rig, lambda: call_id in agents(rig).router.participants)
                await rig.advance(4)  # connected, then the caller presses 1 in the room
                await until(rig, lambda: state(rig, call_id) != "menu")
                await rig.advance(4)  # the desk answers after 1 s; tones sent in-room; hang-up
                await until(rig, lambda: state(rig, call_id) == "bye")
        finally:
            await rig.stop_daemon()
    effects = [e.endpoint for e in rig.emu.log.side_effects()]
    assert [e for e in effects if e != "meeting-tokens/create"] == EXPECTED
    assert rig.emu.inroom.dtmf(call_id) == "1"
    await rig.emu.aclose()
