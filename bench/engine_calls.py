"""Benchmark: 10,000 live calls through the engine, against a hand-written dict dispatcher.

Both sides run the same call, in the same process, with the same plumbing: per call an
``asyncio.Queue`` and a consumer task, commands answered by a fake Daily in background tasks
whose results (and the webhooks Daily would send next) come back through the call's queue,
timers on a virtual clock. What differs is the call logic:

* ``engine``: ``flowengine.runtime.Engine`` running the flow below, compiled to a shared
  ``transitions.Machine``, with sessions, idempotency keys, templates and a full trace;
* ``dict baseline``: ``TABLE[state][event] -> handler``, written by hand for this one flow,
  no trace, no idempotency keys;
* ``core alone``: ``Runtime.handle`` fed the same ten events per call by hand, without the
  shell (no queues, tasks or port): what the call logic itself costs.

The call: answer (``Answer``, then ``dialin.connected``) -> menu (``Play``, ``play.done``, a
menu timer) -> the caller presses 1 -> transfer (``SipCallTransfer``, then
``calltransfer.triggered``, ``initiated``, ``dialin.stopped``, ``answered``) -> end.
Ten events per call. All calls are started first and wait in the menu together (that is
when memory is measured: every call live), then every caller presses 1.

Events/s counts events handled by the calls (both sides handle the same ones) over the wall
time of the whole run; memory per call is ``tracemalloc`` bytes held by the live calls
(sessions or records, queues, tasks, timers; the engine's traces included), measured in a
separate pass so that tracing does not slow the timed one.

Run: ``python bench/engine_calls.py [--calls 10000] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flowengine.build import build_flow  # noqa: E402
from flowengine.loader import parse_flow_text  # noqa: E402
from flowengine.model import Flow  # noqa: E402
from flowengine.runtime import Engine, FakeTelephony, Runtime, VirtualClock  # noqa: E402
from flowengine.runtime import events as ev  # noqa: E402

FLOW = """
name: bench-line
start: welcome
on: {hangup: done, error: done}
vars: {sales_room: sales}
prompts: {main: "Press 1 for sales."}
states:
  welcome:
    answer: {}
    on: {answered: menu, failed: done}
  menu:
    menu: {prompt: main, options: {1: sales}, timeout: 5s}
    on: {max_attempts: done}
  sales:
    transfer: {room: "{{ vars.sales_room }}"}
    on: {answered: done, failed: done}
  done:
    end: {}
