"""``flowengine demo``: the daemon on SQLite and the Daily emulator, with sample calls through them.

The README's first command runs this. It starts, on free ports of 127.0.0.1:

- the Daily emulator (REST, signed webhooks, pinless dial-in, scripted far ends);
- the daemon exactly as operators run it, ``flowengine serve``, on a SQLite store in the run's
  folder, with ``DAILY_API_URL`` pointing at the emulator and secrets made for the run;
- the bridge that carries callers' key presses from the emulator's rooms to the daemon, the
  stand-in for the in-room participant (``flowengine.harness.bridge``).

Then it places the sample calls (``SAMPLES``) and prints each call's path as the daemon's trace
grows (``GET /v1/calls/{id}/trace``), a summary per call, and what the emulator saw: Daily's
side effects per call and in all. It ends by itself once every call has ended (or at
``--timeout``), with exit code 0 only if every call ended where its flow should take it;
``--serve`` keeps both servers running until Ctrl-C.

The daemon serves a copy of the flows folder in which support-line's ``hours_override`` is
``open``: the demo may run at any hour, and the flow's own emergency switch is how an operator
keeps the line open outside its schedule (``flowengine.harness.flows``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from .daily import DailyClient, RoomSpec, SipConfig
from .emulator import Callee, Caller, FarEnds, Press, RemoteIvr
from .harness.flows import copy_flows
from .harness.report import effects_by_call, entry_line, path_of, short_id
from .harness.stack import Stack, without_proxy

Echo = Callable[[str], None]

TEAM_ROOMS = ("acme-sales", "acme-billing")
"""Rooms support-line transfers to (``vars.sales_room``, ``vars.billing_room``)."""
PHARMACY = "+14155550140"
OPEN_HOURS = {"support-line": {"hours_override": "open"}}

DIGITS = "0123456789"
PHARMACY_IVR = RemoteIvr(
    start="main",
    menus={
        "main": {"2": "rx"},  # "To refill a prescription, press 2."
        "rx": {**dict.fromkeys(DIGITS, "rx"), "#": "zip"},  # the number, then pound
        "zip": {**dict.fromkeys(DIGITS, "zip"), "#": "confirm"},
        "confirm": {"1": "hangup"},  # "To confirm this refill, press 1." ... goodbye
    },
)


def far_ends() -> FarEnds:
    """Who answers the demo's dial-outs and transfers (everyone else answers at once)."""
    ends = FarEnds()
    ends.add(PHARMACY, Callee.answers(after=1.0, ivr=PHARMACY_IVR))
    ends.add("+14155550160", Callee.busy(after=1.0))  # the on-call agent is on another call
    ends.add("+14155550161", Callee.answers(after=1.5))  # the backup agent picks up
    return ends


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample call: how it is placed and where its flow should end."""

    label: str
    story: str
    flow: str
    ends_in: str
    to: str
    from_: str | None = None
    caller: Caller | None = None
    vars: dict[str, Any] = field(default_factory=dict)

    @property
    def outbound(self) -> bool:
        """Started through ``POST /v1/calls`` rather than dialled in."""
        return self.caller is None


SAMPLES = (
    Sample(
        "sales",
        "a caller presses 1 and is transferred to the sales team's room",
        "support-line",
        "handed_off",
        to="+14155550100",
        from_="+14155550111",
        caller=Caller(keys=(Press(1.0, "1"),)),
    ),
    Sample(
        "pbx-refer",
        "a caller from the company PBX presses 3 and is handed back to the PBX (REFER)",
        "support-line",
        "handed_off",
        to="sip:support@ivr.example.com",
        from_="sip:alice@pbx.example.com",
        caller=Caller(keys=(Press(1.0, "3"),)),
    ),
    Sample(
        "hang-up",
        "a caller hangs up in the middle of the menu",
        "support-line",
        "caller_hung_up",
        to="+14155550100",
        from_="+14155550112",
        caller=Caller(hangup=2.0),
    ),
    Sample(
        "warm",
        "the on-call agent is busy, the backup agent answers and is briefed",
        "warm-transfer",
        "connected",
        to="+14155550102",
        from_="+14155550113",
        caller=Caller(),
    ),
    Sample(
        "pharmacy",
        "an outbound call keys its way through a pharmacy's IVR to order a refill",
        "outbound-ivr",
        "refill_ordered",
        to=PHARMACY,
        vars={"rx_number": "7654321", "zip_code": "94107"},
    ),
)


class Run:
    """One demo run: the stack, the calls placed and what was printed."""

    def __init__(self, stack: Stack, echo: Echo) -> None:
        self.stack = stack
        self.echo = echo
        self.started = time.monotonic()
        self.calls: dict[str, Sample] = {}
        self.setup_requests = 0

    def say(self, call_id: str, text: str) -> None:
        label = self.calls[call_id].label
        when = f"+{time.monotonic() - self.started:.1f}s"
        self.echo(f"{when:>7}  {label:<9} {short_id(call_id):<12} {text}")

    async def setup(self) -> None:
        """Create the teams' rooms, which support-line transfers callers into."""
        emulator = self.stack.emulator_server
        async with DailyClient(self.stack.secrets.api_key, base_url=emulator.base_url) as daily:
            for name in TEAM_ROOMS:
                await daily.create_room(RoomSpec(name=name, sip=SipConfig(display_name=name)))
        self.setup_requests = len(self.stack.emulator.log)

    async def place(self, sample: Sample) -> str:
        """Place one sample call; its id on the daemon."""
        if sample.outbound:
            call_id = await self.stack.start_call(sample.flow, sample.to, vars=sample.vars)
        else:
            call_id = await self.stack.place_call(sample.to, sample.from_, caller=sample.caller)
        self.calls[call_id] = sample
        self.say(call_id, f"{sample.flow}: {sample.story}")
        return call_id

    async def follow(self, call_id: str, within: float) -> dict[str, Any]:
        """Print the call's moves as its trace grows; the call once it has ended."""
        flow, seen = self.calls[call_id].flow, 0
        deadline = time.monotonic() + within
        while True:
            call = await self.stack.call(call_id)
            trace = await self.stack.trace(call_id)
            for entry in trace[seen:]:
                line = entry_line(entry, flow)
                if line is not None:
                    self.say(call_id, line)
            seen = len(trace)
            if call["ended"] or time.monotonic() > deadline:
                call["trace"] = trace
                return call
            await asyncio.sleep(0.2)

    def summary(self, results: dict[str, dict[str, Any]]) -> bool:
        """Print one block per call and the emulator's counts; True if all ended as expected."""
        log = self.stack.emulator.log
        effects = effects_by_call(e for e in log.side_effects() if e.seq > self.setup_requests)
        ok = True
        self.echo("\n== summary")
        for call_id, call in results.items():
            sample = self.calls[call_id]
            trace = call["trace"]
            path = path_of(trace, sample.flow)
            good = bool(call["ended"]) and call["state"] == sample.ends_in
            ok = ok and good
            duration = (trace[-1]["at"] - call["started_at"]) if trace else 0.0
            self.echo(
                f"{'ok ' if good else 'NOT'} {sample.label:<9} {call_id}\n"
                f"    flow {sample.flow}, outcome {call['outcome'] or 'still live'}, "
                f"ended in {call['state']} (expected {sample.ends_in}), {duration:.1f}s\n"
                f"    path {' -> '.join(path)}\n"
                f"    Daily {', '.join(effects.get(call_id, [])) or '-'}"
            )
        counts = Counter(e.endpoint for e in log.side_effects() if e.seq > self.setup_requests)
        sender = self.stack.emulator.webhooks
        delivered = sum(1 for d in sender.deliveries if d.ok)
        bridge = self.stack.bridge
        keys = sum(1 for f in bridge.forwarded if f.taken) if bridge else 0
        self.echo(
            "\n== the emulator saw\n"
            f"    {len(log) - self.setup_requests} REST requests from the daemon "
            f"({self.setup_requests} more to set up the team rooms); side effects:\n"
            + "".join(f"      {n:>3}  {name}\n" for name, n in sorted(counts.items()))
            + f"    {delivered} of {len(sender.deliveries)} webhook deliveries answered 2xx;"
            f" {keys} key presses carried to the daemon by the bridge"
        )
        return ok


