"""Benchmark: validate a generated 1,000-state flow, against the floor any validator pays.

The flow is a realistic contact-centre IVR, valid in every respect: a welcome, then blocks of
twelve states (menu, PIN collect, CRM lookup over HTTP, choose, set, say, business hours,
closed message, transfer, dial-out, wait, stop the dial-out), each block leading to the next.

Measured in one process, median of several runs, caches warm (the first, cold run is shown
apart):

* ``flowengine``: ``validate_paths`` on the file: read, parse with positions, JSON Schema,
  build the model, every semantic check;
* ``baseline``: ``yaml.safe_load`` plus ``jsonschema`` validation of the same file with the
  same schema: the floor any schema-based validator built on PyYAML pays;
* ``baseline, libyaml``: the same with ``yaml.load(text, CSafeLoader)``, PyYAML's C parser
  (``yaml.safe_load`` is pure Python): a harder floor.

Run: ``python bench/validate_large.py [--states 1000] [--runs 9] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from flowengine.build import build_flow
from flowengine.checks import run_checks
from flowengine.loader import read_flow_file
from flowengine.project import validate_paths
from flowengine.schema import flow_schema, schema_diagnostics

SHARED = 4
"""States outside the blocks: welcome, apologise, goodbye, done."""

BLOCK = 12
"""States per block."""

_HEAD = """\
# yaml-language-server: $schema=../schemas/flow.schema.json
name: large-support-line
description: A generated contact-centre flow of {states} states, for benchmarks.
match: {{dialin: ["+14155550100"]}}
allowed_hosts: [crm.example.com]
vars:
  pin: ""
  balance: 0
  tier: standard
  sales_room: sales
start: welcome
on: {{hangup: done, error: apologise}}
prompts:
  welcome: "Welcome to Acme."
  enter_pin: "Please enter your PIN, then press hash."
  closed: "We are closed. Please call again during opening hours."
{prompts}
states:
  welcome:
    answer: {{}}
    on: {{answered: m0_menu, failed: done}}
  apologise:
    say: Sorry, something went wrong. Please call again later.
    on: {{done: goodbye}}
  goodbye:
    hangup: {{}}
  done:
    end: {{}}
"""

_BLOCK = """\
  m{k}_menu:
    description: Main menu, part {k}.
    menu:
      prompt: menu_{k}
      options: {{"1": m{k}_pin, "2": m{k}_hours, "0": m{k}_agent, "9": m{k}_menu}}
      timeout: 5s
      attempts: 3
    on: {{max_attempts: goodbye}}
  m{k}_pin:
    collect:
      prompt: enter_pin
      into: pin
      min_digits: 4
      max_digits: 6
      timeouts: {{first_digit: 5s, inter_digit: 3s}}
    on: {{ok: m{k}_lookup, max_attempts: goodbye}}
  m{k}_lookup:
    http:
      url: "https://crm.example.com/accounts/{{{{ vars.pin }}}}"
      timeout: 3s
      retries: 1
      save: {{balance: "{{{{ response.json.balance }}}}"}}
    on: {{ok: m{k}_check, error: apologise, timeout: apologise}}
  m{k}_check:
    choose:
      when:
        - {{if: "vars.balance > 1000", goto: m{k}_vip}}
      otherwise: m{k}_balance
  m{k}_vip:
    set: {{tier: vip}}
    on: {{done: m{k}_balance}}
  m{k}_balance:
    say: "Your balance is {{{{ vars.balance }}}} dollars."
    on: {{done: {next}}}
  m{k}_hours:
    schedule:
      timezone: America/New_York
      hours: {{mon-fri: "09:00-17:30", sat: "10:00-14:00"}}
      holidays: ["2026-12-25"]
    on: {{open: m{k}_agent, closed: m{k}_closed}}
  m{k}_closed:
    play: closed
    on: {{done: {next}}}
  m{k}_agent:
    transfer: {{room: "{{{{ vars.sales_room }}}}"}}
    on: {{answered: done, failed: m{k}_dial}}
  m{k}_dial:
    dial_out: {{to: "+1415555{k:04d}", leg: agent, timeout: 25s}}
    on: {{answered: m{k}_wait, no_answer: m{k}_closed, busy: m{k}_closed, failed: apologise}}
  m{k}_wait:
    wait: {{events: [dialout.stopped], timeout: 2h}}
    on: {{dialout.stopped: done, timeout: m{k}_stop}}
  m{k}_stop:
    stop_dial_out: {{leg: agent}}
    on: {{done: goodbye, failed: goodbye}}
