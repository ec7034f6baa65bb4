"""The compiled machine: one shared Machine per flow version, the same graph as the checker's."""

from __future__ import annotations

import pytest

from flowengine.checks.graph import FlowGraph
from flowengine.runtime import CompileError, FlowSet, compile_flow
from flowengine.runtime.compiler import ENDED, INIT

from .conftest import unchecked
from .test_legs import DIAL, REFER
from .test_logic import CHOOSE, HTTP, MAIN, SUB, WAIT, schedule
from .test_media import MENU, collect
from .test_routing import every, limits

EXAMPLES = [every(), DIAL, REFER, CHOOSE, HTTP, WAIT, schedule(), MENU, collect(), limits()]


def test_one_shared_machine_without_auto_transitions(flow) -> None:
    compiled = compile_flow(flow(every()))
    machine = compiled.machine
    assert machine.models == []  # calls are never registered
    assert machine.auto_transitions is False
    assert set(machine.states) == {*compiled.flow.states, INIT, ENDED}
    assert not any(name.startswith("to_") for name in machine.events)
    assert type(machine).__name__ == "Machine"  # no Timeout/AsyncTimeout extension


def test_compiled_once_per_content_hash(flow) -> None:
    f, same = flow(MENU), flow(MENU)  # the same text from two files
    assert compile_flow(f) is compile_flow(f)
    assert compile_flow(same).machine is compile_flow(f).machine
    assert compile_flow(same).flow is same
    g = flow(MENU.replace("Menu again", "Menu once more"))
    assert compile_flow(g).machine is not compile_flow(f).machine


@pytest.mark.parametrize("text", EXAMPLES, ids=range(len(EXAMPLES)))
def test_machine_reaches_what_the_checker_reaches(flow, text: str) -> None:
    f = flow(text)
    assert compile_flow(f).reachable() - {INIT, ENDED} == FlowGraph.of(f).reachable()


def test_sub_flows_reach_the_same_states(flows) -> None:
    for f in flows(MAIN, SUB).values():
        assert compile_flow(f).reachable() - {INIT, ENDED} == FlowGraph.of(f).reachable()


def test_a_route_to_a_missing_state_does_not_compile() -> None:
    text = """
    name: broken
    start: a
    states:
      a:
        play: p
        on: {done: nowhere}
    """
    with pytest.raises(CompileError, match="'nowhere'"):
        compile_flow(unchecked(text))


def test_flowset_keeps_every_version(flow) -> None:
    old, new = flow(MENU), flow(MENU.replace("Wrong key", "That key is not an option"))
    flows = FlowSet([old, new])
    assert flows.get("menu-test") is new
    assert flows.version(old.content_hash) is old
    assert flows.names == ["menu-test"]
    assert flows.compiled(old.content_hash).flow is old
