"""The flow API and compile-time validation: inputs from signatures, provides, rebind, errors."""

from __future__ import annotations

import pytest

from conductor.engine import compile_flow
from conductor.flow import (
    AmbiguousProvider,
    CycleError,
    DuplicateName,
    FlowError,
    InvalidTask,
    MissingInputs,
    Retry,
    Task,
    TaskContext,
    UnknownRebind,
    graph,
    linear,
    repeat,
    task,
    unordered,
)


@task(provides="total")
def add(a: int, b: int = 10) -> int:
    return a + b


class Charge(Task):
    def execute(self, amount: int, context: TaskContext) -> str:
        return f"{context.idempotency_key}:{amount}"

    def revert(self, amount: int, result: str) -> None:
        pass


def test_inputs_come_from_the_signature_and_defaults_are_optional() -> None:
    assert [(a.parameter, a.data, a.optional) for a in add.arguments] == [
        ("a", "a", False), ("b", "b", True),
    ]
    assert add.provides == ("total",) and not add.unpack


def test_context_parameter_is_not_an_input() -> None:
    charge = Charge(provides="receipt")
    assert [a.parameter for a in charge.arguments] == ["amount"]
    assert charge.wants_context and charge.has_revert
    assert charge.revert_parameters == ("amount", "result")


def test_rebind_maps_a_parameter_to_another_name() -> None:
    flow = linear(add.with_options(name="add2", rebind={"a": "x"}))
    compiled = compile_flow(flow, {"x": 1})
    assert compiled.atoms["add2"].describe()["args"] == {"a": "input:x", "b": "default"}


def test_several_provides_unpack() -> None:
    split = task(lambda: (1, 2), name="split", provides=("low", "high"))
    assert split.provides == ("low", "high") and split.unpack


def test_unknown_rebind_is_an_error_naming_the_parameter() -> None:
    with pytest.raises(UnknownRebind, match=r"rebind names \['nope'\]"):
        add.with_options(rebind={"nope": "x"})


def test_missing_inputs_name_task_and_value() -> None:
    flow = linear(add, task(lambda total, extra: 0, name="use"))
    with pytest.raises(MissingInputs) as info:
        compile_flow(flow, {})
    assert info.value.missing == [("add", "a", "a", ""), ("use", "extra", "extra", "")]
    assert "task 'add' needs 'a'" in str(info.value)


def test_a_value_provided_only_later_is_missing_and_says_so() -> None:
    flow = linear(task(lambda total: 0, name="early"), add)
    with pytest.raises(MissingInputs, match="provided only by"):
        compile_flow(flow, {"a": 1})


def test_declared_flow_inputs_count_as_available() -> None:
    compiled = compile_flow(linear(add, inputs=["a"]), {})
    assert compiled.required_inputs == ("a",)


def test_duplicate_names_are_rejected() -> None:
    with pytest.raises(DuplicateName, match="'add'"):
        compile_flow(linear(add, add), {"a": 1})


def test_cycles_are_rejected_with_the_atoms_named() -> None:
    one = task(lambda y: 1, name="one", provides="x")
    two = task(lambda x: 2, name="two", provides="y")
    with pytest.raises(CycleError) as info:
        compile_flow(graph(one, two), {})
    assert sorted(info.value.names) == ["one", "two"]


def test_explicit_edges_can_make_a_cycle_too() -> None:
    one = task(lambda: 1, name="one")
    two = task(lambda: 2, name="two")
    with pytest.raises(CycleError):
        compile_flow(graph(one, two, edges=[("one", "two"), ("two", "one")]), {})


def test_unknown_graph_edge_is_an_error() -> None:
    with pytest.raises(FlowError, match="'ghost'"):
        compile_flow(graph(add, edges=[("add", "ghost")]), {"a": 1})


def test_parallel_providers_of_one_name_are_ambiguous() -> None:
    p1 = task(lambda: 1, name="p1", provides="v")
    p2 = task(lambda: 2, name="p2", provides="v")
    use = task(lambda v: v, name="use")
    with pytest.raises(AmbiguousProvider) as info:
        compile_flow(linear(unordered(p1, p2), use), {})
    assert info.value.providers == ["p1", "p2"] and info.value.task == "use"


def test_the_nearest_earlier_provider_wins() -> None:
    p1 = task(lambda: 1, name="p1", provides="v")
    p2 = task(lambda v: v + 1, name="p2", provides="v")
    use = task(lambda v: v, name="use")
    compiled = compile_flow(linear(p1, p2, use), {})
    assert compiled.atoms["use"].describe()["args"] == {"v": "atom:p2.v"}
    assert compiled.atoms["p2"].describe()["args"] == {"v": "atom:p1.v"}


def test_graph_infers_edges_from_data_flow() -> None:
    make = task(lambda: 1, name="make", provides="v")
    use = task(lambda v: v, name="use")
    compiled = compile_flow(graph(use, make), {})
    assert compiled.atoms["use"].preds == ("make",)
    assert compiled.atoms["make"].key < compiled.atoms["use"].key


def test_retry_subflow_becomes_a_container() -> None:
    inner = linear(add, name="payment", retry=Retry(times=2))
    compiled = compile_flow(linear(task(lambda: 0, name="first"), inner), {"a": 1})
    payment = compiled.atoms["payment"]
    assert payment.kind == "retry" and payment.children == ("add",)
    assert compiled.atoms["add"].parent == "payment" and payment.preds == ("first",)


def test_compiling_twice_gives_equal_graphs() -> None:
    flow = linear(add, repeat(task(lambda item, total: item, name="each", provides="r"),
                              over="items"))
    assert compile_flow(flow, {"a": 1, "items": []}).describe() == compile_flow(
        flow, {"a": 2, "items": [1]}
    ).describe()


def test_bad_options_are_rejected() -> None:
    with pytest.raises(InvalidTask, match="timeout"):
        task(lambda: 0, name="t", timeout=-1)
    with pytest.raises(InvalidTask, match="times"):
        Retry(times=-1)
    with pytest.raises(InvalidTask, match="jitter"):
        Retry(jitter=2)
    with pytest.raises(InvalidTask, match="reserved"):
        task(lambda: 0, name="a[0]")