"""


def load() -> Flow:
    """The flow, through loader and build (the checks are another benchmark's business)."""
    doc = parse_flow_text(FLOW.lstrip(), "bench-line.yaml")
    flow, problems = build_flow(doc)
    assert doc.ok
    assert not problems
    return flow


# -- the engine ------------------------------------------------------------------------------


async def run_engine(calls: int, on_live: Callable[[], None] | None = None) -> tuple[int, bool]:
    """Run the calls; returns (events handled, all ended)."""
    clock = VirtualClock()
    engine = Engine([load()], FakeTelephony(), clock, room_sip_domain="example.sip.daily.co")
    for i in range(calls):
        engine.start_call(f"c{i}", "bench-line")
    await clock.advance(0)
    if on_live is not None:
        on_live()
    for i in range(calls):
        engine.post(f"c{i}", ev.dtmf("1"))
    await clock.advance(0)
    sessions = engine.calls.values()
    handled = sum(len(s.trace) for s in sessions)
    ended = all(s.ended and s.state == "done" for s in sessions)
    await engine.aclose()
    return handled, ended


def _first(commands: list[Any], kind: str) -> Any:
    return next(c for c in commands if c.kind == kind)


async def run_core(calls: int, on_live: Callable[[], None] | None = None) -> tuple[int, bool]:
    """The core alone: ``Runtime.handle`` fed the same events by hand, no queues or tasks."""
    runtime = Runtime([load()], room_sip_domain="example.sip.daily.co")
    sessions = []
    for i in range(calls):
        s = runtime.new_session(f"c{i}", "bench-line")
        answer = _first(runtime.handle(s, ev.start(), 0.0), "answer")
        runtime.handle(s, ev.command_ok(answer.key, "answer"), 0.0)
        connected = ev.Event("dialin.connected", {"session_id": f"c{i}-caller"})
        play = _first(runtime.handle(s, connected, 0.0), "play")
        runtime.handle(s, ev.play_done(play.key), 0.0)
        sessions.append(s)
    if on_live is not None:
        on_live()
    for s in sessions:
        transfer = _first(runtime.handle(s, ev.dtmf("1"), 0.0), "sip_call_transfer")
        runtime.handle(s, ev.command_ok(transfer.key, "sip_call_transfer"), 0.0)
        for name in ("triggered", "initiated", "answered"):
            if name == "answered":
                runtime.handle(s, ev.Event("dialin.stopped", {"session_id": s.legs["caller"]}), 0.0)
            runtime.handle(
                s, ev.Event(f"calltransfer.{name}", {"session_id": s.legs["caller"]}), 0.0
            )
    handled = sum(len(s.trace) for s in sessions)
    return handled, all(s.ended and s.state == "done" for s in sessions)


# -- the baseline ----------------------------------------------------------------------------


class DictCall:
    """One call of the baseline."""

    __slots__ = ("cid", "handled", "queue", "state", "task", "timer", "tail", "vars")

    def __init__(self, cid: str) -> None:
        self.cid, self.state, self.vars = cid, "welcome", {"sales_room": "sales"}
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.timer: Any = None
        self.tail: asyncio.Task[None] | None = None
        self.handled = 0


class DictEngine:
    """The same call, written by hand as a dict of handlers, with the same plumbing."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.calls: dict[str, DictCall] = {}
        self.pending = 0
        self.idle_event = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        clock.on_settle(self.idle)
        self.table: dict[
            str, dict[str, Callable[[DictCall, dict[str, Any]], list[tuple[Any, ...]]]]
        ] = {
            "welcome": {"start": self.answer, "dialin.connected": self.menu},
            "menu": {"play.done": self.listen, "dtmf": self.pick, "timer": self.done},
            "sales": {"calltransfer.answered": self.done},
        }

    # handlers: each returns the commands to carry out
    def answer(self, call: DictCall, p: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [("answer",)]

    def menu(self, call: DictCall, p: dict[str, Any]) -> list[tuple[Any, ...]]:
        call.state = "menu"
        return [("play", "Press 1 for sales.")]

    def listen(self, call: DictCall, p: dict[str, Any]) -> list[tuple[Any, ...]]:
        call.timer = self.clock.call_later(5, self.post, call.cid, "timer", {})
        return []

    def pick(self, call: DictCall, p: dict[str, Any]) -> list[tuple[Any, ...]]:
        if p.get("tone") != "1":
            return []
        call.timer.cancel()
        call.state = "sales"
        return [("transfer", f"sip:{call.vars['sales_room']}@example.sip.daily.co")]

    def done(self, call: DictCall, p: dict[str, Any]) -> list[tuple[Any, ...]]:
        call.state = "done"
        return []

    # plumbing
    def start(self, cid: str) -> None:
        call = self.calls[cid] = DictCall(cid)
        call.task = asyncio.get_running_loop().create_task(self.consume(call))
        self.post(cid, "start", {})

    def post(self, cid: str, name: str, payload: dict[str, Any]) -> None:
        self.pending += 1
        self.idle_event.clear()
        self.calls[cid].queue.put_nowait((name, payload))

    async def consume(self, call: DictCall) -> None:
        while True:
            name, payload = await call.queue.get()
            call.handled += 1
            handler = self.table.get(call.state, {}).get(name)
            commands = handler(call, payload) if handler else []
            if commands:
                task = asyncio.get_running_loop().create_task(self.execute(call, commands))
                self.pending += 1
                self.tasks.add(task)
                task.add_done_callback(self.task_done)
            self.settled()
            if call.state == "done" and call.queue.empty():
                return

    async def execute(self, call: DictCall, commands: list[tuple[Any, ...]]) -> None:
        for command in commands:
            follow: list[tuple[str, dict[str, Any]]] = [("command.ok", {})]
            if command[0] == "answer":
                follow.append(("dialin.connected", {"session_id": f"{call.cid}-caller"}))
            elif command[0] == "play":
                follow = [("play.done", {})]
            elif command[0] == "transfer":
                follow += [
                    ("calltransfer.triggered", {}),
                    ("calltransfer.initiated", {}),
                    ("dialin.stopped", {}),
                    ("calltransfer.answered", {}),
                ]
            for name, payload in follow:
                self.post(call.cid, name, payload)

    def task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.settled()

    def settled(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            self.idle_event.set()

    async def idle(self) -> None:
        while self.pending:
            await self.idle_event.wait()


async def run_baseline(calls: int, on_live: Callable[[], None] | None = None) -> tuple[int, bool]:
    """Run the calls by hand; returns (events handled, all ended)."""
    clock = VirtualClock()
    engine = DictEngine(clock)
    for i in range(calls):
        engine.start(f"c{i}")
    await clock.advance(0)
    if on_live is not None:
        on_live()
    for i in range(calls):
        engine.post(f"c{i}", "dtmf", {"tone": "1"})
    await clock.advance(0)
    handled = sum(c.handled for c in engine.calls.values())
    ended = all(c.state == "done" for c in engine.calls.values())
    return handled, ended


# -- measuring -------------------------------------------------------------------------------

Runner = Callable[..., Any]


def timed(runner: Runner, calls: int) -> tuple[float, int, float]:
    """Seconds for one run, events handled, and seconds spent in the cyclic GC."""
    in_gc = [0.0, 0.0]

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            in_gc[1] = time.perf_counter()
        else:
            in_gc[0] += time.perf_counter() - in_gc[1]

    gc.collect()
    gc.callbacks.append(watch)
    try:
        start = time.perf_counter()
        handled, ended = asyncio.run(runner(calls))
        elapsed = time.perf_counter() - start
    finally:
        gc.callbacks.remove(watch)
    assert ended, "not every call reached the end"
    return elapsed, handled, in_gc[0]


def memory_per_call(runner: Runner, calls: int) -> float:
    """tracemalloc bytes held per live call, while every call waits in the menu."""
    held: list[int] = []

    def measure() -> None:
        gc.collect()
        held.append(tracemalloc.get_traced_memory()[0])

    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    asyncio.run(runner(calls, measure))
    tracemalloc.stop()
    return (held[0] - base) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for label, runner in (
        ("engine", run_engine),
        ("dict baseline", run_baseline),
        ("core alone (no shell)", run_core),
    ):
        timed(runner, min(args.calls, 500))  # warm up imports and caches
        runs = [timed(runner, args.calls) for _ in range(args.runs)]
        rate = [r[1] / r[0] for r in runs]
        rows.append(
            {
                "label": label,
                "events": runs[0][1],
                "seconds": statistics.median(r[0] for r in runs),
                "rate": statistics.median(rate),
                "low": min(rate),
                "high": max(rate),
                "gc": statistics.median(r[2] / r[0] for r in runs),
                "memory": memory_per_call(runner, args.calls),
            }
        )
    print(f"{args.calls:,} live calls, {args.runs} runs, Python {sys.version.split()[0]}\n")
    print(
        "| implementation | events | wall time | events/s (min-max) | µs/event | in GC | memory |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['label']} | {r['events']:,} | {r['seconds']:.2f} s "
            f"| {r['rate']:,.0f} ({r['low']:,.0f}-{r['high']:,.0f}) | {1e6 / r['rate']:.1f} "
            f"| {r['gc']:.0%} | {r['memory'] / 1024:.1f} KB |"
        )
    engine, base, _ = rows
    print(
        f"\nengine / baseline: {base['rate'] / engine['rate']:.1f}x the time per event, "
        f"{engine['memory'] / base['memory']:.1f}x the memory per live call"
    )


if __name__ == "__main__":
    main()
