"""Which task starts prove another task's success was saved, read from compiled flows."""

from __future__ import annotations

from conductor.chaos.flowgraph import flow_successors, successors
from conductor.engine.compiler import compile_flow
from conductor.flow import linear, task, unordered
from conductor.flow.patterns import graph
from conductor.flow.retry import Retry


def test_demo_steps_each_step_is_proven_by_every_later_step() -> None:
    found = flow_successors(("conductor.demo",), "demo.steps",
                            {"steps": 3, "seconds": 0, "ledger": "/dev/null"})
    assert found == {"step-1": {"step-2", "step-3"}, "step-2": {"step-3"},
                     "step-3": frozenset()}


def noop() -> None:
    return None


def test_parallel_tasks_prove_nothing_about_each_other_and_edges_into_a_retry_count() -> None:
    flow = linear(
        unordered(task(noop, name="a"), task(noop, name="b"), name="fan"),
        linear(task(noop, name="c"), task(noop, name="d"), name="inner",
               retry=Retry(times=2)),
        task(noop, name="e"),
        name="shape",
    )
    found = successors(compile_flow(flow, {}, name="shape"))
    assert found["a"] == {"c", "d", "e"} and found["b"] == {"c", "d", "e"}
    assert found["c"] == {"d", "e"}
    assert found["d"] == {"e"}
    assert found["e"] == frozenset()


def test_a_graph_flow_follows_its_data_dependencies() -> None:
    def make() -> int:
        return 1

    def use(x: int) -> int:
        return x

    flow = graph(task(make, name="make", provides="x"), task(use, name="use"),
                 task(noop, name="alone"), name="g")
    found = successors(compile_flow(flow, {}, name="g"))
    assert found == {"make": {"use"}, "use": frozenset(), "alone": frozenset()}
