"""The calls the end-to-end tests place: one or more per example flow, with what must happen.

Each ``Example`` says how the call is placed (a scripted caller dialling in, or ``POST
/v1/calls``), the state its flow must end in, the path it must take, and exactly the Daily
side effects the emulator must see for it, in order. ``run_examples`` places them all at once
and waits until every one has ended.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from flowengine.emulator import Callee, Caller, FarEnds, Press, RemoteIvr
from flowengine.harness import Stack
from flowengine.harness.report import effects_by_call, path_of

PHARMACY = "+14155550140"
DIGITS = "0123456789"
PHARMACY_IVR = RemoteIvr(
    menus={
        "main": {"2": "rx"},
        "rx": {**dict.fromkeys(DIGITS, "rx"), "#": "zip"},
        "zip": {**dict.fromkeys(DIGITS, "zip"), "#": "confirm"},
        "confirm": {"1": "hangup"},
    }
)
TEAM_ROOMS = ("acme-sales", "acme-billing")
WITHIN = 90.0
"""Seconds every call has to end (the pharmacy's IVR alone takes about 20)."""

ANSWERED = ["rooms/create", "dialin/pinlessCallUpdate"]
MENU = ["welcome", "business_hours", "greeting", "main_menu"]


def far_ends() -> FarEnds:
    """The far ends the example calls meet."""
    ends = FarEnds()
    ends.add(PHARMACY, Callee.answers(after=1.0, ivr=PHARMACY_IVR))
    ends.add("+14155550160", Callee.busy(after=1.0))
    ends.add("+14155550161", Callee.answers(after=1.0))
    return ends


@dataclass(frozen=True, slots=True)
class Example:
    """One call: how it is placed and what must happen."""

    name: str
    flow: str
    to: str
    ends_in: str
    path: list[str]
    effects: list[str]
    from_: str | None = None
    caller: Caller | None = None
    vars: dict[str, Any] = field(default_factory=dict)


def keys(*presses: tuple[float, str]) -> Caller:
    """A caller pressing ``tones`` at each ``at`` seconds after being connected."""
    return Caller(keys=tuple(Press(at, tones) for at, tones in presses))


EXAMPLES = (
    Example(
        "sales",
        "support-line",
        "+14155550100",
        "handed_off",
        [*MENU, "sales", "sales_transfer", "handed_off"],
        [*ANSWERED, "sipCallTransfer"],
        from_="+14155550111",
        caller=keys((2.0, "1")),
    ),
    Example(
        "billing",
        "support-line",
        "+14155550100",
        "handed_off",
        [
            *MENU,
            "billing_account",
            "verify_caller",
            "verify-pin/ask_pin",
            "verify-pin/check_pin",
            "verify-pin/judge",
            "verify-pin/verified",
            "billing_welcome",
            "billing_transfer",
            "handed_off",
        ],
        [*ANSWERED, "sipCallTransfer"],
        from_="+14155550112",
        caller=keys((2.0, "2"), (4.0, "87654321"), (8.0, "4321#")),
    ),
    Example(
        "pbx-refer",
        "support-line",
        "sip:support@ivr.example.com",
        "handed_off",
        [*MENU, "tech_support", "tech_support_route", "tech_support_refer", "handed_off"],
        [*ANSWERED, "sipRefer"],
        from_="sip:alice@pbx.example.com",
        caller=keys((2.0, "3")),
    ),
    Example(
        "hang-up",
        "support-line",
        "+14155550100",
        "caller_hung_up",
        [*MENU, "caller_hung_up"],
        [*ANSWERED, "rooms/delete"],
        from_="+14155550113",
        caller=Caller(hangup=2.0),
    ),
    Example(
        "warm",
        "warm-transfer",
        "+14155550102",
        "connected",
        ["welcome", "hold", "dial_agent", "still_holding", "next_agent", "dial_agent"]
        + ["brief_agent", "connected"],
        [*ANSWERED, "dialOut/start", "dialOut/start"],
        from_="+14155550114",
        caller=Caller(),
    ),
    Example(
        "balance",
        "account-lookup",
        "+14155550101",
        "hang_up",
        ["welcome", "intro", "ask_account", "lookup", "check_status", "verify"]
        + ["verify-pin/ask_pin", "verify-pin/check_pin", "verify-pin/judge"]
        + ["verify-pin/verified", "read_balance", "balance_menu", "goodbye", "hang_up"],
        [*ANSWERED, "rooms/delete"],
        from_="+14155550115",
        caller=keys((2.0, "12345678#"), (6.0, "4321#"), (9.0, "3")),
    ),
    Example(
        "pharmacy",
        "outbound-ivr",
        PHARMACY,
        "refill_ordered",
        ["dial_pharmacy", "hear_greeting", "press_refills", "hear_rx_prompt", "enter_rx"]
        + ["hear_zip_prompt", "enter_zip", "hear_summary", "confirm", "hear_confirmation"]
        + ["refill_ordered"],
        ["rooms/create", "dialOut/start", *["dialOut/sendDTMF"] * 4, "rooms/delete"],
        vars={"rx_number": "7654321", "zip_code": "94107"},
    ),
)


@dataclass(slots=True)
class Outcome:
    """What became of one example's call."""

    example: Example
    call_id: str
    call: dict[str, Any]
    path: list[str]
    effects: list[str]


async def create_team_rooms(stack: Stack) -> int:
    """The rooms support-line transfers into; the request log's length afterwards."""
    from flowengine.daily import DailyClient, RoomSpec, SipConfig

    async with DailyClient(stack.secrets.api_key, base_url=stack.emulator_server.base_url) as daily:
        for name in TEAM_ROOMS:
            await daily.create_room(RoomSpec(name=name, sip=SipConfig(display_name=name)))
    return len(stack.emulator.log)


async def place(stack: Stack, example: Example) -> str:
    """Place one example's call; its id on the daemon."""
    if example.caller is None:
        return await stack.start_call(example.flow, example.to, vars=example.vars)
    return await stack.place_call(example.to, example.from_, caller=example.caller)


async def run_examples(stack: Stack) -> dict[str, Outcome]:
    """Place every example's call at once; what became of each once all have ended."""
    await create_team_rooms(stack)
    ids = await asyncio.gather(*(place(stack, e) for e in EXAMPLES))
    calls = await stack.wait_ended(ids, WITHIN)
    effects = effects_by_call(stack.emulator.log.side_effects())
    outcomes: dict[str, Outcome] = {}
    for example, call_id in zip(EXAMPLES, ids, strict=True):
        trace = await stack.trace(call_id)
        outcomes[example.name] = Outcome(
            example,
            call_id,
            calls[call_id],
            path_of(trace, example.flow),
            effects.get(call_id, []),
        )
    return outcomes


def check(outcomes: dict[str, Outcome]) -> list[str]:
    """Every way the calls did not do what their examples say (empty when all did)."""
    problems: list[str] = []
    for name, outcome in outcomes.items():
        example, call = outcome.example, outcome.call
        if not call.get("ended") or call.get("state") != example.ends_in:
            problems.append(f"{name}: in {call.get('state')!r}, ended={call.get('ended')}")
        if outcome.path != example.path:
            problems.append(f"{name}: path {outcome.path}")
        if outcome.effects != example.effects:
            problems.append(f"{name}: Daily side effects {outcome.effects}")
    return problems