"""


def generate_flow(states: int = 1000) -> str:
    """The YAML text of a valid flow with exactly ``states`` states.

    ``states - 4`` must be a multiple of 12 (1,000 is).
    """
    blocks, extra = divmod(states - SHARED, BLOCK)
    if extra or blocks < 1:
        raise ValueError(f"states must be {SHARED} plus a multiple of {BLOCK}, not {states}")
    prompts = "".join(f'  menu_{k}: "For your account press 1, ..."\n' for k in range(blocks))
    body = "".join(
        _BLOCK.format(k=k, next=f"m{k + 1}_menu" if k + 1 < blocks else "goodbye")
        for k in range(blocks)
    )
    return _HEAD.format(states=states, prompts=prompts.rstrip("\n")) + body


def _timed(fn: Callable[[], object], runs: int) -> tuple[float, list[float]]:
    """The first (cold) time and the times of ``runs`` more, in seconds."""
    start = time.perf_counter()
    fn()
    cold = time.perf_counter() - start
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return cold, times


def _floor(path: Path, loader: Callable[[str], Any]) -> Callable[[], object]:
    validator = jsonschema.Draft202012Validator(flow_schema())

    def run() -> object:
        data = loader(path.read_text(encoding="utf-8"))
        return list(validator.iter_errors(data))

    return run


def _stages(path: Path) -> dict[str, Callable[[], object]]:
    """The pipeline's steps one by one, for the breakdown."""
    doc = read_flow_file(path)
    flow, _ = build_flow(doc)
    return {
        "  read + parse + positions": lambda: read_flow_file(path),
        "  JSON Schema": lambda: schema_diagnostics(doc),
        "  build the model": lambda: build_flow(doc),
        "  semantic checks": lambda: run_checks(flow, doc, {flow.name: flow}),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--states", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--profile", action="store_true", help="cProfile one validation")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "large.yaml"
        path.write_text(generate_flow(args.states), encoding="utf-8")
        report = validate_paths([path])
        if report.diagnostics:
            print("\n".join(d.render() for d in report.diagnostics[:10]), file=sys.stderr)
            return 1
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(validate_paths, [path])
            pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
            return 0

        size = path.stat().st_size
        print(f"flow: {args.states} states, {size / 1024:.0f} KiB, {args.runs} runs each")
        print(
            f"python {sys.version.split()[0]}, pyyaml {yaml.__version__}, libyaml C parser: "
            f"{'yes' if hasattr(yaml, 'CSafeLoader') else 'no'}"
        )
        cases: dict[str, Callable[[], object]] = {
            "flowengine validate_paths": lambda: validate_paths([path]),
            **_stages(path),
            "baseline: yaml.safe_load + jsonschema": _floor(path, yaml.safe_load),
            "baseline, libyaml: CSafeLoader + jsonschema": _floor(
                path, lambda text: yaml.load(text, Loader=yaml.CSafeLoader)
            ),
        }
        medians: dict[str, float] = {}
        print(f"{'':44} {'median':>9} {'min':>9} {'cold':>9}")
        for name, fn in cases.items():
            cold, times = _timed(fn, args.runs)
            medians[name] = statistics.median(times)
            print(
                f"{name:44} {medians[name] * 1000:7.1f}ms {min(times) * 1000:7.1f}ms "
                f"{cold * 1000:7.1f}ms"
            )
        ours = medians["flowengine validate_paths"]
        for base in (
            "baseline: yaml.safe_load + jsonschema",
            "baseline, libyaml: CSafeLoader + jsonschema",
        ):
            print(f"flowengine / {base.split(':')[0]}: {ours / medians[base]:.2f}x (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
