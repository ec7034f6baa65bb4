"""The crash-line flow and what its calls must do: shared by the crash and scale-out tests.

``FLOW`` is a menu, a code, a transfer, every outcome routed; ``scripts`` makes what each caller
does, ``place_all`` places the calls through a ``Stack``. The checks read back what happened:

- ``assert_on_path``: every call ended exactly by its flow's main path for what its caller
  did, with exactly that path's Daily side effects;
- ``assert_nothing_doubled``: per call, each endpoint acted on at most once in the request log;
- ``lost_webhooks``: every webhook answered 2xx is in its call's journal, or was ignored by a
  daemon after its call had ended.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flowengine.emulator import Caller, Delivery, Press
from flowengine.harness import Stack
from flowengine.harness.report import path_of
from flowengine.runtime.events import normalise_name
from flowengine.store import Store

NUMBER = "+14155550100"
FLOW = """\
# The crash test's line: a menu, a code, a transfer; every outcome routed.
name: crash-line
match: {dialin: ["+14155550100"]}
prompts:
  menu: "For a code press 1, to leave press 2, for the desk press 3."
  code: "Enter your four digit code."
  bye: "Goodbye."
on: {hangup: gone}
start: welcome
states:
  welcome:
    answer: {timeout: 15s}
    on: {answered: menu, failed: gone}
  menu:
    menu: {prompt: menu, options: {1: code, 2: bye, 3: desk}, timeout: 25s, attempts: 1}
    on: {no_input: bye, max_attempts: bye}
  code:
    collect:
      prompt: code
      into: code
      min_digits: 4
      max_digits: 4
      timeouts: {first_digit: 20s, inter_digit: 10s}
      attempts: 1
    on: {ok: bye, no_input: bye, max_attempts: bye}
  desk:
    transfer: {phone: "+14155550199", timeout: 15s}
    on: {answered: handed_off, failed: bye}
  bye:
    play: bye
    on: {done: hang_up}
  hang_up:
    hangup: {reason: done}
  gone:
    hangup: {reason: caller hung up}
  handed_off:
    end: {}
