"""Several targets: each webhook attempt and each pinless request goes to one, drawn by seed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from flowengine.daily import NO_RETRY, DialOutRequest
from flowengine.emulator import Emulator, Target
from flowengine.emulator.server import _parser
from flowengine.emulator.webhooks import choose, targets_of
from flowengine.runtime.ports import VirtualClock

from .conftest import make_room

HOOKS = ("http://daemon-a.test/webhooks/daily", "http://daemon-b.test/webhooks/daily")
DIALINS = ("http://daemon-a.test/dialin", "http://daemon-b.test/dialin")
ROOMS = 30


class Hosts:
    """An ingress that answers 503 for the hosts in ``down`` and 200 for the others."""

    def __init__(self, down: Sequence[str] = ()) -> None:
        self.down = set(down)
        self.arrived: list[tuple[str, str]] = []  # (host, event type), in arrival order
        self.app = Starlette(routes=[Route("/{path:path}", self._answer, methods=["POST"])])

    async def _answer(self, request: Request) -> Response:
        host = request.url.hostname or ""
        if host in self.down:
            return JSONResponse({}, status_code=503)
        body = await request.json()
        self.arrived.append((host, str(body.get("type", "pinless"))))
        return JSONResponse({})


async def _rooms(emu: Emulator, count: int = ROOMS) -> None:
    emu.limits(False)
    client = emu.daily_client(retry=NO_RETRY)
    for i in range(count):
        await make_room(client, f"room-{i}")
    await emu.advance(1)  # one dialin.ready per room


def test_choose_is_a_function_of_the_seed_and_the_key() -> None:
    targets = targets_of(HOOKS, None, "unused")
    assert targets == (Target(HOOKS[0]), Target(HOOKS[1]))
    picks = [choose(targets, 7, f"event-{i}") for i in range(200)]
    assert picks == [choose(targets, 7, f"event-{i}") for i in range(200)]
    assert 60 < Counter(t.url for t in picks)[HOOKS[0]] < 140  # both, about evenly
    assert picks != [choose(targets, 8, f"event-{i}") for i in range(200)]
    assert choose(targets[:1], 7, "anything") == targets[0]


def test_one_url_or_several_or_an_app_alone() -> None:
    assert targets_of("http://a.test/x", None, "d") == (Target("http://a.test/x"),)
    assert targets_of(None, None, "d") == ()
    assert targets_of([], None, "d") == ()
    app = Hosts().app
    assert targets_of(None, app, "http://d.test/x") == (Target("http://d.test/x", app),)


async def test_webhooks_reach_both_targets_and_the_seed_repeats_the_choices() -> None:
    runs: list[list[tuple[str, str | None]]] = []
    for seed in (3, 3, 4):
        hosts = Hosts()
        emu = Emulator(clock=VirtualClock(), webhook_url=HOOKS, webhook_app=hosts.app, seed=seed)
        try:
            await _rooms(emu)
        finally:
            await emu.aclose()
        deliveries = emu.webhooks.deliveries
        assert len(deliveries) == ROOMS
        assert all(d.ok for d in deliveries)
        assert {d.url for d in deliveries} == set(HOOKS)
        assert {host for host, _ in hosts.arrived} == {"daemon-a.test", "daemon-b.test"}
        runs.append(sorted((d.event_id, d.url) for d in deliveries))
    assert runs[0] == runs[1]  # same seed: same ids, same targets
    assert runs[0] != runs[2]


async def test_a_retry_may_go_to_the_other_target(clock: VirtualClock) -> None:
    hosts = Hosts(down=["daemon-a.test"])
    emu = Emulator(
        clock=clock, webhook_url=HOOKS, webhook_app=hosts.app, webhook_retry="exponential"
    )
    try:
        await _rooms(emu)
        await emu.advance(2 + 4 + 8 + 16 + 1)
    finally:
        await emu.aclose()
    by_event: dict[str, list[tuple[int, str | None, int | None]]] = {}
    for d in emu.webhooks.deliveries:
        by_event.setdefault(d.event_id, []).append((d.attempt, d.url, d.status))
    moved = [
        tries
        for tries in by_event.values()
        if tries[0][1:] == (HOOKS[0], 503) and tries[-1][1:] == (HOOKS[1], 200)
    ]
    assert moved, by_event
    # Every event that reached the live target is delivered once there.
    delivered = [e for e, tries in by_event.items() if tries[-1][2] == 200]
    assert Counter(t for _, t in hosts.arrived) == {"dialin.ready": len(delivered)}
    assert len(delivered) >= ROOMS - 2  # five draws all on the dead target: 1 in 32


async def test_each_room_keeps_its_order_across_targets(clock: VirtualClock) -> None:
    hosts = Hosts()
    emu = Emulator(
        clock=clock, webhook_url=HOOKS, webhook_app=hosts.app, webhook_concurrency=4, seed=1
    )
    emu.limits(False)
    client = emu.daily_client(retry=NO_RETRY)
    try:
        for i in range(6):  # connected, answered, joined, then left and stopped: five per room
            await make_room(client, f"room-{i}", sip=False)
            await client.start_dial_out(f"room-{i}", DialOutRequest.to("+14155550111"))
        await emu.advance(1)
        for i in range(6):
            await client.delete_room(f"room-{i}")
        await emu.advance(1)
    finally:
        await emu.aclose()
    caused = [(e.payload["room"], e.type) for e in emu.webhooks.events]
    delivered = [(d.envelope["payload"]["room"], d.type) for d in emu.webhooks.deliveries]
    assert {d.url for d in emu.webhooks.deliveries} == set(HOOKS)
    assert len(caused) == 30
    for room in {r for r, _ in caused}:
        assert [t for r, t in delivered if r == room] == [t for r, t in caused if r == room]


async def test_pinless_requests_are_spread_over_the_dial_in_urls(clock: VirtualClock) -> None:
    hosts = Hosts()
    emu = Emulator(clock=clock, dialin_url=DIALINS, dialin_app=hosts.app, seed=2)
    try:
        calls = [await emu.place_call("+18005550100", f"+1415555{i:04d}") for i in range(20)]
    finally:
        await emu.aclose()
    assert all(call.pinless_status == 200 for call in calls)
    assert {d.url for d in emu.dialin.requests} == set(DIALINS)
    assert len(hosts.arrived) == 20


def test_the_command_line_takes_several_urls() -> None:
    args = _parser().parse_args(["--webhook-url", HOOKS[0], "--webhook-url", HOOKS[1]])
    assert args.webhook_url == list(HOOKS)
    assert args.dialin_url is None
    args = _parser().parse_args(["--dialin-url", DIALINS[0]])
    assert args.dialin_url == [DIALINS[0]]