async def run_demo(flows: Path, workdir: Path, *, serve: bool, within: float, echo: Echo) -> bool:
    """The whole demo; True when every sample call ended where its flow should take it."""
    served = copy_flows(flows, workdir / "flows", var_defaults=OPEN_HOURS)
    echo(f"== starting the Daily emulator and flowengine serve (run folder {workdir})")
    async with Stack(flows=served, workdir=workdir, far_ends=far_ends()) as stack:
        assert stack.daemon is not None
        echo(
            f"    emulator  {stack.emulator_server.base_url}  (Daily's REST API, webhooks, "
            "pinless dial-in)\n"
            f"    daemon    {stack.daemon_url}  (flowengine serve, SQLite {stack.daemon.store})\n"
            "    bridge    emulator room events -> POST /v1/calls/{id}/events (key presses)\n"
            "    flows     a copy of "
            f"{flows}/ with support-line's hours_override=open (open at any hour)"
        )
        run = Run(stack, echo)
        await run.setup()
        echo(f"    rooms     {', '.join(TEAM_ROOMS)} (the teams support-line transfers to)")
        echo("\n== sample calls, each move as it happens")
        followers: dict[str, asyncio.Task[dict[str, Any]]] = {}
        for sample in SAMPLES:
            call_id = await run.place(sample)
            followers[call_id] = asyncio.create_task(run.follow(call_id, within))
            await asyncio.sleep(0.5)  # staggered, so the opening moves read call by call
        ok = run.summary({call_id: await task for call_id, task in followers.items()})
        if serve:
            echo(serving_help(stack, workdir))
            await _until_stopped()
        echo("\n== stopping the bridge, the daemon (graceful drain) and the emulator")
    return ok