"""

MAIN_PATH = {
    "leave": ["welcome", "menu", "bye", "hang_up"],
    "code": ["welcome", "menu", "code", "bye", "hang_up"],
    "hang-up": ["welcome", "menu", "gone"],
    "desk": ["welcome", "menu", "desk", "handed_off"],
}
CREATED = ["rooms/create", "dialin/pinlessCallUpdate"]
MAIN_EFFECTS = {
    "leave": [*CREATED, "rooms/delete"],
    "code": [*CREATED, "rooms/delete"],
    "hang-up": [*CREATED, "rooms/delete"],
    "desk": [*CREATED, "sipCallTransfer"],
}
IGNORED = "webhook for no live call ignored"


@dataclass(frozen=True, slots=True)
class Script:
    kind: str
    caller: Caller


def scripts(rng: random.Random, calls: int, *, desk_every: int = 20) -> list[Script]:
    """What each caller does, 8-12 s after being connected: as a person would, once the menu
    has been heard. By then a daemon killed meanwhile has been told the call was answered
    (the webhook's retries), so the caller's action cannot overtake it. One call in
    ``desk_every`` asks for the desk (a transfer: the daemon paces those, about one a second)."""
    out: list[Script] = []
    for i in range(calls):
        at = rng.uniform(8.0, 12.0)
        if i % desk_every == 0:
            out.append(Script("desk", Caller(keys=(Press(at, "3"),))))
        elif i % 5 == 1:
            out.append(Script("hang-up", Caller(hangup=at)))
        elif i % 2:
            out.append(Script("leave", Caller(keys=(Press(at, "2"),))))
        else:
            code = "".join(rng.choice("0123456789") for _ in range(4))
            out.append(Script("code", Caller(keys=(Press(at, "1"), Press(at + 1.5, code)))))
    return out


async def place_all(stack: Stack, plan: Sequence[Script], *, at_once: int = 16) -> list[str]:
    """Place every call of ``plan`` (``at_once`` in flight); their ids, in plan order."""
    gate = asyncio.Semaphore(at_once)

    async def one(i: int, script: Script) -> str:
        async with gate:
            return await stack.place_call(NUMBER, f"+1415556{i:04d}", caller=script.caller)

    return list(await asyncio.gather(*(one(i, s) for i, s in enumerate(plan))))


def story(
    call_id: str, trace: list[dict[str, Any]], deliveries: Iterable[Delivery], started: float
) -> str:
    """What the daemons handled and what the emulator sent, for a call off its path."""
    zero = time.time() - (time.monotonic() - started)
    lines = [
        f"  {e['at'] - zero:6.2f} handled {e['event']['name']} {e.get('note') or ''}" for e in trace
    ]
    lines += [
        f"  {d.time - zero:6.2f} sent {d.type} #{d.attempt} to {d.url}: {d.status or d.error}"
        for d in deliveries
        if d.envelope["payload"].get("room") == call_id
    ]
    return "\n".join(sorted(lines))


async def journals(store: Store, call_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Each call's journal entries, decoded."""
    return {
        call_id: [json.loads(e.payload) for e in await store.journal(call_id)]
        for call_id in call_ids
    }


def assert_on_path(
    ids: Sequence[str],
    plan: Sequence[Script],
    calls: Mapping[str, Mapping[str, Any]],
    traces: Mapping[str, list[dict[str, Any]]],
    effects: Mapping[str, list[str]],
    story_of: Callable[[str], str] | None = None,
) -> None:
    """Every call ended, exactly by its flow's main path for what its caller did, with exactly
    that path's Daily side effects. ``story_of(call_id)``, when given, tells what happened to
    a call that did not."""
    problems: list[str] = []
    for call_id, script in zip(ids, plan, strict=True):
        call = calls.get(call_id, {})
        if not call.get("ended"):
            problems.append(f"{call_id} ({script.kind}): still in {call.get('state')!r}")
            continue
        path = path_of(traces[call_id], "crash-line")
        if (path, effects.get(call_id, [])) != (MAIN_PATH[script.kind], MAIN_EFFECTS[script.kind]):
            told = f"\n{story_of(call_id)}" if story_of is not None else ""
            done = effects.get(call_id)
            problems.append(f"{call_id} ({script.kind}): {path}, Daily {done}{told}")
    assert problems == [], "\n".join(problems)


def assert_nothing_doubled(effects: Mapping[str, list[str]]) -> None:
    """Each endpoint acted on at most once per call, in all the request log."""
    for call_id, done in effects.items():
        assert max(Counter(done).values()) == 1, (call_id, done)


def lost_webhooks(
    deliveries: Iterable[Delivery],
    journal_of: Mapping[str, list[dict[str, Any]]],
    records: Iterable[Mapping[str, Any]],
) -> list[str]:
    """The webhooks answered 2xx that are neither journaled nor ignored after their call
    ended; fails if a daemon ignored one before its call had ended.

    ``records`` are the daemons' log lines (all of them, for several daemons): a call ends
    when a daemon first logs its CDR, and a webhook ignored by any daemon is accounted for.
    """
    records = list(records)
    ended: dict[str, str] = {}  # call id -> when a daemon first logged its end (its CDR)
    for line in records:
        if line.get("event") == "cdr":
            at = ended.get(line["call_id"])
            ended[line["call_id"]] = min(at, line["timestamp"]) if at else line["timestamp"]
    ignored = {
        line["id"]: (line.get("call_id"), line["timestamp"])
        for line in records
        if line.get("event") == IGNORED
    }
    # A webhook is ignored only once its call has ended (ISO timestamps compare as text).
    early = {i: (c, at) for i, (c, at) in ignored.items() if c and not ended.get(c, "~") <= at}
    assert early == {}, f"{len(early)} webhooks ignored before their call ended: {early}"
    lost: list[str] = []
    for delivery in deliveries:
        if not delivery.ok:
            continue
        envelope = delivery.envelope
        if envelope["id"] in ignored:
            continue
        room = envelope["payload"].get("room")
        wanted = {"name": normalise_name(envelope["type"]), "payload": envelope["payload"]}
        if not any(_same(entry, wanted) for entry in journal_of.get(str(room), [])):
            lost.append(f"{envelope['id']} (room {room})")
    return lost


def _same(entry: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return bool(entry.get("name") == wanted["name"] and entry.get("payload") == wanted["payload"])
