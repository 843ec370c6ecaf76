"""Patterns and data flow, run end to end by the runner (MemoryStore, thread pool)."""

from __future__ import annotations

import threading
from typing import Any

from conductor.engine import RunState, run_flow
from conductor.flow import graph, linear, repeat, task, unordered
from persistence import AtomState, MemoryStore


class Log:
    """Thread-safe record of what ran, in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[str] = []

    def add(self, event: str) -> None:
        with self.lock:
            self.events.append(event)


def step(log: Log, name: str, provides: Any = None, value: Any = None, **options: Any) -> Any:
    def run(**kwargs: Any) -> Any:
        log.add(name)
        return value if value is not None else kwargs
    return task(run, name=name, provides=provides, **options)


def test_linear_runs_in_order_and_passes_values() -> None:
    log = Log()
    first = task(lambda n: n * 2, name="first", provides="doubled")
    second = task(lambda doubled, n: doubled + n, name="second", provides="sum")
    outcome = run_flow(linear(step(log, "a"), first, step(log, "b"), second), {"n": 5})
    assert outcome.state is RunState.SUCCESS
    assert outcome.result == {"doubled": 10, "sum": 15}
    assert log.events == ["a", "b"]


def test_unordered_runs_children_in_parallel() -> None:
    barrier = threading.Barrier(3, timeout=10)

    def meet() -> int:
        return barrier.wait()  # all three must be running at once, or this times out

    flow = unordered(*[task(meet, name=f"m{i}", provides=f"r{i}") for i in range(3)])
    outcome = run_flow(flow)
    assert outcome.state is RunState.SUCCESS
    assert sorted(outcome.result.values()) == [0, 1, 2]


def test_graph_orders_by_data_flow_and_explicit_edges() -> None:
    log = Log()
    use = task(lambda v: log.add("use") or v + 1, name="use", provides="w")
    make = task(lambda: log.add("make") or 1, name="make", provides="v")
    last = task(lambda: log.add("last"), name="last")
    flow = graph(last, use, make, edges=[("use", "last")])
    outcome = run_flow(flow)
    assert outcome.state is RunState.SUCCESS
    assert log.events == ["make", "use", "last"]
    assert outcome.result == {"v": 1, "w": 2}


def test_nested_patterns() -> None:
    log = Log()
    flow = linear(
        step(log, "start"),
        unordered(linear(step(log, "a1"), step(log, "a2")), step(log, "b")),
        step(log, "end"),
    )
    assert run_flow(flow).state is RunState.SUCCESS
    assert log.events[0] == "start" and log.events[-1] == "end"
    assert log.events.index("a1") < log.events.index("a2")


def test_multiple_outputs_unpack_lists_and_dicts() -> None:
    pair = task(lambda: [1, 2], name="pair", provides=("lo", "hi"))
    named = task(lambda: {"x": "a", "y": "b", "z": "ignored"}, name="named", provides=("x", "y"))
    use = task(lambda lo, hi, x, y: f"{lo}{hi}{x}{y}", name="use", provides="joined")
    outcome = run_flow(linear(pair, named, use))
    assert outcome.result["joined"] == "12ab"


def test_declared_outputs_form_the_result() -> None:
    a = task(lambda: 1, name="a", provides="one")
    b = task(lambda one: one + 1, name="b", provides="two")
    outcome = run_flow(linear(a, b, outputs=["two"]))
    assert outcome.result == {"two": 2}


def test_a_result_that_does_not_match_provides_fails_cleanly() -> None:
    bad = task(lambda: [1], name="bad", provides=("a", "b"))
    outcome = run_flow(linear(bad))
    assert outcome.state is RunState.REVERTED
    assert outcome.failure is not None and "returned 1 values" in outcome.failure.message


def test_repeat_collects_results_in_order() -> None:
    square = task(lambda item, offset: item * item + offset, name="square", provides="sq")
    flow = linear(repeat(square, over="numbers", provides="squares"))
    outcome = run_flow(flow, {"numbers": [3, 1, 2], "offset": 1})
    assert outcome.state is RunState.SUCCESS
    assert outcome.result["squares"] == [10, 2, 5]


def test_repeat_over_an_earlier_result_with_a_subflow_body() -> None:
    make = task(lambda: ["a", "b"], name="make", provides="letters")
    upper = task(lambda item: item.upper(), name="upper", provides="up")
    twice = task(lambda up: up * 2, name="twice", provides="both")
    flow = linear(make, repeat(linear(upper, twice), over="letters", item="item"),
                  task(lambda results: ",".join(r["both"] for r in results), name="join",
                       provides="joined"))
    store = MemoryStore()
    outcome = run_flow(flow, store=store)
    assert outcome.state is RunState.SUCCESS
    assert outcome.result["results"] == [{"up": "A", "both": "AA"}, {"up": "B", "both": "BB"}]
    assert outcome.result["joined"] == "AA,BB"
    atoms = store.load(outcome.execution_id).atoms
    assert atoms["repeat-results[1]/twice"].state is AtomState.SUCCESS


def test_repeat_over_an_empty_list() -> None:
    never = task(lambda item: 1 / 0, name="never", provides="x")
    outcome = run_flow(linear(repeat(never, over="items")), {"items": []})
    assert outcome.state is RunState.SUCCESS and outcome.result == {"results": []}


def test_repeat_over_a_non_list_fails_cleanly() -> None:
    body = task(lambda item: item, name="body", provides="x")
    outcome = run_flow(linear(repeat(body, over="items")), {"items": "abc"})
    assert outcome.state is RunState.REVERTED
    assert outcome.failure is not None and "must be a list" in outcome.failure.message


def test_empty_flow_succeeds() -> None:
    assert run_flow(linear()).state is RunState.SUCCESS


def test_context_carries_the_idempotency_key() -> None:
    seen: list[str] = []

    def keyed(context: Any) -> None:
        seen.append(context.idempotency_key)

    outcome = run_flow(linear(task(keyed, name="keyed")), job_id="job-1")
    assert seen == [f"{outcome.execution_id}:keyed:1"]


def test_non_json_result_fails_the_execution_naming_task_and_type() -> None:
    def weird() -> object:
        return object()

    outcome = run_flow(linear(task(weird, provides="x")))
    assert outcome.state is RunState.REVERTED
    assert outcome.failure is not None
    assert "result of task 'weird'" in outcome.failure.message
    assert "builtins.object" in outcome.failure.message