def serving_help(stack: Stack, workdir: Path) -> str:
    """What to do with the servers left running; the secrets go to a file, not the screen."""
    env = workdir / "demo.env"
    env.touch(mode=0o600)
    values = {
        **stack.secrets.env(),
        "DAILY_API_URL": stack.emulator_server.base_url,
        "FLOWENGINE_URL": stack.daemon_url,
        "EMULATOR_URL": stack.emulator_server.url,
    }
    env.write_text("".join(f"export {k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return (
        "\n== serving until Ctrl-C\n"
        f"    source {env}    # the run's secrets and URLs\n"
        '    curl -H "Authorization: Bearer $FLOWENGINE_API_TOKEN" $FLOWENGINE_URL/v1/calls/<id>\n'
        '    curl -X POST -H "Authorization: Bearer $DAILY_API_KEY" $EMULATOR_URL/_emulator/calls'
        ' -d \'{"to": "+14155550100", "from": "+14155550199", "caller": {"keys": [[1, "0"]]}}\'\n'
        f"    the daemon's log: {workdir / 'daemon.log'}"
    )


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on this platform
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()  # Ctrl-C cancels this wait (asyncio.run's SIGINT handling)


@click.command()
@click.option("--flows", "flows", default="flows", show_default=True, help="Folder of flows.")
@click.option("--dir", "folder", default=None, help="Run folder (default: a temporary one).")
@click.option("--serve", is_flag=True, help="Keep both servers running until Ctrl-C.")
@click.option("--timeout", default=90.0, show_default=True, help="Seconds the calls may take.")
def demo(flows: str, folder: str | None, serve: bool, timeout: float) -> None:
    """Start the daemon (SQLite) and the Daily emulator, place sample calls, show their paths.

    Exit code 0 when every sample call ended where its flow should take it.
    """
    from .daemon import logs

    # Only warnings (a daemon that cannot be reached, an event dropped), and on stderr: stdout
    # is the calls' story.
    logs.configure("console", stream=sys.stderr, level=logging.WARNING)
    # The emulator's webhooks and the bridge go to 127.0.0.1: never through a proxy.
    os.environ.update(without_proxy(os.environ))
    source = Path(flows)
    if not source.is_dir():
        raise click.UsageError(f"--flows: {source} is not a folder")
    workdir = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="flowengine-demo-"))
    ok = False
    try:
        ok = asyncio.run(
            run_demo(source, workdir, serve=serve, within=timeout, echo=_echo), debug=False
        )
    except KeyboardInterrupt:
        ok = serve  # Ctrl-C is how --serve ends
        click.echo("stopped", err=True)
    except Exception as exc:  # a server that did not start: say why, no traceback
        click.echo(f"flowengine demo: error: {exc}", err=True)
        sys.exit(1)
    finally:
        if folder is None:
            shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(0 if ok else 1)


def _echo(text: str) -> None:
    click.echo(text)


__all__ = ["SAMPLES", "Sample", "demo", "far_ends", "run_demo"]
